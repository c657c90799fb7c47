#!/usr/bin/env bash
# dnsperf: Portcullis next to Knot DNS and NSD on the same machine.
#
# Each server answers for the same generated zone (bench.test, about 10,000 names) on 127.0.0.1 and
# its own free port, with one worker where the server lets us choose, every thread pinned to
# SERVER_CPU; dnsperf runs pinned to CLIENT_CPU. On a small machine dnsperf itself is the bottleneck
# (about 10 us of CPU per query), so raw QPS says little: the figure that compares servers is queries
# answered per second of server CPU (utime + stime from /proc/PID/stat, summed over the server's
# processes, before and after each run). Rounds are interleaved (knot, nsd, portcullis, knot, ...)
# and the median per server is reported. A last pass at a fixed offered load (-Q) below saturation
# compares latency at the same load.
#
# MODE=tcp runs the same passes over TCP instead (dnsperf -m tcp: each dnsperf client is one
# connection, queries pipelined on it up to -q outstanding in all), then measures what idle TCP
# connections cost: IDLE_CONNS connections opened to a freshly started server (from several 127.0.0.x
# source addresses), the server's resident memory (VmRSS summed over its processes) read before, once
# the server has accepted them all (its open file descriptors say so), and again after one query on
# each; the figure is the increase divided by the connections. MODE=both runs UDP, then TCP.
#
# usage: bench/dnsperf/run.sh            (from anywhere; about 3.5 minutes with the defaults)
#        MODE=tcp bench/dnsperf/run.sh   (about 5.5 minutes)
# Environment (defaults in brackets):
#   ROUNDS [5]  DURATION [6] seconds per dnsperf run  WARMUP [5] seconds per server before round 1
#   CLIENTS [4] dnsperf -c  OUTSTANDING [100] dnsperf -q  QUERIES [100000] lines in the query file
#   FIXED_QPS ["20000 60000"] offered loads of the fixed-load pass, one run per load and server
#             ("" skips it)  FIXED_DURATION [$DURATION]  FIXED_ROUNDS [1] interleaved rounds of
#             each fixed load (the table gives medians and, from 2 rounds, the per-round ratios)
#   NSD_MINIMAL [yes] NSD's minimal-responses: NSD alone adds the apex NS and their addresses to
#             every positive answer by default; "yes" makes its responses like Knot's and Portcullis's
#   SERVERS ["knot nsd portcullis"]  SERVER_CPU [0]  CLIENT_CPU [1]
#   WORKERS [1] UDP workers (Knot udp-workers and tcp-workers, NSD server-count, Portcullis
#             --udp-workers); for scaling, WORKERS=2 SERVER_CPU=0,1 CLIENT_CPU=0,1 DNSPERF_THREADS=2
#   DNSPERF_THREADS [1] dnsperf -T
#   COMPARE [2000] queries from the mix sent with dig to every server to compare answers (0 skips)
#   PORTCULLIS_PUBLISH  an existing `dotnet publish` directory (skips the build; a Native AOT
#             publish, with the native `portcullis` and no portcullis.dll, is run as such)
#   BASELINE_PUBLISH  a second Portcullis (a `dotnet publish` directory) to run beside the first as
#             the server "baseline" (add it to SERVERS): before/after in one run, interleaved
#   CONFIG_portcullis, CONFIG_baseline  a YAML file appended to that server's configuration
#             (bench/watch/run.sh: the same build with and without the watchers)
#   PORTCULLIS_REF  build this commit (exported with `git archive` into the temporary directory)
#             instead of the working tree, so that a figure belongs to a known commit
#   QUIET_WAIT [10] before each run, wait up to this many seconds for a second in which the machine
#             is at least 90% idle (other work on a shared machine skews a run; 0 disables)
#   QUIET_BUDGET [60] at most this many seconds of such waiting in the whole run
#   KEEP [0]  1 keeps the temporary directory (zone, configs, logs, every dnsperf output)
#   MODE [udp] udp, tcp or both (UDP passes, then TCP passes and the idle-connection test)
#   TCP_CLIENTS [4] dnsperf -c over TCP (connections)  TCP_OUTSTANDING [100] dnsperf -q over TCP
#   TCP_FIXED_QPS ["20000 40000"] offered loads of the TCP fixed-load pass ("" skips it)
#   IDLE_CONNS ["2000 8000"] numbers of idle TCP connections, a fresh server for each ("" skips the
#             test; two counts give the marginal cost, which a heap with free room hides at the
#             smaller count)  IDLE_ROUNDS [3] rounds, interleaved; medians are reported
#             IDLE_PER_SOURCE [20] connections per source address (127.0.0.2, 127.0.0.3, ...;
#             Portcullis allows 32 per client address by default)
#   TCP_LIMIT [2 x the largest IDLE_CONNS + 100, at least 1000] each server's connection limit: Knot
#             tcp-max-clients, NSD tcp-count (NSD shortens its idle timeout to 200 ms once more than
#             half of tcp-count is in use, hence twice), Portcullis limits: tcp-max-connections
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# log, wait_quiet: shared with the other harness.
. "$HERE/../lib.sh"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
QUERIES=${QUERIES:-100000}
FIXED_QPS=${FIXED_QPS-20000 60000}
NSD_MINIMAL=${NSD_MINIMAL:-yes}
FIXED_DURATION=${FIXED_DURATION:-$DURATION}
FIXED_ROUNDS=${FIXED_ROUNDS:-1}
SERVERS=${SERVERS:-knot nsd portcullis}
WORKERS=${WORKERS:-1}
DNSPERF_THREADS=${DNSPERF_THREADS:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
COMPARE=${COMPARE:-2000}
KEEP=${KEEP:-0}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-60}
MODE=${MODE:-udp}
case $MODE in
    udp) TRANSPORTS=udp ;;
    tcp) TRANSPORTS=tcp ;;
    both) TRANSPORTS="udp tcp" ;;
    *) echo "run.sh: MODE must be udp, tcp or both" >&2; exit 2 ;;
esac
TCP_CLIENTS=${TCP_CLIENTS:-4}
TCP_OUTSTANDING=${TCP_OUTSTANDING:-100}
TCP_FIXED_QPS=${TCP_FIXED_QPS-20000 40000}
IDLE_CONNS=${IDLE_CONNS-2000 8000}
IDLE_ROUNDS=${IDLE_ROUNDS:-3}
IDLE_PER_SOURCE=${IDLE_PER_SOURCE:-20}
IDLE_MAX=0
for n in $IDLE_CONNS; do [ "$n" -gt "$IDLE_MAX" ] && IDLE_MAX=$n; done
TCP_LIMIT=${TCP_LIMIT:-$((2 * IDLE_MAX + 100 > 1000 ? 2 * IDLE_MAX + 100 : 1000))}
USE_TCP=0
case " $TRANSPORTS " in *" tcp "*) USE_TCP=1 ;; esac
if [ "$USE_TCP" = 1 ]; then
    # Every idle connection is a descriptor in the client and in the server; the servers inherit this.
    need=$((TCP_LIMIT + 256))
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
        hard=$(ulimit -Hn)
        if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then ulimit -n "$need"; else ulimit -n "$hard"; fi
    fi
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HZ=$(getconf CLK_TCK)

require_tools run.sh dnsperf taskset dig

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-dnsperf.XXXXXX")
declare -A PID PORT
STARTED=()

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED[@]}"; do
        # Bounded wait (5 s), then KILL: a stuck server must not hang the script.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM



# The server's process and its descendants (NSD forks a serving child and xfrd).
tree_pids() {
    local pid=$1 child
    echo "$pid"
    for child in $(pgrep -P "$pid" || true); do tree_pids "$child"; done
}

# utime + stime in clock ticks, summed over the tree; threads are included in each process's figure.
cpu_ticks() {
    local total=0 pid stat rest
    for pid in $(tree_pids "$1"); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }              # the command name may hold spaces; fields follow the last ')'
        set -- $rest                   # $1 is field 3 (state): utime is field 14, stime field 15
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# Involuntary context switches over the server's threads: how often something else took its CPU.
preemptions() {
    local p
    for p in $(tree_pids "$1"); do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/^nonvoluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}

pin() {
    local pid
    for pid in $(tree_pids "$1"); do taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null; done
}

# wait_answering NAME PORT PID [TAG]: TAG names the instance's log ($WORK/TAG.log, TAG defaults to NAME).
wait_answering() {
    local name=$1 port=$2 pid=$3 tag=${4:-$1}
    for _ in $(seq 120); do
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited; its log:" >&2; cat "$WORK/$tag.log" >&2; exit 1; }
        if dig +time=1 +tries=1 +norec @127.0.0.1 -p "$port" bench.test SOA 2>/dev/null | grep -q 'flags: qr aa'; then
            return 0
        fi
        sleep 0.25
    done
    echo "run.sh: $name did not answer bench.test SOA within 30 s; its log:" >&2
    cat "$WORK/$tag.log" >&2
    exit 1
}

# start_SERVER PORT [TAG]: the instance's files go to $WORK/TAG and its log to $WORK/TAG.log (TAG
# defaults to the server's name; the idle-connection test starts fresh instances beside the first).
start_knot() {
    local port=$1 tag=${2:-knot}
    local dir=$WORK/$tag
    mkdir -p "$dir"
    cp "$WORK/bench.test.zone" "$dir/"
    cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir"
    listen: 127.0.0.1@$port
    udp-workers: $WORKERS
    tcp-workers: $WORKERS
    background-workers: 1
$(if [ "$USE_TCP" = 1 ]; then echo "    tcp-max-clients: $TCP_LIMIT"; fi)
database:
    storage: "$dir"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$dir"
    file: "%s.zone"
    semantic-checks: off
zone:
  - domain: bench.test
EOF
    taskset -c "$SERVER_CPU" knotd -c "$dir/knot.conf" >"$WORK/$tag.log" 2>&1 &
    echo $!
}

start_nsd() {
    local port=$1 tag=${2:-nsd}
    local dir=$WORK/$tag
    mkdir -p "$dir"
    cp "$WORK/bench.test.zone" "$dir/"
    cat >"$dir/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$port
    server-count: $WORKERS
    rrl-ratelimit: 0
    minimal-responses: $NSD_MINIMAL
$(if [ "$USE_TCP" = 1 ]; then echo "    tcp-count: $TCP_LIMIT"; fi)
    username: ""
    chroot: ""
    zonesdir: "$dir"
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    pidfile: "$dir/nsd.pid"
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: bench.test
    zonefile: bench.test.zone
EOF
    # -d: stay in the foreground (NSD still forks its serving child and xfrd).
    taskset -c "$SERVER_CPU" nsd -d -c "$dir/nsd.conf" >"$WORK/$tag.log" 2>&1 &
    echo $!
}

# The baseline: another Portcullis build (BASELINE_PUBLISH), started like the first.
start_baseline() {
    [ -n "${BASELINE_PUBLISH:-}" ] || { echo "run.sh: SERVERS names baseline but BASELINE_PUBLISH is not set" >&2; exit 2; }
    PUBLISH=$BASELINE_PUBLISH start_portcullis "$1" "${2:-baseline}"
}

start_portcullis() {
    local port=$1 tag=${2:-portcullis}
    # One UDP worker, as Knot and NSD get one (builds before --udp-workers existed had one anyway).
    local workers=() config=() cmd=(dotnet "$PUBLISH/portcullis.dll")
    # A Native AOT publish directory has the native binary and no portcullis.dll.
    [ -f "$PUBLISH/portcullis.dll" ] || cmd=("$PUBLISH/portcullis")
    if "${cmd[@]}" serve --help 2>/dev/null | grep -q -- --udp-workers; then workers=(--udp-workers "$WORKERS"); fi
    # CONFIG_<tag> (CONFIG_portcullis, CONFIG_baseline): a YAML file appended to the server's configuration.
    local extra_var="CONFIG_$tag"
    local extra=${!extra_var:-}
    if [ "$USE_TCP" = 1 ] || [ -n "$extra" ]; then
        : >"$WORK/$tag.yaml"
        # Only the total is raised; the per-address limit (32) stays, the idle test spreads its sources.
        [ "$USE_TCP" = 1 ] && printf 'limits:\n  tcp-max-connections: %s\n' "$TCP_LIMIT" >>"$WORK/$tag.yaml"
        [ -n "$extra" ] && cat "$extra" >>"$WORK/$tag.yaml"
        config=(--config "$WORK/$tag.yaml")
    fi
    taskset -c "$SERVER_CPU" "${cmd[@]}" serve "${config[@]}" --listen "127.0.0.1:$port" \
        --zone "bench.test=$WORK/bench.test.zone" --log-level warning "${workers[@]}" >"$WORK/$tag.log" 2>&1 &
    echo $!
}

# --- build and data -------------------------------------------------------------------------------
publish_portcullis
log "generating the zone and $QUERIES queries"
"$PY" "$HERE/gen.py" "$WORK/bench.test.zone" "$WORK/queries" "$QUERIES" 1

# --- servers --------------------------------------------------------------------------------------
for s in $SERVERS; do
    PORT[$s]=$(free_port)
    PID[$s]=$(start_"$s" "${PORT[$s]}")
    STARTED+=("${PID[$s]}")
done
for s in $SERVERS; do
    wait_answering "$s" "${PORT[$s]}" "${PID[$s]}"
    pin "${PID[$s]}"
    # What the kernel says each thread may use (knotd pins its own workers; this shows the re-pin held).
    cpus=$(for p in $(tree_pids "${PID[$s]}"); do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/^Cpus_allowed_list/ { print $2 }' | sort -u | paste -sd' ')
    threads=$(for p in $(tree_pids "${PID[$s]}"); do ls /proc/"$p"/task; done | wc -l)
    log "$s answering on 127.0.0.1:${PORT[$s]} (pid ${PID[$s]}, $(tree_pids "${PID[$s]}" | wc -l) process(es), $threads threads, allowed CPUs: $cpus)"
done


# One dnsperf run: appends "mode server round sent completed lost qps latency cpu_s q_per_cpu_s
# response_octets server_preemptions reconnections client_cpu_busy_percent rcodes"
# to $WORK/results and keeps dnsperf's output. A mode starting with "tcp-" runs dnsperf -m tcp with
# TCP_CLIENTS connections and TCP_OUTSTANDING queries outstanding over them.
RESULTS=$WORK/results
: >"$RESULTS"
# "busy total" jiffies of the client's CPU: how close dnsperf came to using all of it.
client_cpu() {
    # One CPU: its line of /proc/stat; a list or range (the scaling run): the machine's total.
    local c="cpu$CLIENT_CPU"
    case $CLIENT_CPU in *[,-]*) c=cpu ;; esac
    awk -v c="$c" '$1 == c { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
measure() {
    local mode=$1 s=$2 round=$3 seconds=$4 rate=$5 out before after pre0 pre1
    out=$WORK/dnsperf-$mode-$s-$round.txt
    local extra=() clients=$CLIENTS outstanding=$OUTSTANDING
    [ "$rate" -gt 0 ] && extra=(-Q "$rate")
    case $mode in tcp-*) extra+=(-m tcp); clients=$TCP_CLIENTS; outstanding=$TCP_OUTSTANDING ;; esac
    [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
    pre0=$(preemptions "${PID[$s]}")
    c0=$(client_cpu)
    before=$(cpu_ticks "${PID[$s]}")
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$WORK/queries" -l "$seconds" \
        -c "$clients" -q "$outstanding" -T "$DNSPERF_THREADS" "${extra[@]}" >"$out" 2>&1
    after=$(cpu_ticks "${PID[$s]}")
    c1=$(client_cpu)
    pre1=$(preemptions "${PID[$s]}")
    awk -v mode="$mode" -v s="$s" -v r="$round" -v ticks=$((after - before)) -v hz="$HZ" -v pre=$((pre1 - pre0)) \
        -v cbusy=$(( ${c1% *} - ${c0% *} )) -v ctotal=$(( ${c1#* } - ${c0#* } )) '
        /Queries sent:/ { sent = $3 }
        /Queries completed:/ { done = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { lat = $4 }
        /Average packet size:/ { resp = $NF }
        /Reconnections:/ { reconn = $2 }
        /Response codes:/ { sub(/.*Response codes: */, ""); gsub(/ \([0-9.]+%\)/, ""); gsub(/, /, ","); gsub(/ /, "="); rc = $0 }
        END {
            cpu = ticks / hz
            printf "%s %s %s %d %d %d %.0f %.6f %.2f %.0f %d %d %d %.0f %s\n", mode, s, r, sent, done, lost, qps, lat, cpu, (cpu > 0 ? done / cpu : 0), resp, pre, reconn, (ctotal > 0 ? 100 * cbusy / ctotal : 0), rc
        }' "$out" >>"$RESULTS"
    tail -n 1 "$RESULTS" | awk '{ printf "  %-10s round %s: sent %d completed %d lost %d, %d q/s, latency %.3f ms, server CPU %.2f s, %d queries per CPU-second; response %d octets; preempted %d times; %sdnsperf CPU %d%% busy; %s\n", $2, $3, $4, $5, $6, $7, $8 * 1000, $9, $10, $11, $12, ($1 ~ /^tcp-/ ? "reconnections " $13 "; " : ""), $14, $15 }' >&2
}

for t in $TRANSPORTS; do
    if [ "$t" = udp ]; then p=""; rates=$FIXED_QPS; c=$CLIENTS; q=$OUTSTANDING; else p="tcp-"; rates=$TCP_FIXED_QPS; c=$TCP_CLIENTS; q=$TCP_OUTSTANDING; fi
    if [ "$WARMUP" -gt 0 ]; then
        log "$t warm-up: $WARMUP s per server (not counted; lets .NET's tiered JIT reach its final code)"
        for s in $SERVERS; do measure "${p}warmup" "$s" 0 "$WARMUP" 0; done
    fi

    log "$t saturation: $ROUNDS interleaved rounds of $DURATION s (dnsperf -m $t -c $c -q $q)"
    for r in $(seq "$ROUNDS"); do
        for s in $SERVERS; do measure "${p}max" "$s" "$r" "$DURATION" 0; done
    done

    for rate in $rates; do
        log "$t fixed offered load: -Q $rate for $FIXED_DURATION s, $FIXED_ROUNDS interleaved round(s) per server"
        for r in $(seq "$FIXED_ROUNDS"); do
            for s in $SERVERS; do measure "${p}fixed$rate" "$s" "$r" "$FIXED_DURATION" "$rate"; done
        done
    done
done

# --- answers compared -----------------------------------------------------------------------------
# The first COMPARE queries of the mix, sent as dnsperf sends them (RD, no EDNS) with dig in batch
# mode; per query: rcode, flags and each section as a sorted set. Every server is compared with the
# first one in SERVERS.
if [ "$COMPARE" -gt 0 ]; then
    head -n "$COMPARE" "$WORK/queries" >"$WORK/compare.batch"
    for t in $TRANSPORTS; do
        # Over TCP dig opens one connection per query.
        flag=+notcp; [ "$t" = tcp ] && flag=+tcp
        for s in $SERVERS; do
            dig @127.0.0.1 -p "${PORT[$s]}" "$flag" +noedns +rec +time=2 +tries=2 +nocmd +nostats +noquestion \
                -f "$WORK/compare.batch" >"$WORK/compare-$t-$s.txt" 2>&1 || true
        done
    done
fi

# --- idle TCP connections -------------------------------------------------------------------------
# A fresh instance of each server per round (memory a process has once grown it keeps, so a second
# measurement on the same process would see the first one's pages), interleaved, with idle.py.
IDLE=$WORK/idle
: >"$IDLE"
stop_server() {
    local pid=$1 p keep=()
    terminate "$pid" 50
    # Forget it, so that cleanup never signals a process id the system has since given to another.
    for p in "${STARTED[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    STARTED=("${keep[@]}")
}
if [ "$USE_TCP" = 1 ] && [ -n "$IDLE_CONNS" ]; then
    log "idle TCP connections: $IDLE_CONNS per server, $IDLE_PER_SOURCE per source address, $IDLE_ROUNDS rounds, a fresh server each time"
    for r in $(seq "$IDLE_ROUNDS"); do
      for n in $IDLE_CONNS; do
        for s in $SERVERS; do
            tag=idle-$s-$n-$r
            port=$(free_port)
            pid=$(start_"$s" "$port" "$tag")
            STARTED+=("$pid")
            wait_answering "$s" "$port" "$pid" "$tag"
            pin "$pid"
            [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
            line=$(taskset -c "$CLIENT_CPU" "$PY" "$HERE/idle.py" "$port" "$pid" "$n" "$IDLE_PER_SOURCE" bench.test)
            echo "$s $r $line" >>"$IDLE"
            stop_server "$pid"
            echo "$line" | awk -v s="$s" -v r="$r" '{
                for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                c = v["connections"] > 0 ? v["connections"] : 1
                printf "  %-10s round %s: %d connected, %d accepted, %d answered, %d still open; RSS %.1f -> %.1f (idle) -> %.1f MiB (one query each): %.0f / %.0f bytes per connection\n",
                    s, r, v["connections"], v["accepted"], v["answered"], v["still_open"], v["rss0_kib"] / 1024, v["rss_idle_kib"] / 1024, v["rss_used_kib"] / 1024,
                    (v["rss_idle_kib"] - v["rss0_kib"]) * 1024 / c, (v["rss_used_kib"] - v["rss0_kib"]) * 1024 / c }' >&2
        done
      done
    done
fi

# --- summary --------------------------------------------------------------------------------------
summary() {
    echo
    echo "nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -r)"
    echo "knotd $(knotd -V 2>&1 | awk '{print $NF}'), NSD $(nsd -v 2>&1 | awk 'NR==1 {print $3}'), $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}'), .NET $(dotnet --version)"
    echo "server pinned to CPU $SERVER_CPU (all threads), dnsperf to CPU $CLIENT_CPU; $ROUNDS rounds x $DURATION s; dnsperf -c $CLIENTS -q $OUTSTANDING; NSD minimal-responses: $NSD_MINIMAL"
    if [ "$USE_TCP" = 1 ]; then
        echo "TCP: dnsperf -m tcp -c $TCP_CLIENTS -q $TCP_OUTSTANDING; connection limits $TCP_LIMIT (Knot tcp-max-clients, NSD tcp-count, Portcullis tcp-max-connections; per address: Portcullis 32, the others none); ulimit -n $(ulimit -n)"
    fi
    echo
    "$PY" - "$RESULTS" "$SERVERS" "$WORK" "$COMPARE" "$TRANSPORTS" "$IDLE" <<'EOF'
import statistics, sys, re, os
results, servers, work, compare = sys.argv[1], sys.argv[2].split(), sys.argv[3], int(sys.argv[4])
transports, idle = sys.argv[5].split(), sys.argv[6]
rows = [l.split() for l in open(results)]
def med(mode, s, i):
    v = [float(r[i]) for r in rows if r[0] == mode and r[1] == s]
    return statistics.median(v) if v else float("nan")
def show(mode, title):
    if not any(r[0] == mode for r in rows):
        return
    print(title)
    tcp = mode.startswith("tcp-")
    print(f"{'server':<11}{'sent':>10}{'completed':>11}{'lost':>7}{'q/s':>9}{'latency ms':>12}{'CPU s':>7}{'q/CPU-s':>9}{'resp B':>7}{'preempt':>8}"
          + (f"{'reconn':>7}" if tcp else "") + f"{'lost, all':>10}{'client %':>9}  rcodes (last run)")
    for s in servers:
        mine = [r for r in rows if r[0] == mode and r[1] == s]
        last = mine[-1]
        print(f"{s:<11}{med(mode,s,3):>10.0f}{med(mode,s,4):>11.0f}{med(mode,s,5):>7.0f}{med(mode,s,6):>9.0f}"
              f"{med(mode,s,7)*1000:>12.3f}{med(mode,s,8):>7.2f}{med(mode,s,9):>9.0f}{med(mode,s,10):>7.0f}{med(mode,s,11):>8.0f}"
              + (f"{sum(int(r[12]) for r in mine):>7d}" if tcp else "")
              + f"{sum(int(r[5]) for r in mine):>10d}{med(mode,s,13):>9.0f}  {last[14] if len(last) > 14 else ''}")
    if "portcullis" in servers:
        for s in servers:
            if s == "portcullis":
                continue
            p = lambda i: med(mode, "portcullis", i) / med(mode, s, i)
            print(f"  portcullis/{s}: queries per CPU-second {p(9):.2f}x, q/s {p(6):.2f}x, latency {p(7):.2f}x")
        if mode.endswith("max") or sum(r[0] == mode and r[1] == "portcullis" for r in rows) > 1:
            for s in servers:
                if s == "portcullis":
                    continue
                per = [float(a[9]) / float(b[9]) for a, b in
                       zip([r for r in rows if r[0] == mode and r[1] == "portcullis"], [r for r in rows if r[0] == mode and r[1] == s])]
                print(f"  portcullis/{s} per round (q/CPU-s): " + ", ".join(f"{x:.2f}" for x in per))
    print()
for t in transports:
    p = "" if t == "udp" else "tcp-"
    show(p + "max", f"{t.upper()} saturation (median of the rounds; 'lost, all' sums them; client %: dnsperf's CPU busy"
                    + ("; reconn: dnsperf's reconnections, summed):" if t == "tcp" else "):"))
    for mode in dict.fromkeys(r[0] for r in rows if r[0].startswith(p + "fixed")):
        show(mode, f"{t.upper()} fixed offered load, dnsperf -Q {mode[len(p) + 5:]}:")

def parse(path):
    """dig batch output -> list of (rcode, flags, answer, authority, additional) per query."""
    out, cur, section = [], None, None
    for line in open(path):
        line = line.rstrip("\n")
        m = re.search(r"->>HEADER<<- opcode: \w+, status: (\w+)", line)
        if m:
            cur = {"rcode": m.group(1), "flags": "", "ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
            out.append(cur); section = None; continue
        if cur is None:
            continue
        m = re.match(r";; flags: ([a-z ]*);", line)
        if m:
            cur["flags"] = " ".join(sorted(m.group(1).split())); continue
        m = re.match(r";; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line)
        if m:
            section = m.group(1); continue
        if line.startswith(";") or not line.strip():
            if not line.strip(): section = None
            continue
        if section:
            f = line.split()
            cur[section].append(" ".join([f[0].lower()] + f[1:]))
    return [(q["rcode"], q["flags"], tuple(sorted(q["ANSWER"])), tuple(sorted(q["AUTHORITY"])), tuple(sorted(q["ADDITIONAL"]))) for q in out]

rows_idle = [l.split() for l in open(idle)] if os.path.exists(idle) else []
if rows_idle:
    per = {}   # (server, connections) -> [(accepted, answered, open, B/conn idle, B/conn used, base MiB, dKiB idle, dKiB used)]
    for r in rows_idle:
        v = dict(x.split("=", 1) for x in r[2:])
        n = max(int(v["connections"]), 1)
        d_idle, d_used = int(v["rss_idle_kib"]) - int(v["rss0_kib"]), int(v["rss_used_kib"]) - int(v["rss0_kib"])
        per.setdefault((r[0], int(v["connections"])), []).append(
            (int(v["accepted"]), int(v["answered"]), int(v["still_open"]), d_idle * 1024 / n, d_used * 1024 / n,
             int(v["rss0_kib"]) / 1024, d_idle, d_used))
    counts = sorted({k[1] for k in per})
    print(f"Idle TCP connections (a fresh server per measurement; median of {max(len(v) for v in per.values())}; VmRSS increase / connections):")
    print(f"{'server':<11}{'conns':>6}{'accepted':>9}{'answered':>9}{'open':>6}{'base MiB':>9}{'+MiB idle':>10}{'B/conn idle':>12}{'B/conn used':>12}  per round (idle)")
    m = {}
    for n in counts:
        for s in servers:
            rs = per.get((s, n))
            if not rs:
                continue
            md = lambda i: statistics.median(x[i] for x in rs)
            m[s, n] = (md(3), md(4), md(6), md(7))
            print(f"{s:<11}{n:>6}{min(x[0] for x in rs):>9}{min(x[1] for x in rs):>9}{min(x[2] for x in rs):>6}{md(5):>9.1f}{md(6) / 1024:>10.1f}"
                  f"{md(3):>12.0f}{md(4):>12.0f}  " + ", ".join(f"{x[3]:.0f}" for x in rs))
    if len(counts) > 1:
        a, b = counts[0], counts[-1]
        print(f"Marginal cost from {a} to {b} connections (median increase at {b} minus at {a}, over {b - a}):")
        for s in servers:
            if (s, a) in m and (s, b) in m:
                m[s, "slope"] = ((m[s, b][2] - m[s, a][2]) * 1024 / (b - a), (m[s, b][3] - m[s, a][3]) * 1024 / (b - a))
                print(f"  {s:<11} {m[s, 'slope'][0]:>8.0f} bytes per idle connection, {m[s, 'slope'][1]:>8.0f} after one query")
    if "portcullis" in servers:
        ratio = lambda x, y: f"{x / y:.2f}x" if y > 0 else "n/a (peer grew by nothing)"
        for key in [*counts, "slope"]:
            for s in servers:
                if s != "portcullis" and (s, key) in m and ("portcullis", key) in m:
                    label = f"{key} connections" if key != "slope" else "marginal"
                    print(f"  portcullis/{s}, {label}: bytes per idle connection {ratio(m['portcullis', key][0], m[s, key][0])}, "
                          f"after one query {ratio(m['portcullis', key][1], m[s, key][1])}")
    print("  (accepted/answered/open: the smallest over the rounds; 'open' counts the server's extra descriptors after the queries)")
    print()

for t in (transports if compare > 0 else []):
    qs = [l.strip() for l in open(os.path.join(work, "compare.batch"))]
    got = {s: parse(os.path.join(work, f"compare-{t}-{s}.txt")) for s in servers}
    base = servers[0]
    print(f"Answers over {t.upper()} to the first {len(qs)} queries of the mix (RD, no EDNS, as dnsperf sends them), each server against {base}:")
    for s in servers:
        if s == base:
            continue
        if len(got[s]) != len(qs) or len(got[base]) != len(qs):
            print(f"  {s}: {len(got[s])} answers parsed, {base}: {len(got[base])} (of {len(qs)}): not compared"); continue
        kinds = {}
        for q, a, b in zip(qs, got[base], got[s]):
            diff = [n for n, i in (("rcode", 0), ("flags", 1), ("answer", 2), ("authority", 3), ("additional", 4)) if a[i] != b[i]]
            if diff:
                k = "+".join(diff)
                kinds.setdefault(k, []).append((q, a, b))
        same = len(qs) - sum(len(v) for v in kinds.values())
        print(f"  {s}: {same}/{len(qs)} identical (rcode, flags and the three sections as sets)")
        for k, v in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
            q, a, b = v[0]
            print(f"    {len(v)} differ in {k}; e.g. {q}: {base} {a[0]} [{a[1]}] an={len(a[2])} ns={len(a[3])} ar={len(a[4])}"
                  f" vs {s} {b[0]} [{b[1]}] an={len(b[2])} ns={len(b[3])} ar={len(b[4])}")
    print()
EOF
    for s in $SERVERS; do
        if [ -s "$WORK/$s.log" ]; then
            echo "$s log ($(wc -l <"$WORK/$s.log") lines), first lines:"
            head -n 5 "$WORK/$s.log" | sed 's/^/  /'
        fi
    done
}
summary
