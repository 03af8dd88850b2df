#!/usr/bin/env bash
# perf/stream_cpu.sh [HARP] [ROUNDS]: one bulk stream, direct then through harp, alternating, with
# the CPU each process got (client, sink, harp), to tell a saturated machine from a stream that
# waits (bbr pacing, receive windows). Loopback only; every process is stopped on exit.
# Knobs: DUR (5s), EXTRA (lines for harp's `global` section).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=$ROOT/target/release/harp-perf
HARP=${1:-$ROOT/target/release/harp}
ROUNDS=${2:-3}
DUR=${DUR:-5s}
WORK=$(mktemp -d)
UP=$("$P" freeport)
PX=$("$P" freeport)
"$P" upstream --listen "127.0.0.1:$UP" --mode sink >/dev/null 2>&1 &
UPID=$!
HPID=
trap 'kill $UPID $HPID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat >"$WORK/h.cfg" <<C
global
    nbthread 2
${EXTRA:-}
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$PX
    default_backend be
backend be
    server s1 127.0.0.1:$UP
C
"$HARP" -f "$WORK/h.cfg" >/dev/null 2>&1 &
HPID=$!
"$P" wait-port --addr "127.0.0.1:$PX" >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo "target Gbit/s client-CPU-s sink-CPU-s harp-CPU-s (sink and harp over warm-up + window)"
for _ in $(seq "$ROUNDS"); do
    for t in direct harp; do
        port=$UP
        [ "$t" = harp ] && port=$PX
        u0=$(ticks $UPID) h0=$(ticks $HPID)
        out=$("$P" load --target "127.0.0.1:$port" --scenario throughput --conns 1 \
            --duration "$DUR" --warmup 1s 2>/dev/null)
        u1=$(ticks $UPID) h1=$(ticks $HPID)
        gbit=$(grep -o '[0-9.]* Gbit/s' <<<"$out" | cut -d' ' -f1)
        cli=$(grep -o 'CPU [0-9.]*' <<<"$out" | cut -d' ' -f2)
        awk -v t="$t" -v g="$gbit" -v c="$cli" -v u=$((u1 - u0)) -v h=$((h1 - h0)) -v hz="$hz" \
            'BEGIN { printf "%s %s %s %.2f %.2f\n", t, g, c, u / hz, h / hz }'
    done
done
