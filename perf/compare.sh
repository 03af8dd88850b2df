#!/usr/bin/env bash
# perf/compare.sh: harp against HAProxy (with and without splice), nginx stream and a direct
# loopback connection, interleaved, with the same client, upstream, thread count and pinning.
# Methodology, knobs and the latest results: perf/README.md.  Run by `make perf`.
#
# Every step is bounded by `timeout`; a target that cannot start or does not forward is recorded
# as "n/a" and the run goes on.

set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1

REPEATS=${REPEATS:-5}          # interleaved repeats of every (scenario, target)
DURATION=${DURATION:-10}       # measured seconds per run
WARMUP=${WARMUP:-1}            # un-measured warm-up seconds per run
THREADS=${THREADS:-2}          # harp nbthread = HAProxy nbthread = nginx worker_processes
PIN=${PIN:-none}               # none | split (proxy on CPU 0, load + upstream on CPU 1)
SCENARIOS=${SCENARIOS:-"throughput connrate rr idle events"}
TARGETS=${TARGETS:-"direct harp haproxy-splice haproxy nginx"}
TP_CONNS=${TP_CONNS:-1}        # throughput: parallel streams
TP_DIR=${TP_DIR:-up}           # throughput: up (client->sink) or both (through echo)
CR_CONNS=${CR_CONNS:-8}        # connrate: concurrent connect/send/recv/close workers
CR_STALL_BUSY=${CR_STALL_BUSY:-0.4} # connrate: client + proxy below this many CPUs busy = a stalled run, rerun once (0 = never)
CR_CLOSE=${CR_CLOSE:-server}   # connrate: who closes first (server = HTTP/1.0 Connection: close style)
RR_CONNS=${RR_CONNS:-16}       # rr: persistent connections
RR_RATE=${RR_RATE:-}           # rr: offered req/s; empty = 50 % of HAProxy's closed-loop max
RR_SIZE=${RR_SIZE:-100}        # rr and connrate request = response size
IDLE_CONNS=${IDLE_CONNS:-max} # idle: connections held open for the RSS figure; max = min(10000, fd limit allows)
FLAP_INTERVAL=${FLAP_INTERVAL:-100ms} # events: time between disable/enable server commands
SPIN_SECS=${SPIN_SECS:-1}      # events, target harp-spin: the Lua callback busy-loops this long per event
SPIN_FLAP_INTERVAL=${SPIN_FLAP_INTERVAL:-1s} # ... with one event per this interval (no pile-up)
SPIN_EVERY=${SPIN_EVERY:-2}    # ... every this many events spin: 2 = spinning and idle seconds alternate in one run (perf/spinsplit.py)
LUA_BURST_MS=${LUA_BURST_MS:-3000} # tune.lua.burst-timeout for the events configs (> SPIN_SECS)
LUA_SCHED=${LUA_SCHED:-default} # events: harp's Lua thread priority: default (harp's built-in tune.lua.nice) | N (tune.lua.nice N, -20..19; none = 0 = old behaviour) | idle (SCHED_IDLE)
CPU_LATENCY=${CPU_LATENCY:-0}  # hold /dev/cpu_dma_latency at this many us during the runs (off = do not): see README
CC=${CC:-}                     # TCP congestion control for every socket of the run (e.g. cubic; empty = the system's): see README
QUIET_BUSY=${QUIET_BUSY:-0.25} # "quiet machine" = busy fraction at most this ...
QUIET_WAIT=${QUIET_WAIT:-0}    # ... waited for at most this many seconds before each run
INSTALL=${INSTALL:-1}          # 1 = apt-get install haproxy / nginx when missing
SKIP_BUILD=${SKIP_BUILD:-0}    # 1 = use the existing target/release binaries
OUT=${OUT:-perf/results}
PROFILE=${PROFILE:-0}          # 1 = `perf record -g` the proxy during the measured window
PROFILE_TARGETS=${PROFILE_TARGETS:-harp}  # ... of these targets (space separated)

PERF=$ROOT/target/release/harp-perf
HARP=${HARP:-$ROOT/target/release/harp}  # override to measure a harp built elsewhere
HARP_B=${HARP_B:-}             # target harp-b: a second harp binary (or wrapper) for a same-run A/B
RULES=${RULES:-0}              # 1 = harp's and HAProxy's frontends apply the same TCP rules (rules_block)
STICK=${STICK:-0}              # 1 = ... and the same stick-table rate limit (stick_block)
MAP=${MAP:-0}                  # 1 = ... and the same map-built backend name (map_block)
LOG=${LOG:-0}                  # 1 = ... and the same custom log-format line per session, over UDP syslog (log_block)
TLS=${TLS:-0}                  # 1 = every proxy ends TLS (one self-signed P-256 certificate) and the load speaks it: connrate pays a full handshake per connection, throughput needs TP_DIR=up; idle holds TLS connections; direct, rr and events are skipped
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ) # seconds: two runs in one minute must not overwrite each other
WORK=$(mktemp -d /tmp/harp-perf.XXXXXX)
RAW=$WORK/raw.jsonl
: > "$RAW"

log() { printf '[compare %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    sleep 0.2
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    [ -n "$CC_SAVED" ] && $SUDO sysctl -qw net.ipv4.tcp_congestion_control="$CC_SAVED" >/dev/null
    rm -rf "$WORK"
}
CC_SAVED=
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools ----------------------
SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
dpkg -s libnginx-mod-stream >/dev/null 2>&1 || need+=(libnginx-mod-stream)
command -v python3 >/dev/null || need+=(python3)
if [ "$TLS" = 1 ]; then command -v openssl >/dev/null || need+=(openssl); fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$INSTALL" = 1 ] && command -v apt-get >/dev/null; then
        log "installing ${need[*]}"
        $SUDO env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -qq >&2 || true
        $SUDO env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${need[@]}" >&2 \
            || log "apt-get install failed; missing targets will be n/a"
    else
        log "missing ${need[*]} (INSTALL=0 or no apt-get); those targets will be n/a"
    fi
fi
# The Debian package may start a system nginx on :80; it is not ours to stop, and it does not
# disturb loopback ephemeral ports. Our instances use their own config and prefix.

if [ "$SKIP_BUILD" != 1 ]; then
    log "building harp-perf (release)"
    cargo build --release -q -p harp-perf >&2 || { log "harp-perf build failed"; exit 1; }
    log "building harp (release)"
    cargo build --release -q --bin harp >&2 || log "harp build failed: harp will be n/a"
fi
[ -x "$PERF" ] || { log "no $PERF"; exit 1; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=65536
# HAProxy refuses to start when maxconn needs more fds than allowed (2 per connection, 2 per splice pipe, spare).
HAPROXY_MAXCONN=$(((NOFILE - 200) / 3))
[ "$HAPROXY_MAXCONN" -gt 30000 ] && HAPROXY_MAXCONN=30000
# Without splice HAProxy 2.6 starts with maxconn up to ~(fds - spare) / 2 (checked at 20,000 fds).
HAPROXY_MAXCONN_NOSPLICE=$(((NOFILE - 200) / 2))
[ "$HAPROXY_MAXCONN_NOSPLICE" -gt 30000 ] && HAPROXY_MAXCONN_NOSPLICE=30000
# idle: every proxied connection costs the proxy 2 fds (client side + server side); the client and
# the upstream each hold 1 per connection under their own limit. So the proxy's limit decides.
IDLE_MAX=$(((NOFILE - 400) / 2))
[ "$IDLE_MAX" -gt 10000 ] && IDLE_MAX=10000
if [ "$IDLE_CONNS" = max ]; then
    IDLE_CONNS=$IDLE_MAX
elif [ "$IDLE_CONNS" -gt "$IDLE_MAX" ]; then
    log "IDLE_CONNS=$IDLE_CONNS needs $((2 * IDLE_CONNS)) proxy fds, limit is $NOFILE: using $IDLE_MAX"
    IDLE_CONNS=$IDLE_MAX
fi

PROXY_PIN=()
LOAD_PIN=()
if [ "$PIN" = split ]; then
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
        PROXY_PIN=(taskset -c 0)
        LOAD_PIN=(taskset -c 1)
    else
        log "PIN=split needs taskset and 2 CPUs; running unpinned"
        PIN=none
    fi
fi

# A PM QoS request of 0 us keeps idle CPUs polling instead of halting. On this VM (cpuidle
# driver haltpoll with guest_halt_poll_ns=0) every halt is a VM exit, and waking a halted vCPU
# costs a host reschedule, how long depending on the host's adaptive halt polling: after a quiet
# spell a ping-pong workload (connrate: client -> proxy -> upstream and back) could stay in a
# slow "everyone waits for a vCPU wake-up" state for a whole run (the first connrate run of a
# repeat, 5-9x slower with idle CPUs). Held for the whole comparison, so every target gets it;
# idle polling is idle time for /proc/stat, so CPU figures are unchanged.
CPU_LATENCY_HELD=no
if [ "$CPU_LATENCY" != off ] && [ -w /dev/cpu_dma_latency ]; then
    # The file takes a binary 32-bit value; a hex string is accepted too.
    if exec {LATFD}>/dev/cpu_dma_latency && printf '0x%08x' "$CPU_LATENCY" >&"$LATFD"; then
        CPU_LATENCY_HELD="${CPU_LATENCY} us"
        log "holding /dev/cpu_dma_latency at $CPU_LATENCY us (idle CPUs poll; CPU_LATENCY=off to disable)"
    fi
fi

# Congestion control. The sender's algorithm decides single-stream loopback throughput more than
# any proxy does: with bbr (this machine's default) and loopback's noqueue qdisc, TCP paces every
# socket itself with hrtimers, and a bandwidth estimate that dips while a receiver shares a busy
# CPU keeps pacing the stream at that rate (9-17 Gbit/s per run for the same build); with cubic
# nothing is paced (28-42 Gbit/s). Every process of the run (client, proxies, upstream) uses the
# default set here, so each target is measured under the same algorithm; restored on exit.
CC_USED=$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)
if [ -n "$CC" ] && [ "$CC" != "$CC_USED" ]; then
    if $SUDO sysctl -qw net.ipv4.tcp_congestion_control="$CC" >/dev/null 2>&1; then
        CC_SAVED=$CC_USED
        CC_USED=$CC
        log "TCP congestion control $CC for this run (was $CC_SAVED)"
    else
        log "cannot set TCP congestion control $CC (root needed, or not in tcp_available_congestion_control); using $CC_USED"
    fi
fi

# ---------------------------------------------------------------- upstream -------------------
UP_ECHO=$("$PERF" freeport)
UP_SINK=$("$PERF" freeport)
while [ "$UP_SINK" = "$UP_ECHO" ]; do UP_SINK=$("$PERF" freeport); done
UP_ONCE=$("$PERF" freeport)
while [ "$UP_ONCE" = "$UP_ECHO" ] || [ "$UP_ONCE" = "$UP_SINK" ]; do UP_ONCE=$("$PERF" freeport); done
"${LOAD_PIN[@]}" "$PERF" upstream \
    --listen "echo@127.0.0.1:$UP_ECHO,sink@127.0.0.1:$UP_SINK,once@127.0.0.1:$UP_ONCE" \
    --size "$RR_SIZE" --req "$RR_SIZE" 2>"$WORK/upstream.log" &
UP_PID=$!
PIDS+=("$UP_PID")
"$PERF" wait-port --addr "127.0.0.1:$UP_ECHO" --timeout 5s &&
    "$PERF" wait-port --addr "127.0.0.1:$UP_SINK" --timeout 5s &&
    "$PERF" wait-port --addr "127.0.0.1:$UP_ONCE" --timeout 5s ||
    { log "upstream did not start"; cat "$WORK/upstream.log" >&2; exit 1; }
log "upstream pid $UP_PID: echo :$UP_ECHO sink :$UP_SINK once :$UP_ONCE"

# ---------------------------------------------------------------- proxies --------------------
PROXY_PID=
PROXY_PORT=
EVENTS_CFG=0
HARP_OPTIONS=() # extra `defaults` lines: harp-copy copies only, harp-splice splices only (harp: automatic)
EVENTS_SPIN=0 # 1 = the Lua probe's callback spins SPIN_SECS per event (target harp-spin)
SPIN_FIRST=$SPIN_EVERY # ... from this event on, every SPIN_EVERY events (set per repeat)

# The TCP rules RULES=1 puts in every harp and HAProxy frontend, the same text for both: a
# connection rule over a 10,000-network blocklist (loopback is not in it, so every network is
# looked at), a content rule that waits for the request's first bytes, and a use_backend on them.
rules_block() {
    [ "$RULES" = 1 ] || return 0
    if [ ! -f "$WORK/blocklist.lst" ]; then
        local i
        for i in $(seq 0 9999); do echo "10.$((i / 256)).$((i % 256)).0/24"; done >"$WORK/blocklist.lst"
    fi
    echo "    acl blocked src -f $WORK/blocklist.lst"
    echo "    tcp-request connection reject if blocked"
    echo "    tcp-request inspect-delay 1s"
    echo "    tcp-request content accept if { req.len gt 0 }"
    echo "    use_backend be if { req.payload(0,1) -m found }"
}

# The stick table STICK=1 puts in every harp and HAProxy frontend: each client address tracked
# (all load comes from 127.0.0.1: one hot entry, the worst case for its lock), its connection
# rate checked by a rule that never rejects, its bytes counted.
stick_block() {
    [ "$STICK" = 1 ] || return 0
    echo "    stick-table type ip size 100k expire 30s store conn_cur,conn_rate(10s),bytes_in_cnt,bytes_out_cnt"
    echo "    tcp-request connection track-sc0 src"
    echo "    tcp-request connection reject if { sc0_conn_rate gt 1000000000 }"
}

# The dynamic use_backend MAP=1 puts in every harp and HAProxy frontend: the backend's name
# read from a 10,000-network map of client addresses (loopback's entry last in the file).
map_block() {
    [ "$MAP" = 1 ] || return 0
    if [ ! -f "$WORK/src.map" ]; then
        local i
        for i in $(seq 0 9999); do echo "10.$((i / 256)).$((i % 256)).0/24 be_$((i % 7))"; done >"$WORK/src.map"
        echo "127.0.0.0/8 be" >>"$WORK/src.map"
    fi
    echo "    use_backend %[src,map_ip($WORK/src.map,be)]"
}

# The session log LOG=1 puts in every harp and HAProxy frontend: a variable set by a content
# rule and a custom log-format (the tcplog fields plus the variable), sent over UDP syslog to a
# socat that drops the lines.
log_block() {
    [ "$LOG" = 1 ] || return 0
    echo "    log 127.0.0.1:$LOG_PORT local0"
    echo "    tcp-request content set-var(txn.tag) str(perf)"
    echo "    log-format \"%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq %[var(txn.tag)]\""
}
LOG_PORT=
if [ "$LOG" = 1 ]; then
    LOG_PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    socat -u "UDP-RECV:$LOG_PORT,bind=127.0.0.1" /dev/null &
    PIDS+=($!)
fi

# TLS=1: one throw-away certificate for every proxy, and the words their listeners take
TLS_PEM=$WORK/perf.pem
if [ "$TLS" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=perf.test -keyout "$WORK/perf.key" -out "$WORK/perf.crt" 2>/dev/null || {
        log "TLS=1 needs openssl to make a certificate"
        exit 1
    }
    cat "$WORK/perf.crt" "$WORK/perf.key" >"$TLS_PEM"
fi
tls_bind() { [ "$TLS" = 1 ] && printf ' ssl crt %s' "$TLS_PEM"; }

write_harp_cfg() { # port backend
    cat >"$WORK/harp.cfg" <<EOF
global
    nbthread $THREADS
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$1$(tls_bind)
$(rules_block)
$(stick_block)
$(map_block)
$(log_block)
    default_backend be
backend be
    server s1 127.0.0.1:$2
EOF
    # harp-copy / harp-splice: one way of forwarding only, to weigh harp's automatic choice
    local opt
    for opt in "${HARP_OPTIONS[@]}"; do sed -i "/^defaults/a\\    $opt" "$WORK/harp.cfg"; done
    if [ "$EVENTS_CFG" = 1 ]; then
        # events: a second server to flap, and the Runtime API socket to flap it through.
        echo "    server s2 127.0.0.1:$2" >>"$WORK/harp.cfg"
        sed -i "2a\\    stats socket $WORK/harp.sock mode 600 level admin" "$WORK/harp.cfg"
        # ... and the Lua probe timing every SERVER_ADMIN callback (perf/events_probe.lua).
        local spin=0
        [ "$EVENTS_SPIN" = 1 ] && spin="$SPIN_SECS $SPIN_EVERY $SPIN_FIRST"
        sed -i "2a\\    lua-load $ROOT/perf/events_probe.lua $WORK/probe.log $spin\\n    tune.lua.burst-timeout $LUA_BURST_MS" \
            "$WORK/harp.cfg"
        local nice=
        case $LUA_SCHED in default) ;; none) nice=0 ;; *) nice=$LUA_SCHED ;; esac
        if [ -n "$nice" ]; then sed -i "2a\\    tune.lua.nice $nice" "$WORK/harp.cfg"; fi
    fi
}

write_haproxy_cfg() { # port backend splice(0|1)
    {
        echo "global"
        echo "    nbthread $THREADS"
        if [ "$3" = 1 ]; then echo "    maxconn $HAPROXY_MAXCONN"; else echo "    maxconn $HAPROXY_MAXCONN_NOSPLICE"; fi
        echo "    stats socket $WORK/haproxy.sock mode 600 level admin"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 5s"
        echo "    timeout client 30s"
        echo "    timeout server 30s"
        if [ "$3" = 1 ]; then
            echo "    option splice-request"
            echo "    option splice-response"
        fi
        echo "frontend fe"
        echo "    bind 127.0.0.1:$1$(tls_bind)"
        rules_block
        stick_block
        map_block
        log_block
        echo "    default_backend be"
        echo "backend be"
        echo "    server s1 127.0.0.1:$2"
        [ "$EVENTS_CFG" = 1 ] && echo "    server s2 127.0.0.1:$2"
    } >"$WORK/haproxy.cfg"
}

write_nginx_cfg() { # port backend
    local mod=/usr/lib/nginx/modules/ngx_stream_module.so load=
    [ -f "$mod" ] && load="load_module $mod;"
    cat >"$WORK/nginx.conf" <<EOF
$load
worker_processes $THREADS;
worker_rlimit_nofile $NOFILE;
daemon off;
master_process on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections $((NOFILE / 2)); }
stream {
    server {
        listen 127.0.0.1:$1 reuseport$([ "$TLS" = 1 ] && echo " ssl");
$([ "$TLS" = 1 ] && printf '        ssl_certificate %s;\n        ssl_certificate_key %s;\n' "$TLS_PEM" "$TLS_PEM")
        proxy_pass 127.0.0.1:$2;
        proxy_connect_timeout 5s;
        proxy_timeout 30s;
    }
}
EOF
}

# start_proxy TARGET BACKEND_PORT: sets PROXY_PORT and PROXY_PID (empty for direct); 1 on failure
start_proxy() {
    local target=$1 backend=$2
    PROXY_PID=
    if [ "$target" = direct ]; then
        PROXY_PORT=$backend
        return 0
    fi
    PROXY_PORT=$("$PERF" freeport)
    case $target in
    harp | harp-spin | harp-copy | harp-splice | harp-b)
        local bin=$HARP
        [ "$target" = harp-b ] && bin=$HARP_B
        [ -n "$bin" ] && [ -x "$bin" ] || return 1
        case $target in
        harp-copy) HARP_OPTIONS=("no option splice-auto") ;;
        harp-splice) HARP_OPTIONS=("option splice-request" "option splice-response") ;;
        *) HARP_OPTIONS=() ;;
        esac
        write_harp_cfg "$PROXY_PORT" "$backend"
        rm -f "$WORK/harp.sock" "$WORK/probe.log" "$WORK/probe.log.spin"
        "${PROXY_PIN[@]}" "$bin" -f "$WORK/harp.cfg" >"$WORK/harp.log" 2>&1 &
        ;;
    haproxy | haproxy-splice)
        command -v haproxy >/dev/null || return 1
        write_haproxy_cfg "$PROXY_PORT" "$backend" "$([ "$target" = haproxy-splice ] && echo 1 || echo 0)"
        rm -f "$WORK/haproxy.sock"
        "${PROXY_PIN[@]}" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
        ;;
    nginx)
        command -v nginx >/dev/null || return 1
        write_nginx_cfg "$PROXY_PORT" "$backend"
        "${PROXY_PIN[@]}" nginx -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" \
            >"$WORK/nginx.log" 2>&1 &
        ;;
    *) return 1 ;;
    esac
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    local up=0 i
    for i in $(seq 25); do # up to ~5 s, but give up at once if the proxy exits
        kill -0 "$PROXY_PID" 2>/dev/null || break
        if "$PERF" wait-port --addr "127.0.0.1:$PROXY_PORT" --timeout 200ms 2>/dev/null; then
            up=1
            break
        fi
    done
    if [ "$up" != 1 ] || ! kill -0 "$PROXY_PID" 2>/dev/null; then
        log "$target did not start; last log lines:"
        local lf="$WORK/${target%-splice}.log"
        case $target in harp-*) lf="$WORK/harp.log" ;; esac
        [ "$target" = nginx ] && lf="$WORK/nginx-error.log"
        tail -n 5 "$lf" >&2 2>/dev/null
        stop_proxy
        return 1
    fi
    return 0
}

stop_proxy() {
    [ -n "$PROXY_PID" ] || return 0
    kill -TERM "$PROXY_PID" 2>/dev/null
    local i
    for i in $(seq 50); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
    PROXY_PID=
}

# haproxy_splice_counts: prints "SPLICED TOTAL" bytes out from `show info` (field name is
# misspelt "TotalSplicdedBytesOut" in HAProxy 2.6, so match loosely).
haproxy_splice_counts() {
    local info
    info=$(timeout 5 "$PERF" haproxy --socket "$WORK/haproxy.sock" --cmd "show info" 2>/dev/null) || {
        echo "null null"
        return
    }
    local sp tot
    sp=$(printf '%s\n' "$info" | awk -F': ' 'tolower($1) ~ /^totalsplic.*bytesout$/ {print $2}')
    tot=$(printf '%s\n' "$info" | awk -F': ' '$1 == "TotalBytesOut" {print $2}')
    echo "${sp:-null} ${tot:-null}"
}

# tcp_snapshot FILE: the kernel's TCP counters that explain stalls (drops, retransmits,
# TIME_WAIT reuse) into FILE, one "name value" per line. They are per network namespace, so
# other processes' traffic counts too; a run's delta is still the first clue to a slow run.
TCP_KEYS="ListenOverflows ListenDrops TCPTimeouts TCPSynRetrans TCPLossProbes TWRecycled TWKilled TCPTimeWaitOverflow TCPBacklogDrop TCPReqQFullDrop SyncookiesSent PAWSEstab TCPChallengeACK TCPAbortOnData RetransSegs AttemptFails EstabResets OutRsts"
tcp_snapshot() {
    awk -v keys="$TCP_KEYS" 'BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) want[k[i]] = 1 }
        FNR % 2 == 1 { split($0, names, " "); next }
        { split($0, vals, " "); for (i = 2; i <= length(names); i++) if (names[i] in want) print names[i], vals[i] }' \
        /proc/net/snmp /proc/net/netstat >"$1" 2>/dev/null
}

# tcp_delta BEFORE AFTER: JSON object of the counters that changed, plus TIME_WAIT sockets now.
tcp_delta() {
    local tw
    tw=$(ss -tanH state time-wait 2>/dev/null | wc -l)
    awk -v tw="$tw" 'NR == FNR { b[$1] = $2; next }
        { d = $2 - b[$1]; if (d != 0) { out = out sep "\"" $1 "\":" d; sep = "," } }
        END { printf "{%s%s\"time_wait_after\":%d}", out, (out == "" ? "" : ","), tw }' "$1" "$2" 2>/dev/null || echo null
}

# ---------------------------------------------------------------- runs -----------------------
load_args() { # scenario -> args
    [ "$TLS" = 1 ] && printf '%s ' --tls
    case $1 in
    throughput) echo "--scenario throughput --conns $TP_CONNS --dir $TP_DIR" ;;
    connrate) echo "--scenario connrate --conns $CR_CONNS --close $CR_CLOSE --req $RR_SIZE --resp $RR_SIZE" ;;
    rr) echo "--scenario rr --conns $RR_CONNS --rate $RR_RATE --req $RR_SIZE --resp $RR_SIZE" ;;
    idle) echo "--scenario idle --conns $IDLE_CONNS --req $RR_SIZE --resp $RR_SIZE" ;;
    events) load_args rr ;;
    esac
}

backend_for() { # scenario -> upstream port
    if [ "$1" = throughput ] && [ "$TP_DIR" = up ]; then
        echo "$UP_SINK"
    elif [ "$1" = connrate ] && [ "$CR_CLOSE" = server ]; then
        echo "$UP_ONCE"
    else
        echo "$UP_ECHO"
    fi
}

# run_one REP SCENARIO TARGET: appends one JSON line to $RAW
run_one() {
    LAST_STATUS=skipped
    local rep=$1 sc=$2 target=$3 status=ok json= busy loadavg spl="null null" flap=null flap_pid=
    local evlat=null interval=$FLAP_INTERVAL dump=() split=null
    # events needs a Runtime API to flap servers through: harp and HAProxy only. harp-spin is
    # harp whose Lua callback spins; it exists in the events scenario only.
    EVENTS_SPIN=0
    if [ "$sc" = events ]; then
        case $target in
        harp | haproxy) EVENTS_CFG=1 ;;
        harp-spin)
            EVENTS_CFG=1 EVENTS_SPIN=1 interval=$SPIN_FLAP_INTERVAL
            # the first spinning event alternates by repeat (1, 2, 1...): the spin falls on the
            # `disable` seconds in one repeat and on the `enable` ones in the next, so a
            # difference between those two kinds of seconds cancels in the pooled figures
            SPIN_FIRST=$(((rep - 1) % SPIN_EVERY + 1))
            # every request, to split its latency by whether the Lua thread spun at the time
            dump=(--dump "$WORK/spin-rep$rep.dump")
            ;;
        *) return 0 ;;
        esac
    else
        EVENTS_CFG=0
        [ "$target" = harp-spin ] && return 0
    fi
    # TLS=1: the upstreams speak clear text, so there is no direct TLS baseline; the load
    # speaks TLS in throughput, connrate and idle only
    [ "$TLS" = 1 ] && [ "$target" = direct ] && return 0
    [ "$TLS" = 1 ] && [ "$sc" != throughput ] && [ "$sc" != connrate ] && [ "$sc" != idle ] && return 0
    busy=$("$PERF" quiet --busy "$QUIET_BUSY" --max-wait "${QUIET_WAIT}s" 2>/dev/null || echo null)
    loadavg=$(cut -d' ' -f1 /proc/loadavg)
    local tcp=null tw_before
    tw_before=$(ss -tanH state time-wait 2>/dev/null | wc -l)
    tcp_snapshot "$WORK/tcp.before"
    if start_proxy "$target" "$(backend_for "$sc")"; then
        local prof_pid= prof_base=
        if [ "$PROFILE" = 1 ] && [ -n "$PROXY_PID" ] && [[ " $PROFILE_TARGETS " == *" $target "* ]] &&
            [ "$sc" != idle ] && command -v perf >/dev/null; then
            mkdir -p "$OUT/profiles"
            prof_base=$OUT/profiles/$STAMP-$sc-$target-rep$rep
            # Starts after the warm-up, stops at the end of the window.
            (sleep "$WARMUP" && exec timeout $((DURATION + 5)) perf record -q -F 499 -g \
                -p "$PROXY_PID" -o "$prof_base.perf.data" -- sleep "$DURATION") \
                >/dev/null 2>&1 &
            prof_pid=$!
        fi
        if [ "$sc" = events ]; then
            local sock=$WORK/haproxy.sock
            [ "$target" != haproxy ] && sock=$WORK/harp.sock
            rm -f "$WORK/flap.log"
            timeout $((DURATION + WARMUP + 20)) "${LOAD_PIN[@]}" "$PERF" flap --socket "$sock" \
                --server be/s2 --interval "$interval" --duration "$((DURATION + WARMUP))s" \
                --log "$WORK/flap.log" >"$WORK/flap.json" 2>/dev/null &
            flap_pid=$!
        fi
        # shellcheck disable=SC2046
        json=$(timeout $((DURATION + WARMUP + 30)) "${LOAD_PIN[@]}" "$PERF" load \
            --target "127.0.0.1:$PROXY_PORT" $(load_args "$sc") \
            --duration "${DURATION}s" --warmup "${WARMUP}s" --json "${dump[@]}" \
            ${PROXY_PID:+--cpu-pid "$PROXY_PID"} 2>>"$WORK/load.log")
        local rc=$?
        [ "$rc" = 0 ] && [ -n "$json" ] || status=n/a
        if [ "$sc" = connrate ] && [ "$status" = ok ] && [ "$CR_STALL_BUSY" != 0 ]; then
            # A connect/request/close ping-pong sometimes falls into a mode where client, proxy
            # and upstream all wait (5-10x fewer conn/s with the CPUs idle; seen with no proxy
            # at all, so it is the machine, not the target). Such a run measures nothing about
            # the proxy: mark it "stalled" (kept in the raw data, left out of the tables) and
            # run it again once.
            if printf '%s' "$json" | python3 -c 'import json,sys
r=json.load(sys.stdin); secs=r.get("secs") or 0
busy=((r.get("client_cpu_s") or 0)+(r.get("cpu_s") or 0))/secs if secs else 9
sys.exit(0 if busy < float(sys.argv[1]) else 1)' "$CR_STALL_BUSY" 2>/dev/null; then
                status=stalled
            fi
        fi
        tcp_snapshot "$WORK/tcp.after"
        tcp=$(tcp_delta "$WORK/tcp.before" "$WORK/tcp.after")
        [ -n "$tcp" ] || tcp=null
        case $target in haproxy*) spl=$(haproxy_splice_counts) ;; esac
        if [ -n "$flap_pid" ]; then
            wait "$flap_pid" 2>/dev/null
            flap=$(head -n1 "$WORK/flap.json" 2>/dev/null)
            [ -n "$flap" ] || flap=null
            if [ "$target" != haproxy ]; then
                # The spinning callback may still be running the last event: give it time.
                [ "$EVENTS_SPIN" = 1 ] && sleep "$SPIN_SECS"
                evlat=$(python3 "$ROOT/perf/evlat.py" "$WORK/flap.log" "$WORK/probe.log" 2>>"$WORK/load.log")
                [ -n "$evlat" ] || evlat=null
                if [ "$EVENTS_SPIN" = 1 ]; then
                    # kept per repeat for the pooled figure at the end
                    local base=$WORK/spin-rep$rep
                    cp "$WORK/flap.log" "$base.flap" 2>/dev/null
                    cp "$WORK/probe.log.spin" "$base.spans" 2>/dev/null
                    split=$(python3 "$ROOT/perf/spinsplit.py" "$base.dump" "$base.spans" "$base.flap" 2>>"$WORK/load.log")
                    [ -n "$split" ] || split=null
                fi
            fi
        fi
        if [ -n "$prof_pid" ]; then
            wait "$prof_pid" 2>/dev/null
            if [ -s "$prof_base.perf.data" ]; then
                timeout 120 perf report -q -i "$prof_base.perf.data" --no-children --stdio \
                    --percent-limit 0.5 -g none 2>/dev/null | head -n 80 >"$prof_base.txt"
                log "profile: $prof_base.txt (perf.data beside it)"
            fi
        fi
        if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
            status=n/a
            log "$target died during the run"
        fi
        stop_proxy
    else
        status=n/a
    fi
    [ -n "$json" ] || json=null
    local sp=${spl% *} tot=${spl#* }
    printf '{"rep":%s,"scenario":"%s","target":"%s","status":"%s","busy_before":%s,"loadavg":%s,"spliced_out":%s,"bytes_out":%s,"flap":%s,"evlat":%s,"spinsplit":%s,"time_wait_before":%s,"tcp":%s,"result":%s}\n' \
        "$rep" "$sc" "$target" "$status" "$busy" "$loadavg" "$sp" "$tot" "$flap" "$evlat" "$split" "${tw_before:-null}" "$tcp" "$json" >>"$RAW"
    local fig
    fig=$(printf '%s' "$json" | python3 -c 'import json,sys
r=json.load(sys.stdin) or {}
r={k:("n/a" if v is None else v) for k,v in r.items()}
s=r.get("scenario")
if s=="throughput": print("%.2f Gbit/s, %s CPU-s/GB" % (r["gbit_s"], r["cpu_s_per_gb"] if r["cpu_s_per_gb"]=="n/a" else round(r["cpu_s_per_gb"],3)))
elif s=="connrate": print("%.0f conn/s, %s CPU-us/conn" % (r["conn_s"], r["cpu_us_per_conn"] if r["cpu_us_per_conn"]=="n/a" else round(r["cpu_us_per_conn"],1)))
elif s=="idle": print("%d conns held, proxy RSS %s -> %s KiB, %s B/conn" % (r["connections"], r["rss_before_kib"], r["rss_kib"], r["rss_per_conn_b"] if r["rss_per_conn_b"]=="n/a" else round(r["rss_per_conn_b"])))
elif s=="rr": print("%.0f req/s, p50 %s p99 %s p99.9 %s max %s us" % (r["req_s"], r["p50_us"], r["p99_us"], r["p999_us"], r["max_us"]))
else: print("n/a")' 2>/dev/null || echo n/a)
    local extra=
    [ "$sp" != null ] && extra=" spliced ${sp}/${tot} bytes out"
    [ "$flap" != null ] && extra="$extra flap $flap"
    [ "$evlat" != null ] && extra="$extra event-to-callback $evlat"
    [ "$split" != null ] && extra="$extra spin/plain seconds $(printf '%s' "$split" | python3 -c 'import json,sys
r=json.load(sys.stdin); f=lambda v: "n/a" if v is None else "%.3f" % v
print("p50 %s p99 %s p99.9 %s" % (f(r["p50_ratio"]), f(r["p99_ratio"]), f(r["p999_ratio"])))' 2>/dev/null)"
    [ "$sc" = connrate ] && extra="$extra time_wait_before ${tw_before:-?} tcp $tcp"
    log "rep $rep $sc $target: $status $fig (load $loadavg, busy $busy)$extra"
    LAST_STATUS=$status
}

if [[ " $SCENARIOS " == *" rr "* || " $SCENARIOS " == *" events "* ]] && [ -z "$RR_RATE" ]; then
    cal=haproxy
    command -v haproxy >/dev/null || cal=direct
    log "rr calibration: closed-loop max rate through $cal"
    RR_RATE=0
    max=0
    if start_proxy "$cal" "$UP_ECHO"; then
        # shellcheck disable=SC2046
        max=$(timeout $((DURATION + WARMUP + 30)) "${LOAD_PIN[@]}" "$PERF" load \
            --target "127.0.0.1:$PROXY_PORT" $(load_args rr) --duration "${DURATION}s" \
            --warmup "${WARMUP}s" --json 2>>"$WORK/load.log" |
            python3 -c 'import json,sys; print(int(json.load(sys.stdin)["req_s"]))' 2>/dev/null || echo 0)
        stop_proxy
    fi
    RR_RATE=$((max / 2))
    [ "$RR_RATE" -gt 0 ] || RR_RATE=5000
    RR_CAL="closed-loop max through $cal: $max req/s; offered rate = 50 % = $RR_RATE req/s"
    log "$RR_CAL"
elif [ -n "$RR_RATE" ]; then
    RR_CAL="fixed by RR_RATE"
else
    RR_CAL="rr not run"
fi

read -r -a TARGET_LIST <<<"$TARGETS"
N=${#TARGET_LIST[@]}
for rep in $(seq "$REPEATS"); do
    for sc in $SCENARIOS; do
        # Rotate the starting target each repeat so no target always runs first or last.
        list=("${TARGET_LIST[@]}")
        # events: harp with a spinning Lua callback runs beside harp (same repeat) for the ratio.
        [ "$sc" = events ] && [[ " $TARGETS " == *" harp "* ]] && list+=(harp-spin)
        n=${#list[@]}
        for i in $(seq 0 $((n - 1))); do
            run_one "$rep" "$sc" "${list[$(((i + rep - 1) % n))]}"
            if [ "$LAST_STATUS" = stalled ]; then
                log "rep $rep $sc ${list[$(((i + rep - 1) % n))]}: stalled run (client and proxy idle), running it again"
                run_one "$rep" "$sc" "${list[$(((i + rep - 1) % n))]}"
            fi
        done
    done
done

# ---------------------------------------------------------------- report ---------------------
mkdir -p "$OUT"
cp "$RAW" "$OUT/$STAMP.jsonl"
# harp-spin: every repeat's requests pooled (spinning seconds against idle ones)
SPIN_POOLED=
spin_args=()
for d in "$WORK"/spin-rep*.dump; do
    [ -f "$d" ] && spin_args+=("$d" "${d%.dump}.spans" "${d%.dump}.flap")
done
if [ "${#spin_args[@]}" -gt 0 ]; then
    SPIN_POOLED=$(python3 perf/spinsplit.py "${spin_args[@]}" 2>>"$WORK/load.log")
fi
META=$OUT/$STAMP.meta
{
    echo "date=$STAMP"
    echo "kernel=$(uname -r)"
    echo "cpus=$(nproc)"
    echo "cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    # HARP_LABEL describes a harp built elsewhere (HARP=...), e.g. "branch worker @ abc1234".
    echo "harp=${HARP_LABEL:-$(git rev-parse --short HEAD 2>/dev/null) $(git diff --quiet 2>/dev/null || echo '(dirty)')} ($HARP)"
    # harp-b: HARP_B_LABEL describes the second build of a same-run A/B
    [ -n "$HARP_B" ] && echo "harp_b=${HARP_B_LABEL:-?} ($HARP_B)"
    echo "haproxy=$(haproxy -v 2>/dev/null | head -n1)"
    echo "nginx=$(nginx -v 2>&1 | head -n1)"
    echo "repeats=$REPEATS"
    echo "duration=$DURATION"
    echo "warmup=$WARMUP"
    echo "threads=$THREADS"
    echo "pin=$PIN"
    echo "lua_sched=$LUA_SCHED"
    echo "cpu_latency=$CPU_LATENCY_HELD"
    echo "tcp_cc=$CC_USED"
    echo "tp=conns $TP_CONNS, dir $TP_DIR"
    echo "connrate=workers $CR_CONNS, $RR_SIZE B each way, $CR_CLOSE closes first"
    echo "idle=$IDLE_CONNS connections, one $RR_SIZE B exchange each, then idle 1 s"
    echo "events=rr load while be/s2 is disabled/enabled every $FLAP_INTERVAL through the Runtime API (harp-spin: every $SPIN_FLAP_INTERVAL, the Lua callback of every ${SPIN_EVERY}th event spins ${SPIN_SECS} s, starting with event 1, 2, 1... by repeat, burst-timeout $LUA_BURST_MS ms)"
    [ -n "$SPIN_POOLED" ] && echo "spin_pooled=$SPIN_POOLED"
    echo "rr=conns $RR_CONNS, $RR_SIZE B each way, rate $RR_RATE req/s ($RR_CAL)"
    echo "nofile=$NOFILE (hard $(ulimit -Hn))"
    echo "command=REPEATS=$REPEATS DURATION=$DURATION WARMUP=$WARMUP THREADS=$THREADS PIN=$PIN LUA_SCHED=$LUA_SCHED CPU_LATENCY=$CPU_LATENCY CC=$CC SPIN_EVERY=$SPIN_EVERY RULES=$RULES STICK=$STICK MAP=$MAP LOG=$LOG TLS=$TLS SCENARIOS=\"$SCENARIOS\" TARGETS=\"$TARGETS\" perf/compare.sh"
} >"$META"
python3 perf/summarize.py "$OUT/$STAMP.jsonl" "$META" "$OUT/$STAMP.md" "$OUT/$STAMP-rr.svg" ||
    { log "summary failed; raw results in $OUT/$STAMP.jsonl"; exit 1; }
log "wrote $OUT/$STAMP.md"
cat "$OUT/$STAMP.md"
