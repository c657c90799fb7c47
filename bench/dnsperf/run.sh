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
# usage: bench/dnsperf/run.sh            (from anywhere; about 3.5 minutes with the defaults)
# Environment (defaults in brackets):
#   ROUNDS [5]  DURATION [6] seconds per dnsperf run  WARMUP [5] seconds per server before round 1
#   CLIENTS [4] dnsperf -c  OUTSTANDING [100] dnsperf -q  QUERIES [100000] lines in the query file
#   FIXED_QPS ["20000 60000"] offered loads of the fixed-load pass, one run per load and server
#             ("" skips it)  FIXED_DURATION [$DURATION]
#   NSD_MINIMAL [yes] NSD's minimal-responses: NSD alone adds the apex NS and their addresses to
#             every positive answer by default; "yes" makes its responses like Knot's and Portcullis's
#   SERVERS ["knot nsd portcullis"]  SERVER_CPU [0]  CLIENT_CPU [1]
#   COMPARE [2000] queries from the mix sent with dig to every server to compare answers (0 skips)
#   PORTCULLIS_PUBLISH  an existing `dotnet publish` directory (skips the build)
#   PORTCULLIS_REF  build this commit (exported with `git archive` into the temporary directory)
#             instead of the working tree, so that a figure belongs to a known commit
#   QUIET_WAIT [10] before each run, wait up to this many seconds for a second in which the machine
#             is at least 90% idle (other work on a shared machine skews a run; 0 disables)
#   QUIET_BUDGET [60] at most this many seconds of such waiting in the whole run
#   KEEP [0]  1 keeps the temporary directory (zone, configs, logs, every dnsperf output)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
QUERIES=${QUERIES:-100000}
FIXED_QPS=${FIXED_QPS-20000 60000}
NSD_MINIMAL=${NSD_MINIMAL:-yes}
FIXED_DURATION=${FIXED_DURATION:-$DURATION}
SERVERS=${SERVERS:-knot nsd portcullis}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
COMPARE=${COMPARE:-2000}
KEEP=${KEEP:-0}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-60}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HZ=$(getconf CLK_TCK)

for tool in dnsperf taskset dig; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

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

log() { echo "[$(date +%T)] $*" >&2; }

free_port() {
    # A port free for both UDP and TCP on 127.0.0.1 (the servers listen on both).
    "$PY" - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
        print(port)
        break
    except OSError:
        pass
    finally:
        t.close()
        u.close()
EOF
}

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

wait_answering() {
    local name=$1 port=$2 pid=$3
    for _ in $(seq 120); do
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited; its log:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
        if dig +time=1 +tries=1 +norec @127.0.0.1 -p "$port" bench.test SOA 2>/dev/null | grep -q 'flags: qr aa'; then
            return 0
        fi
        sleep 0.25
    done
    echo "run.sh: $name did not answer bench.test SOA within 30 s; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

start_knot() {
    local port=$1 dir=$WORK/knot
    mkdir -p "$dir"
    cp "$WORK/bench.test.zone" "$dir/"
    cat >"$dir/knot.conf" <<EOF
server:
    rundir: "$dir"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
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
    taskset -c "$SERVER_CPU" knotd -c "$dir/knot.conf" >"$WORK/knot.log" 2>&1 &
    echo $!
}

start_nsd() {
    local port=$1 dir=$WORK/nsd
    mkdir -p "$dir"
    cp "$WORK/bench.test.zone" "$dir/"
    cat >"$dir/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$port
    server-count: 1
    rrl-ratelimit: 0
    minimal-responses: $NSD_MINIMAL
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
    taskset -c "$SERVER_CPU" nsd -d -c "$dir/nsd.conf" >"$WORK/nsd.log" 2>&1 &
    echo $!
}

start_portcullis() {
    local port=$1
    # One UDP worker, as Knot and NSD get one (builds before --udp-workers existed had one anyway).
    local workers=()
    if dotnet "$PUBLISH/portcullis.dll" serve --help 2>/dev/null | grep -q -- --udp-workers; then workers=(--udp-workers 1); fi
    taskset -c "$SERVER_CPU" dotnet "$PUBLISH/portcullis.dll" serve --listen "127.0.0.1:$port" \
        --zone "bench.test=$WORK/bench.test.zone" --log-level warning "${workers[@]}" >"$WORK/portcullis.log" 2>&1 &
    echo $!
}

# --- build and data -------------------------------------------------------------------------------
if [ -n "${PORTCULLIS_PUBLISH:-}" ]; then
    PUBLISH=$PORTCULLIS_PUBLISH
else
    PUBLISH=$WORK/publish
    SOURCE=$REPO
    if [ -n "${PORTCULLIS_REF:-}" ]; then
        SOURCE=$WORK/source
        mkdir -p "$SOURCE"
        git -C "$REPO" archive "$PORTCULLIS_REF" | tar -x -C "$SOURCE"
        log "building Portcullis $(git -C "$REPO" rev-parse --short "$PORTCULLIS_REF") (Release) into $PUBLISH"
    else
        log "building Portcullis from the working tree (Release; HEAD is $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)) into $PUBLISH"
    fi
    # --artifacts-path keeps bin/ and obj/ out of the source tree.
    dotnet publish "$SOURCE/src/Portcullis" -c Release -o "$PUBLISH" --artifacts-path "$WORK/artifacts" \
        -nologo -v quiet >"$WORK/publish.log" 2>&1 || { cat "$WORK/publish.log" >&2; exit 1; }
fi
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

# Waits (at most QUIET_WAIT s, and QUIET_BUDGET s over the whole run) for one second in which the machine is at least 90% idle: our own
# processes are idle between runs, so what runs then is somebody else's work.
wait_quiet() {
    local start=$SECONDS wait=$QUIET_WAIT a b busy total
    [ "$wait" -gt "$QUIET_BUDGET" ] && wait=$QUIET_BUDGET
    [ "$wait" -le 0 ] && return 0
    while [ $((SECONDS - start)) -lt "$wait" ]; do
        a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
        sleep 1
        b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
        busy=$(( ${b% *} - ${a% *} )); total=$(( ${b#* } - ${a#* } ))
        if [ $((busy * 10)) -le "$total" ]; then
            QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - start)))
            return 0
        fi
    done
    QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - start)))
    log "  (the machine stayed busy for $wait s; measuring anyway)"
}

# One dnsperf run: appends "mode server round sent completed lost qps latency cpu_s q_per_cpu_s
# response_octets server_preemptions rcodes"
# to $WORK/results and keeps dnsperf's output.
RESULTS=$WORK/results
: >"$RESULTS"
measure() {
    local mode=$1 s=$2 round=$3 seconds=$4 rate=$5 out before after pre0 pre1
    out=$WORK/dnsperf-$mode-$s-$round.txt
    local extra=()
    [ "$rate" -gt 0 ] && extra=(-Q "$rate")
    [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
    pre0=$(preemptions "${PID[$s]}")
    before=$(cpu_ticks "${PID[$s]}")
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$WORK/queries" -l "$seconds" \
        -c "$CLIENTS" -q "$OUTSTANDING" "${extra[@]}" >"$out" 2>&1
    after=$(cpu_ticks "${PID[$s]}")
    pre1=$(preemptions "${PID[$s]}")
    awk -v mode="$mode" -v s="$s" -v r="$round" -v ticks=$((after - before)) -v hz="$HZ" -v pre=$((pre1 - pre0)) '
        /Queries sent:/ { sent = $3 }
        /Queries completed:/ { done = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { lat = $4 }
        /Average packet size:/ { resp = $NF }
        /Response codes:/ { sub(/.*Response codes: */, ""); gsub(/ \([0-9.]+%\)/, ""); gsub(/, /, ","); gsub(/ /, "="); rc = $0 }
        END {
            cpu = ticks / hz
            printf "%s %s %s %d %d %d %.0f %.6f %.2f %.0f %d %d %s\n", mode, s, r, sent, done, lost, qps, lat, cpu, (cpu > 0 ? done / cpu : 0), resp, pre, rc
        }' "$out" >>"$RESULTS"
    tail -n 1 "$RESULTS" | awk '{ printf "  %-10s round %s: sent %d completed %d lost %d, %d q/s, latency %.3f ms, server CPU %.2f s, %d queries per CPU-second; response %d octets; preempted %d times; %s\n", $2, $3, $4, $5, $6, $7, $8 * 1000, $9, $10, $11, $12, $13 }' >&2
}

if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: $WARMUP s per server (not counted; lets .NET's tiered JIT reach its final code)"
    for s in $SERVERS; do measure warmup "$s" 0 "$WARMUP" 0; done
fi

log "saturation: $ROUNDS interleaved rounds of $DURATION s (dnsperf -c $CLIENTS -q $OUTSTANDING)"
for r in $(seq "$ROUNDS"); do
    for s in $SERVERS; do measure max "$s" "$r" "$DURATION" 0; done
done

for rate in $FIXED_QPS; do
    log "fixed offered load: -Q $rate for $FIXED_DURATION s, one run per server"
    for s in $SERVERS; do measure "fixed$rate" "$s" 1 "$FIXED_DURATION" "$rate"; done
done

# --- answers compared -----------------------------------------------------------------------------
# The first COMPARE queries of the mix, sent as dnsperf sends them (RD, no EDNS) with dig in batch
# mode; per query: rcode, flags and each section as a sorted set. Every server is compared with the
# first one in SERVERS.
if [ "$COMPARE" -gt 0 ]; then
    head -n "$COMPARE" "$WORK/queries" >"$WORK/compare.batch"
    for s in $SERVERS; do
        dig @127.0.0.1 -p "${PORT[$s]}" +noedns +rec +time=2 +tries=2 +nocmd +nostats +noquestion \
            -f "$WORK/compare.batch" >"$WORK/compare-$s.txt" 2>&1 || true
    done
fi

# --- summary --------------------------------------------------------------------------------------
summary() {
    echo
    echo "nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -r)"
    echo "knotd $(knotd -V 2>&1 | awk '{print $NF}'), NSD $(nsd -v 2>&1 | awk 'NR==1 {print $3}'), $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}'), .NET $(dotnet --version)"
    echo "server pinned to CPU $SERVER_CPU (all threads), dnsperf to CPU $CLIENT_CPU; $ROUNDS rounds x $DURATION s; dnsperf -c $CLIENTS -q $OUTSTANDING; NSD minimal-responses: $NSD_MINIMAL"
    echo
    "$PY" - "$RESULTS" "$SERVERS" "$WORK" "$COMPARE" <<'EOF'
import statistics, sys, re, os
results, servers, work, compare = sys.argv[1], sys.argv[2].split(), sys.argv[3], int(sys.argv[4])
rows = [l.split() for l in open(results)]
def med(mode, s, i):
    v = [float(r[i]) for r in rows if r[0] == mode and r[1] == s]
    return statistics.median(v) if v else float("nan")
def show(mode, title):
    if not any(r[0] == mode for r in rows):
        return
    print(title)
    print(f"{'server':<11}{'sent':>10}{'completed':>11}{'lost':>7}{'q/s':>9}{'latency ms':>12}{'CPU s':>7}{'q/CPU-s':>9}{'resp B':>7}{'preempt':>8}  rcodes (last run)")
    for s in servers:
        last = [r for r in rows if r[0] == mode and r[1] == s][-1]
        print(f"{s:<11}{med(mode,s,3):>10.0f}{med(mode,s,4):>11.0f}{med(mode,s,5):>7.0f}{med(mode,s,6):>9.0f}"
              f"{med(mode,s,7)*1000:>12.3f}{med(mode,s,8):>7.2f}{med(mode,s,9):>9.0f}{med(mode,s,10):>7.0f}{med(mode,s,11):>8.0f}  {last[12] if len(last) > 12 else ''}")
    if "portcullis" in servers:
        for s in servers:
            if s == "portcullis":
                continue
            p = lambda i: med(mode, "portcullis", i) / med(mode, s, i)
            print(f"  portcullis/{s}: queries per CPU-second {p(9):.2f}x, q/s {p(6):.2f}x, latency {p(7):.2f}x")
        if mode == "max":
            for s in servers:
                if s == "portcullis":
                    continue
                per = [float(a[9]) / float(b[9]) for a, b in
                       zip([r for r in rows if r[0] == mode and r[1] == "portcullis"], [r for r in rows if r[0] == mode and r[1] == s])]
                print(f"  portcullis/{s} per round (q/CPU-s): " + ", ".join(f"{x:.2f}" for x in per))
    print()
show("max", "Saturation (median of the rounds):")
for mode in dict.fromkeys(r[0] for r in rows if r[0].startswith("fixed")):
    show(mode, f"Fixed offered load, dnsperf -Q {mode[5:]}:")

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

if compare > 0:
    qs = [l.strip() for l in open(os.path.join(work, "compare.batch"))]
    got = {s: parse(os.path.join(work, f"compare-{s}.txt")) for s in servers}
    base = servers[0]
    print(f"Answers to the first {len(qs)} queries of the mix (RD, no EDNS, as dnsperf sends them), each server against {base}:")
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
