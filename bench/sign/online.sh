#!/usr/bin/env bash
# Signing in the server: Portcullis (`dnssec-signing: true`) next to Knot DNS (`dnssec-signing: on`),
# both with their default policy (ECDSAP256SHA256, a KSK and a ZSK, NSEC), on one generated zone of
# N names (default 100000), each with an A record, as bench/sign/run.sh makes it.
#
# Each server runs alone, pinned to SERVER_CPU; dig and nsupdate run pinned to CLIENT_CPU. Per server:
#   1. load: a fresh start (no keys, no journal) with only the signed zone; the time from launching
#      the server until `dig +dnssec` for the last name of the file gets an answer with an RRSIG
#      (the whole zone signed at load); at most TIMEOUT s.
#   2. updates: a restart (keeping the keys and signed state) with a second, unsigned zone of the
#      same N names beside it; then ROUNDS rounds of one nsupdate to the unsigned zone and one to
#      the signed zone, each adding one A record at a new name, TSIG hmac-sha256 with a TEST-ONLY
#      key (below). Each nsupdate process is timed end to end (start to exit, so it includes the
#      client's own start-up, the same for both servers); the unsigned zone is the baseline, so
#      signed/unsigned says what signing adds to an update on the same server.
#   3. check: the signed zone's answer for the last added name carries an RRSIG (`dig +dnssec`);
#      if not, for either server, the harness prints the table and exits 1.
# Knot keeps the zone file as it is (zonefile-sync: -1: its journal holds the changes), as
# Portcullis acknowledges an update once it is journaled and rewrites the zone file only 2 s after
# the last update: neither writes the whole zone file between two updates here.
# Prints one table: load seconds, update median and p90 in ms, and the ratios portcullis/knot.
#
# usage: bench/sign/online.sh [NAMES]   (from anywhere; a few minutes with the defaults)
# Environment (defaults in brackets):
#   ROUNDS [30] updates per zone  SERVER_CPU [0]  CLIENT_CPU [1]
#   TIMEOUT [600] seconds a server may take to answer signed after launch
#   BUILD [aot]  jit, r2r or aot, as bench/axfr  PORTCULLIS_PUBLISH  an existing publish directory
#   PORTCULLIS_REF  build this commit instead of the working tree
#   QUIET_WAIT [10] QUIET_BUDGET [40]  wait for an idle second before each server's start (0 disables)
#   KEEP [0]  1 keeps the temporary directory
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# log, wait_quiet, free_port, terminate, publish_portcullis, require_tools: shared with the other harnesses.
. "$HERE/../lib.sh"
N=${1:-100000}
ROUNDS=${ROUNDS:-30}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TIMEOUT=${TIMEOUT:-600}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-40}
KEEP=${KEEP:-0}
BUILD=${BUILD:-aot}
SIGNED=bench.test
PLAIN=plain.test
# TEST-ONLY TSIG key: a fixed, published secret (base64 of "test-only-bench-key-not-secret!!"),
# used only by these throw-away servers on 127.0.0.1. Never put it in a real configuration.
TSIG_NAME=bench-update-test-only
TSIG_SECRET=dGVzdC1vbmx5LWJlbmNoLWtleS1ub3Qtc2VjcmV0ISE=
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

require_tools sign/online knotd dig nsupdate dotnet taskset awk
case "$N" in ''|*[!0-9]*) echo "sign/online: NAMES must be a number" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] || { echo "sign/online: NAMES must be at least 1" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-sign-online.XXXXXX")
PID=

cleanup() {
    [ -n "$PID" ] && terminate "$PID"
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# gen ORIGIN FILE: the zone of bench/sign/run.sh (apex SOA and NS, ns1, h0 .. h<N-1> with an A each).
gen() {
    {
        printf '$ORIGIN %s.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n' "$1"
        awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "h%d A 10.%d.%d.%d\n", i, int(i/65536)%256, int(i/256)%256, i%256 }'
    } >"$2"
}

# conf_knot DIR PORT WITH_PLAIN
conf_knot() {
    local dir=$1 port=$2 plain=$3
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
key:
  - id: $TSIG_NAME
    algorithm: hmac-sha256
    secret: $TSIG_SECRET
acl:
  - id: update
    address: 127.0.0.1
    key: $TSIG_NAME
    action: update
template:
  - id: default
    storage: "$dir"
    semantic-checks: off
    zonefile-sync: -1
    acl: update
zone:
  - domain: $SIGNED
    file: "$dir/$SIGNED.zone"
    dnssec-signing: on
EOF
    [ "$plain" = 1 ] && printf '  - domain: %s\n    file: "%s"\n' "$PLAIN" "$dir/$PLAIN.zone" >>"$dir/knot.conf"
    return 0
}

# conf_portcullis DIR PORT WITH_PLAIN
conf_portcullis() {
    local dir=$1 port=$2 plain=$3
    cat >"$dir/portcullis.yaml" <<EOF
listen: [ "127.0.0.1:$port" ]
keys:
  - name: $TSIG_NAME
    algorithm: hmac-sha256
    secret: "$TSIG_SECRET"
allow-update: [ "key $TSIG_NAME" ]
rate-limit:
  responses-per-second: 0
logging:
  level: warning
zones:
  - name: $SIGNED
    file: $dir/$SIGNED.zone
    dnssec-signing: true
EOF
    [ "$plain" = 1 ] && printf '  - name: %s\n    file: %s\n' "$PLAIN" "$dir/$PLAIN.zone" >>"$dir/portcullis.yaml"
    return 0
}

run_knot() { exec taskset -c "$SERVER_CPU" knotd -c "$1/knot.conf"; }
run_portcullis() {
    local cmd=(dotnet "$PUBLISH/portcullis.dll")
    [ "$BUILD" = aot ] && cmd=("$PUBLISH/portcullis")
    exec taskset -c "$SERVER_CPU" "${cmd[@]}" serve -c "$1/portcullis.yaml" --udp-workers 1
}

# signed_answer PORT NAME: true when the answer for NAME A (+dnssec) has an RRSIG in its answer section.
signed_answer() {
    taskset -c "$CLIENT_CPU" dig @127.0.0.1 -p "$1" +dnssec +norec +tries=1 +time=1 +noall +answer "$2" A 2>/dev/null |
        awk '$4 == "RRSIG" && $5 == "A" { found = 1 } END { exit !found }'
}

# any_answer PORT NAME: true when NAME A gets an A record.
any_answer() {
    taskset -c "$CLIENT_CPU" dig @127.0.0.1 -p "$1" +norec +tries=1 +time=1 +noall +answer "$2" A 2>/dev/null |
        awk '$4 == "A" { found = 1 } END { exit !found }'
}

# start SERVER DIR WITH_PLAIN: launches the server (PID, PORT) and waits until the signed zone's last
# name is answered with an RRSIG (and, with WITH_PLAIN, the unsigned zone's last name is answered);
# sets LOAD to the seconds from launch to then. (Not run in $(...): PID and PORT must reach the caller.)
start() {
    local s=$1 dir=$2 plain=$3 t0 pinned=0
    PORT=$(free_port)
    conf_"$s" "$dir" "$PORT" "$plain"
    t0=$EPOCHREALTIME
    run_"$s" "$dir" >>"$dir/log" 2>&1 &
    PID=$!
    while :; do
        # knotd pins its own worker threads (reference/peers.md): put every thread back on SERVER_CPU
        # while it starts up (threads made later inherit it).
        [ "$pinned" -lt 20 ] && { taskset -a -p -c "$SERVER_CPU" "$PID" >/dev/null 2>&1 || true; pinned=$((pinned + 1)); }
        if signed_answer "$PORT" "h$((N - 1)).$SIGNED." && { [ "$plain" = 0 ] || any_answer "$PORT" "h$((N - 1)).$PLAIN."; }; then
            break
        fi
        if ! kill -0 "$PID" 2>/dev/null; then
            log "sign/online: $s exited before answering; its log:"; cat "$dir/log" >&2; exit 1
        fi
        if [ "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print int(b - a) }')" -ge "$TIMEOUT" ]; then
            log "sign/online: $s did not answer h$((N - 1)).$SIGNED with an RRSIG within $TIMEOUT s; its log:"
            cat "$dir/log" >&2; exit 1
        fi
        sleep 0.05   # the resolution of the load time, not synchronisation
    done
    LOAD=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    taskset -a -p -c "$SERVER_CPU" "$PID" >/dev/null 2>&1 || true
}

stop() { terminate "$PID"; PID=; }

# cpu PID: the process's user + system CPU time so far, in clock ticks (proc(5): fields 14 and 15,
# counted after the ")" that ends the command name).
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# update PORT ZONE NAME: one nsupdate adding NAME A, over UDP, one try (no retransmission that a slow
# server would have to process twice), at most 60 s; prints its milliseconds, exits 1 on failure.
update() {
    local t0 t1 out
    t0=$EPOCHREALTIME
    if ! out=$(printf 'server 127.0.0.1 %s\nzone %s.\nupdate add %s 300 A 192.0.2.77\nsend\n' "$1" "$2" "$3" |
        taskset -c "$CLIENT_CPU" nsupdate -y "hmac-sha256:$TSIG_NAME:$TSIG_SECRET" -t 60 -u 60 -r 0 2>&1); then
        log "sign/online: nsupdate to $2 failed: $out"; exit 1
    fi
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) * 1000 }'
}

case "$BUILD" in
    jit) FLAGS=() ;;
    r2r) FLAGS=(-r linux-x64 --self-contained false -p:PublishReadyToRun=true) ;;
    aot) FLAGS=(-r linux-x64 -p:PublishAot=true) ;;
    *) echo "sign/online: BUILD must be jit, r2r or aot" >&2; exit 2 ;;
esac
publish_portcullis "${FLAGS[@]}"
log "generating two zones of $N names"
gen "$SIGNED" "$WORK/$SIGNED.zone"
gen "$PLAIN" "$WORK/$PLAIN.zone"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

RESULTS=$WORK/results
FAILED=()
for s in knot portcullis; do
    dir=$WORK/$s
    mkdir -p "$dir"
    cp "$WORK/$SIGNED.zone" "$WORK/$PLAIN.zone" "$dir/"
    [ "$QUIET_WAIT" -gt 0 ] && wait_quiet
    log "$s: first start, signing $N names"
    start "$s" "$dir" 0
    log "  $s answered signed after $LOAD s"
    echo "$s load $LOAD" >>"$RESULTS"
    stop
    log "$s: restart with the unsigned zone beside, $ROUNDS updates to each"
    start "$s" "$dir" 1
    # The unsigned zone's updates first, then the signed zone's: interleaved, an unsigned update
    # would meet the file rewrite Portcullis does 2 s after a signed update (docs/dnssec.md).
    for kind in plain signed; do
        [ "$kind" = plain ] && zone=$PLAIN || zone=$SIGNED
        c0=$(cpu "$PID")
        for i in $(seq "$ROUNDS"); do
            t=$(update "$PORT" "$zone" "u$i.$zone.")
            echo "$s $kind $t" >>"$RESULTS"
        done
        echo "$s cpu-$kind $(awk -v a="$c0" -v b="$(cpu "$PID")" -v n="$ROUNDS" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (b - a) * 1000 / hz / n }')" >>"$RESULTS"
        log "  $s: $ROUNDS updates to $zone done"
    done
    if signed_answer "$PORT" "u$ROUNDS.$SIGNED."; then
        log "  $s: u$ROUNDS.$SIGNED is answered with an RRSIG"
    else
        log "sign/online: $s answers u$ROUNDS.$SIGNED without an RRSIG:"
        dig @127.0.0.1 -p "$PORT" +dnssec +norec "u$ROUNDS.$SIGNED." A >&2 || true
        FAILED+=("$s")
    fi
    stop
done

# stats SERVER KIND: "median p90" in ms (p90: nearest rank).
stats() {
    awk -v s="$1" -v k="$2" '$1 == s && $2 == k { print $3 }' "$RESULTS" | sort -n | awk '
        { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
            r = int(NR * 0.9); if (r < NR * 0.9) r++; printf "%.2f %.2f\n", m, v[r] }'
}
# field SERVER KEY: the one value recorded under it.
field() { awk -v s="$1" -v k="$2" '$1 == s && $2 == k { print $3 }' "$RESULTS"; }
kl=$(field knot load); pl=$(field portcullis load)
kcs=$(field knot cpu-signed); kcp=$(field knot cpu-plain)
pcs=$(field portcullis cpu-signed); pcp=$(field portcullis cpu-plain)
read -r ksm ksp < <(stats knot signed)
read -r kpm kpp < <(stats knot plain)
read -r psm psp < <(stats portcullis signed)
read -r ppm ppp < <(stats portcullis plain)

echo "knotd $(knotd -V 2>&1 | awk '{print $NF}'), nsupdate $(nsupdate -V 2>&1 | awk '{print $2}'), .NET $(dotnet --version), Portcullis build $BUILD"
echo "$N names + apex, ECDSAP256SHA256 KSK+ZSK, NSEC; $ROUNDS updates per zone; servers on CPU $SERVER_CPU, client on CPU $CLIENT_CPU of $(nproc); load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v kl="$kl" -v pl="$pl" -v ksm="$ksm" -v ksp="$ksp" -v kpm="$kpm" -v kpp="$kpp" \
    -v psm="$psm" -v psp="$psp" -v ppm="$ppm" -v ppp="$ppp" -v kcs="$kcs" -v kcp="$kcp" -v pcs="$pcs" -v pcp="$pcp" 'BEGIN {
    f = "%-16s %9s %11s %11s %11s %11s %11s %11s %9s\n"
    g = "%-16s %9.2f %11.1f %11.1f %11.1f %11.1f %11.1f %11.1f %9.2f\n"
    printf f, "", "signed at", "signed upd", "signed upd", "signed upd", "unsigned", "unsigned", "unsigned", "signed/"
    printf f, "", "load (s)", "median ms", "p90 ms", "CPU ms", "median ms", "p90 ms", "CPU ms", "unsigned"
    printf g, "knot", kl, ksm, ksp, kcs, kpm, kpp, kcp, ksm / kpm
    printf g, "portcullis", pl, psm, psp, pcs, ppm, ppp, pcp, psm / ppm
    r = "%-16s %9.2f %11.2f %11.2f %11s %11.2f %11.2f %11s %9.2f\n"
    printf r, "portcullis/knot", pl / kl, psm / ksm, psp / ksp, (kcs > 0 ? sprintf("%.1f", pcs / kcs) : "-"), ppm / kpm, ppp / kpp, (kcp > 0 ? sprintf("%.1f", pcp / kcp) : "-"), (psm / ppm) / (ksm / kpm)
    print "median, p90: each nsupdate process end to end; CPU ms: the server process\047 user + system time over the block of updates, per update (10 ms ticks); signed/unsigned: of the medians"
}'
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "sign/online: no RRSIG on the last added name from: ${FAILED[*]}" >&2
    exit 1
fi
