#!/usr/bin/env bash
# AXFR: how long a client takes to pull a 1,000,000-record zone from Portcullis and from Knot DNS on
# the same machine.
#
# The zone is bench/zoneload's (tools.py gen: the same mix of A, AAAA, MX, TXT, CNAME, delegations
# and glue). Both servers are started once, pinned to SERVER_CPU, with the zone and transfers allowed
# to 127.0.0.1, and are ready when they answer the last host of the file (tools.py poll). Then, in
# interleaved rounds (knot, portcullis, knot, ...), `kdig +tcp AXFR` pinned to CLIENT_CPU pulls the
# zone to /dev/null; the wall-clock time of each pull is recorded. kdig parses and prints every
# record, so the figure is the time to a real client, not the server's alone: the ratio compares
# the servers under the same client. A first pull from each server checks that both send the same
# number of records.
#
# usage: bench/axfr/run.sh        (from anywhere; a few minutes with the defaults)
# Environment (defaults in brackets):
#   RECORDS [1000000] records in the zone  ROUNDS [5]  SERVER_CPU [0]  CLIENT_CPU [1]
#   TIMEOUT [180] seconds a server may take to load the zone
#   BUILD [aot]  jit, r2r or aot, as bench/zoneload  PORTCULLIS_PUBLISH  an existing publish directory
#   PORTCULLIS_REF  build this commit instead of the working tree
#   QUIET_WAIT [10] QUIET_BUDGET [60]  wait for an idle second before each pull (0 disables)
#   KEEP [0]  1 keeps the temporary directory
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# log, wait_quiet, free_port, publish_portcullis: shared with the other harnesses.
. "$HERE/../lib.sh"
TOOLS=$HERE/../zoneload/tools.py
RECORDS=${RECORDS:-1000000}
ROUNDS=${ROUNDS:-5}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TIMEOUT=${TIMEOUT:-180}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-60}
KEEP=${KEEP:-0}
BUILD=${BUILD:-aot}
ORIGIN=axfr.test
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

require_tools axfr knotd kdig dotnet taskset

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-axfr.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do terminate "$pid"; done
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_knot() {
    local port=$1 dir=$2
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
acl:
  - id: local
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: "$dir"
    file: "$WORK/zone"
    semantic-checks: off
    acl: local
zone:
  - domain: $ORIGIN
EOF
    exec taskset -c "$SERVER_CPU" knotd -c "$dir/knot.conf"
}

start_portcullis() {
    local port=$1 dir=$2
    cat >"$dir/portcullis.yaml" <<EOF
listen: [ 127.0.0.1:$port ]
zones:
  - name: $ORIGIN
    file: $WORK/zone
allow-transfer: [ 127.0.0.1 ]
logging:
  level: warning
EOF
    local cmd=(dotnet "$PUBLISH/portcullis.dll")
    [ "$BUILD" = aot ] && cmd=("$PUBLISH/portcullis")
    exec taskset -c "$SERVER_CPU" "${cmd[@]}" serve -c "$dir/portcullis.yaml" "${WORKERS[@]}"
}

# start SERVER: starts it in the background and waits until it answers from the zone; sets PORT_<server>.
start() {
    local s=$1 port dir pid target addr
    read -r target addr <"$WORK/target"
    port=$(free_port)
    dir=$WORK/$s
    mkdir -p "$dir"
    start_"$s" "$port" "$dir" >"$dir/log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! taskset -c "$CLIENT_CPU" "$PY" "$TOOLS" poll "$port" "$target" "$addr" "$pid" "$TIMEOUT" >/dev/null; then
        log "axfr: $s did not answer $target within $TIMEOUT s; its log:"
        cat "$dir/log" >&2
        exit 1
    fi
    printf -v "PORT_$s" %s "$port"
}

# pull SERVER: one AXFR to /dev/null; prints the seconds it took.
pull() {
    local port_var=PORT_$1 t0 t1
    t0=$(date +%s.%N)
    taskset -c "$CLIENT_CPU" kdig @127.0.0.1 -p "${!port_var}" +tcp "$ORIGIN" AXFR >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

case "$BUILD" in
    jit) FLAGS=() ;;
    r2r) FLAGS=(-r linux-x64 --self-contained false -p:PublishReadyToRun=true) ;;
    aot) FLAGS=(-r linux-x64 -p:PublishAot=true) ;;
    *) echo "axfr: BUILD must be jit, r2r or aot" >&2; exit 2 ;;
esac
publish_portcullis "${FLAGS[@]}"
WORKERS=(--udp-workers 1)
log "generating a zone of $RECORDS records"
"$PY" "$TOOLS" gen "$WORK/zone" "$RECORDS" "$ORIGIN" >"$WORK/target"

for s in knot portcullis; do
    log "starting $s"
    start "$s"
done

# The same records from both: kdig's summary line says how many it received.
for s in knot portcullis; do
    port_var=PORT_$s
    summary=$(kdig @127.0.0.1 -p "${!port_var}" +tcp "$ORIGIN" AXFR | grep '^;; Received')
    log "  $s: $summary"
    echo "$s $(echo "$summary" | sed -E 's/.*, ([0-9]+) records.*/\1/') $(echo "$summary" | sed -E 's/.*\(([0-9]+) messages.*/\1/')" >>"$WORK/counts"
done
if [ "$(awk '{ print $2 }' "$WORK/counts" | sort -u | wc -l)" != 1 ]; then
    log "axfr: the servers sent different numbers of records:"; cat "$WORK/counts" >&2; exit 1
fi

RESULTS=$WORK/results
for round in $(seq "$ROUNDS"); do
    for s in knot portcullis; do
        [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
        t=$(pull "$s")
        echo "$s $round $t" >>"$RESULTS"
        log "  round $round: $s $t s"
    done
done

echo "knotd $(knotd -V 2>&1 | awk '{print $NF}'), kdig client, .NET $(dotnet --version), Portcullis build $BUILD, $RECORDS records, $ROUNDS rounds"
awk '{ printf "%-10s sent %s records in %s messages\n", $1, $2, $3 }' "$WORK/counts"
for s in knot portcullis; do
    awk -v s="$s" '$1 == s { print $3 }' "$RESULTS" | sort -n | awk -v s="$s" '
        { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
            printf "%-10s median %.2f s (min %.2f, max %.2f)\n", s, m, v[1], v[NR] }' | tee -a "$WORK/medians"
done
awk '{ m[$1] = $3 } END { printf "portcullis / knot: %.2f\n", m["portcullis"] / m["knot"] }' "$WORK/medians"
