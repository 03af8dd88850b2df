#!/usr/bin/env bash
# perf/lua_nice_ab.sh: chooses harp's default `tune.lua.nice` by measurement. For each Lua thread
# priority in NICES, runs harp twice per repeat, interleaved with every other variant: with the
# events probe (perf/events_probe.lua) plain, and with its callback spinning SPIN_SECS per event
# (one event per second, so the Lua thread is ~100 % busy), both under the same rr load while
# be/s2 flaps through the Runtime API: "plain" flaps every 100 ms (event latency figures),
# "plain-1s" and "spin" every 1 s (so the spin / plain-1s ratio compares the same number of
# server changes). Reports per variant the rr percentiles, the publish->callback and
# send->callback latencies, and per repeat the ratio spin / plain-1s of rr p99 at the same
# priority (target < 1.05) - the same figures as compare.sh's events scenario, but
# with the priority as the variable and the variants interleaved within each repeat, so the
# background load of a shared machine hits them alike.
#
# A NICES entry may also be `N/P`: tune.lua.nice N with tune.lua.max-cpu P (percent of one CPU a
# long-running script may use; harp's default otherwise).
#
# Usage: HARP=target/release/harp REPEATS=6 DURATION=3 NICES="0 19 idle" PIN=split perf/lua_nice_ab.sh
# Output: one line per run on stderr, a markdown summary on stdout, raw lines in $OUT.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
PERF=$ROOT/target/release/harp-perf
HARP=${HARP:-$ROOT/target/release/harp}
REPEATS=${REPEATS:-6}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
NICES=${NICES:-"0 19 idle"}
RR_RATE=${RR_RATE:-10000}
RR_CONNS=${RR_CONNS:-16}
SPIN_SECS=${SPIN_SECS:-1}
PIN=${PIN:-split}
QUIET_BUSY=${QUIET_BUSY:-0.3}  # before each run wait (at most QUIET_WAIT s) for the machine to be
QUIET_WAIT=${QUIET_WAIT:-20}   # at most this busy; the busy fraction found is recorded
OUT=${OUT:-perf/results/$(date -u +%Y-%m-%dT%H%M%SZ)-luanice.jsonl}
WORK=$(mktemp -d /tmp/harp-nice.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[nice-ab %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

CPU_LATENCY=${CPU_LATENCY:-0}  # as compare.sh: hold /dev/cpu_dma_latency (off = do not)
if [ "$CPU_LATENCY" != off ] && [ -w /dev/cpu_dma_latency ]; then
    exec {LATFD}>/dev/cpu_dma_latency && printf '0x%08x' "$CPU_LATENCY" >&"$LATFD" &&
        log "holding /dev/cpu_dma_latency at $CPU_LATENCY us"
fi

PROXY_PIN=() LOAD_PIN=()
if [ "$PIN" = split ]; then PROXY_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1); fi

UP=$("$PERF" freeport)
"${LOAD_PIN[@]}" "$PERF" upstream --listen "echo@127.0.0.1:$UP" --size 100 --req 100 2>/dev/null &
PIDS+=($!)
"$PERF" wait-port --addr "127.0.0.1:$UP" --timeout 5s || { log "upstream did not start"; exit 1; }
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

# worker_wait PID: summed run-queue wait (schedstat field 2, ns) of PID's harp-worker-* threads:
# the time the I/O workers were runnable but had no CPU, i.e. what a Lua thread (or anything else
# on their CPU) took from them.
worker_wait() {
    local t sum=0 w
    for t in /proc/"$1"/task/*; do
        case $(cat "$t/comm" 2>/dev/null) in harp-worker-*)
            w=$(cut -d' ' -f2 "$t/schedstat" 2>/dev/null) && sum=$((sum + w)) ;;
        esac
    done
    echo "$sum"
}

run() { # rep nice spin
    local rep=$1 nice=$2 spin=$3 port interval=100ms pid json evlat
    # spin: 0 = plain (100 ms flaps), 2 = plain with 1 s flaps, 1 = spinning callback, 1 s flaps
    local busy w0 w1
    busy=$("$PERF" quiet --busy "$QUIET_BUSY" --max-wait "${QUIET_WAIT}s" 2>/dev/null || echo null)
    port=$("$PERF" freeport)
    [ "$spin" != 0 ] && interval=1s
    rm -f "$WORK/probe.log" "$WORK/flap.log" "$WORK/h.sock"
    cat >"$WORK/h.cfg" <<EOF
global
    nbthread 2
    stats socket $WORK/h.sock mode 600 level admin
    tune.lua.nice ${nice%/*}
$([ "${nice#*/}" != "$nice" ] && echo "    tune.lua.max-cpu ${nice#*/}")
    tune.lua.burst-timeout 3000
    lua-load $ROOT/perf/events_probe.lua $WORK/probe.log $([ "$spin" = 1 ] && echo "$SPIN_SECS" || echo 0)
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    server s1 127.0.0.1:$UP
    server s2 127.0.0.1:$UP
EOF
    "${PROXY_PIN[@]}" "$HARP" -f "$WORK/h.cfg" >"$WORK/h.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    "$PERF" wait-port --addr "127.0.0.1:$port" --timeout 5s || { log "harp did not start"; tail -3 "$WORK/h.log" >&2; kill "$pid"; return; }
    timeout $((DURATION + WARMUP + 20)) "${LOAD_PIN[@]}" "$PERF" flap --socket "$WORK/h.sock" --server be/s2 \
        --interval "$interval" --duration "$((DURATION + WARMUP))s" --log "$WORK/flap.log" >/dev/null 2>&1 &
    local fp=$!
    w0=$(worker_wait "$pid")
    json=$(timeout $((DURATION + WARMUP + 30)) "${LOAD_PIN[@]}" "$PERF" load --target "127.0.0.1:$port" \
        --scenario rr --conns "$RR_CONNS" --rate "$RR_RATE" --req 100 --resp 100 \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --json --cpu-pid "$pid" 2>/dev/null)
    w1=$(worker_wait "$pid")
    wait "$fp" 2>/dev/null
    [ "$spin" = 1 ] && sleep "$SPIN_SECS"
    evlat=$(python3 "$ROOT/perf/evlat.py" "$WORK/flap.log" "$WORK/probe.log" 2>/dev/null)
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    printf '{"rep":%s,"nice":"%s","spin":%s,"loadavg":%s,"busy_before":%s,"worker_wait_ms":%s,"evlat":%s,"result":%s}\n' \
        "$rep" "$nice" "$spin" "$(cut -d' ' -f1 /proc/loadavg)" "$busy" "$(((w1 - w0) / 1000000))" \
        "${evlat:-null}" "${json:-null}" >>"$OUT"
    log "rep $rep nice $nice spin $spin: $(tail -n1 "$OUT" | python3 -c 'import json,sys
r=json.loads(sys.stdin.read()); x=r["result"] or {}; e=r["evlat"] or {}
print("rr p50 %s p99 %s p99.9 %s | workers waited %s ms | publish->cb p50 %s p99 %s | send->cb p99 %s | load %s busy %s" % (x.get("p50_us"), x.get("p99_us"), x.get("p999_us"), r["worker_wait_ms"], e.get("pub_p50_us"), e.get("pub_p99_us"), e.get("p99_us"), r["loadavg"], r["busy_before"]))')"
}

read -r -a NL <<<"$NICES"
variants=()
for n in "${NL[@]}"; do variants+=("$n:0" "$n:2" "$n:1"); done
nv=${#variants[@]}
for rep in $(seq "$REPEATS"); do
    for i in $(seq 0 $((nv - 1))); do
        v=${variants[$(((i + rep - 1) % nv))]}
        run "$rep" "${v%:*}" "${v#*:}"
    done
done

python3 - "$OUT" "$NICES" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
nices = sys.argv[2].split()
def mr(v, d=0):
    v = [x for x in v if x is not None]
    if not v: return "n/a"
    f = lambda x: f"{x:,.{d}f}"
    return f"{f(statistics.median(v))} ({f(min(v))}-{f(max(v))})" if len(v) > 1 else f(v[0])
def get(n, s, k, src="result"):
    return [ (r[src] or {}).get(k) for r in runs if r["nice"] == n and r["spin"] == s and r[src] ]
print("| tune.lua.nice | callback, flaps | rr p50 us | rr p99 us | rr p99.9 us | proxy CPU-us/req | workers' run-queue wait, ms per run | publish->cb p50 us | publish->cb p99 us | send->cb p99 us | rr p99 spin / plain (1 s flaps), same repeat |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for n in nices:
    for s in (0, 2, 1):
        if not any(r["nice"] == n and r["spin"] == s for r in runs):
            continue
        ratio = ""
        if s == 1:
            a = {r["rep"]: r["result"]["p99_us"] for r in runs if r["nice"] == n and r["spin"] == 1 and r["result"]}
            base = 2 if any(r["nice"] == n and r["spin"] == 2 for r in runs) else 0
            b = {r["rep"]: r["result"]["p99_us"] for r in runs if r["nice"] == n and r["spin"] == base and r["result"]}
            ratio = mr([a[k] / b[k] for k in a if k in b and b[k]], 3)
        label = {0: "plain, 100 ms", 2: "plain, 1 s", 1: "spins 1 s, 1 s"}[s]
        print(f"| {n} | {label} | {mr(get(n,s,'p50_us'))} | {mr(get(n,s,'p99_us'))} | {mr(get(n,s,'p999_us'))} | "
              f"{mr(get(n,s,'cpu_us_per_req'),1)} | {mr([r['worker_wait_ms'] for r in runs if r['nice'] == n and r['spin'] == s])} | {mr(get(n,s,'pub_p50_us','evlat'))} | {mr(get(n,s,'pub_p99_us','evlat'))} | "
              f"{mr(get(n,s,'p99_us','evlat'))} | {ratio} |")
la = [r["loadavg"] for r in runs]
bb = [r["busy_before"] for r in runs if r.get("busy_before") is not None]
print(f"\n{len(runs)} runs, 1-minute load average {min(la)}-{max(la)} (median {statistics.median(la)})"
      + (f", busy fraction before runs {min(bb)}-{max(bb)} (median {statistics.median(bb)})." if bb else "."))
PY
