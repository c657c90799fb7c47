#!/usr/bin/env bash
# Zone load: how long Portcullis, Knot DNS and NSD take to answer from a 1,000,000-record zone, and
# how much resident memory each record costs them.
#
# For each server, in interleaved rounds (knot, nsd, portcullis, knot, ...): start it on 127.0.0.1 and
# a free port with the generated zone, pinned to SERVER_CPU; poll (tools.py poll, pinned to
# CLIENT_CPU) every 50 ms with "NAME A" for the last host of the zone file until an authoritative
# answer with its address comes back: the time from the start to that answer is the load time. SETTLE
# seconds later read the memory of the server's processes: VmRSS summed (as the issue asks) and Pss
# summed (NSD forks its server and xfrd after loading, and the three share the zone pages
# copy-on-write: VmRSS counts them three times, Pss once). The same with a 10-record zone gives the
# baseline; bytes per record = (median with the big zone - median with the small one) / (records
# difference). Then the server is stopped.
#
# usage: bench/zoneload/run.sh        (from anywhere; about 3 minutes with the defaults)
# Environment (defaults in brackets):
#   RECORDS [1000000] records in the big zone  SMALL [10] in the baseline zone  ROUNDS [3]
#   SERVERS ["knot nsd portcullis"]  SERVER_CPU [0] taskset -c list for the servers ("0,1": both cores)
#   CLIENT_CPU [1]  TIMEOUT [120] seconds a server may take to answer  SETTLE [2] seconds between the
#   first answer and the memory reading
#   BUILD [aot]  how Portcullis is compiled: jit (plain IL, tiered JIT), r2r (ReadyToRun: precompiled,
#             still tiered), aot (Native AOT, the build to deploy)
#   PORTCULLIS_PUBLISH  an existing `dotnet publish` directory (skips the build)
#   PORTCULLIS_REF  build this commit (git archive into the temporary directory) instead of the
#             working tree
#   QUIET_WAIT [10] before each start, wait up to this many seconds for a second in which the machine
#             is at least 90% idle (0 disables)  QUIET_BUDGET [60] at most this much waiting in all
#   KEEP [0]  1 keeps the temporary directory (zones, configs, logs, raw results)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# log, wait_quiet: shared with the other harness.
. "$HERE/../lib.sh"
RECORDS=${RECORDS:-1000000}
SMALL=${SMALL:-10}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-knot nsd portcullis}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TIMEOUT=${TIMEOUT:-120}
SETTLE=${SETTLE:-2}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-60}
KEEP=${KEEP:-0}
BUILD=${BUILD:-aot}
ORIGIN=load.test
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

require_tools zoneload knotd nsd dotnet taskset

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-zoneload.XXXXXX")
CURRENT=""

cleanup() {
    [ -n "$CURRENT" ] && stop_server "$CURRENT"
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


stop_server() {
    terminate "$1"
    CURRENT=""
}



# Each start_* writes its configuration into DIR and execs the server (run in the background by start).
start_knot() {
    local port=$1 zone=$2 dir=$3
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
    file: "$zone"
    semantic-checks: off
zone:
  - domain: $ORIGIN
EOF
    exec taskset -c "$SERVER_CPU" knotd -c "$dir/knot.conf"
}

start_nsd() {
    local port=$1 zone=$2 dir=$3
    # database "": no nsd.db; NSD reads the zone file at start (then forks its server and xfrd).
    cat >"$dir/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$port
    server-count: 1
    rrl-ratelimit: 0
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
    name: $ORIGIN
    zonefile: "$zone"
EOF
    exec taskset -c "$SERVER_CPU" nsd -d -c "$dir/nsd.conf"
}

start_portcullis() {
    local port=$1 zone=$2 dir=$3
    local cmd=(dotnet "$PUBLISH/portcullis.dll")
    [ "$BUILD" = aot ] && cmd=("$PUBLISH/portcullis")
    exec taskset -c "$SERVER_CPU" "${cmd[@]}" serve --listen "127.0.0.1:$port" \
        --zone "$ORIGIN=$zone" --log-level warning "${WORKERS[@]}"
}

# measure SIZE SERVER ROUND: appends "size server round seconds rss_kib pss_kib rss_at_answer_kib" to $RESULTS.
measure() {
    local size=$1 s=$2 round=$3 port dir t0 t1 pid mem0 mem target addr
    read -r target addr <"$WORK/$size.target"
    port=$(free_port)
    dir=$WORK/$s-$size-$round
    mkdir -p "$dir"
    [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
    # The prompt to begin is taken after the (cheap) configuration is written, just before exec.
    t0=$(date +%s.%N)
    start_"$s" "$port" "$WORK/$size.zone" "$dir" >"$dir/log" 2>&1 &
    pid=$!
    CURRENT=$pid
    if ! t1=$(taskset -c "$CLIENT_CPU" "$PY" "$HERE/tools.py" poll "$port" "$target" "$addr" "$pid" "$TIMEOUT"); then
        log "zoneload: $s ($size zone) did not answer $target within $TIMEOUT s; its log:"
        cat "$dir/log" >&2
        exit 1
    fi
    mem0=$("$PY" "$HERE/tools.py" mem "$pid")
    sleep "$SETTLE"
    mem=$("$PY" "$HERE/tools.py" mem "$pid")
    stop_server "$pid"
    awk -v s="$s" -v size="$size" -v r="$round" -v t0="$t0" -v t1="$t1" -v m="$mem" -v m0="$mem0" 'BEGIN {
        split(m, a, " "); split(m0, b, " ")
        printf "%s %s %s %.3f %d %d %d\n", size, s, r, t1 - t0, a[1], a[2], b[1] }' >>"$RESULTS"
    tail -n 1 "$RESULTS" | awk '{ printf "  %-10s %s zone, round %s: answering after %.2f s; VmRSS %.1f MiB (%.1f at the first answer), Pss %.1f MiB\n", $2, $1, $3, $4, $5 / 1024, $7 / 1024, $6 / 1024 }' >&2
}

# --- build and data -------------------------------------------------------------------------------
case "$BUILD" in
    jit) FLAGS=() ;;
    r2r) FLAGS=(-r linux-x64 --self-contained false -p:PublishReadyToRun=true) ;;
    aot) FLAGS=(-r linux-x64 -p:PublishAot=true) ;;
    *) echo "zoneload: BUILD must be jit, r2r or aot" >&2; exit 2 ;;
esac
publish_portcullis "${FLAGS[@]}"
# One UDP worker, as Knot and NSD get one (builds before --udp-workers had one anyway).
WORKERS=()
HELP_CMD=(dotnet "$PUBLISH/portcullis.dll")
[ "$BUILD" = aot ] && HELP_CMD=("$PUBLISH/portcullis")
if "${HELP_CMD[@]}" serve --help 2>/dev/null | grep -q -- --udp-workers; then WORKERS=(--udp-workers 1); fi
log "generating the zones: $RECORDS and $SMALL records"
"$PY" "$HERE/tools.py" gen "$WORK/big.zone" "$RECORDS" "$ORIGIN" >"$WORK/big.target"
"$PY" "$HERE/tools.py" gen "$WORK/small.zone" "$SMALL" "$ORIGIN" >"$WORK/small.target"
log "big zone: $(du -m "$WORK/big.zone" | cut -f1) MB; polling for $(cat "$WORK/big.target")"

RESULTS=$WORK/results
: >"$RESULTS"
for r in $(seq "$ROUNDS"); do
    log "round $r"
    for size in big small; do
        for s in $SERVERS; do measure "$size" "$s" "$r"; done
    done
done

# --- summary --------------------------------------------------------------------------------------
echo
echo "nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "knotd $(knotd -V 2>&1 | awk '{print $NF}'), NSD $(nsd -v 2>&1 | awk 'NR==1 {print $3}'), .NET $(dotnet --version)"
echo "servers pinned to CPU $SERVER_CPU, the poller to CPU $CLIENT_CPU; $ROUNDS rounds; $RECORDS records ($(du -m "$WORK/big.zone" | cut -f1) MB of zone file) against $SMALL; memory read $SETTLE s after the first answer"
echo
"$PY" - "$RESULTS" "$SERVERS" "$RECORDS" "$SMALL" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
servers, big, small = sys.argv[2].split(), int(sys.argv[3]), int(sys.argv[4])
def vals(size, s, i):
    return [float(r[i]) for r in rows if r[0] == size and r[1] == s]
def med(size, s, i):
    v = vals(size, s, i)
    return statistics.median(v) if v else float("nan")
res = {}
print(f"{'server':<11}{'answering after':>16}{'small zone':>11}{'VmRSS MiB':>10}{'base MiB':>9}{'B/record':>9}{'Pss MiB':>8}{'base':>6}{'B/record':>9}  load times (s)")
for s in servers:
    t, t0 = med("big", s, 3), med("small", s, 3)
    rss, rss0, pss, pss0 = med("big", s, 4), med("small", s, 4), med("big", s, 5), med("small", s, 5)
    bpr, bpp = (rss - rss0) * 1024 / (big - small), (pss - pss0) * 1024 / (big - small)
    res[s] = (t, bpr, bpp)
    print(f"{s:<11}{t:>14.2f} s{t0:>9.2f} s{rss / 1024:>10.1f}{rss0 / 1024:>9.1f}{bpr:>9.0f}{pss / 1024:>8.1f}{pss0 / 1024:>6.1f}{bpp:>9.0f}  "
          + ", ".join(f"{x:.2f}" for x in vals("big", s, 3)))
print()
if "portcullis" in res:
    for s in servers:
        if s != "portcullis":
            p = res["portcullis"]
            print(f"portcullis/{s}: load time {p[0] / res[s][0]:.2f}x, bytes per record (VmRSS) {p[1] / res[s][1]:.2f}x, (Pss) {p[2] / res[s][2]:.2f}x")
EOF
