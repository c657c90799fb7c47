#!/usr/bin/env bash
# Resolver cache hits: Portcullis next to Unbound on the same machine (issue 9's closing note).
#
# NSD is authoritative for a generated zone "bench." (NAMES names hN.bench. with an A record each,
# TTL 86400) on 127.0.0.1 and a free port. Portcullis (recursion: forwarders: [NSD]) and Unbound
# (forward-zone "." to NSD, iterator module only, one thread, prefetch off) each forward everything
# there; both run pinned to SERVER_CPU with one UDP worker/thread, dnsperf pinned to CLIENT_CPU.
# Each cache is warmed by asking every name once (dnsperf -n 1, RD set as dnsperf always sends it);
# then NSD is stopped, so that every answer measured afterwards can only come from the cache (a miss
# would be SERVFAIL, and any response code but NOERROR makes the script exit 1). A warm-up run per
# server (not counted; .NET's tiered JIT reaches its final code), then ROUNDS interleaved dnsperf
# runs at saturation and a pass at a fixed offered load (-Q) below it, with the same query file
# (every name, shuffled). Reported per server: q/s, average latency, server CPU seconds (utime +
# stime from /proc/PID/stat before and after) and queries answered per CPU-second, medians over the
# rounds, and portcullis/unbound ratios. On a small machine dnsperf itself saturates first (about
# 10 us of its CPU per query), so queries per server CPU-second is the figure that compares servers.
#
# SIGNED=1 measures the same with DNSSEC validation on (issue 11's closing note): bench. is signed
# (ECDSAP256SHA256 KSK + ZSK from dnssec-keygen, NSEC, dnssec-signzone, signatures valid from an
# hour ago for 30 days), NSD serves the signed zone, the zone's DS (dnssec-dsfromkey -2 of the KSK)
# is the only trust anchor of both resolvers (Unbound: module-config "validator iterator" and
# trust-anchor-file; Portcullis: recursion: trust-anchor-files), and every dnsperf query carries
# DO=1 (dnsperf -D), so each answer is the A RRset with its RRSIG and the AD flag. Before the fill,
# both must answer h1.bench. A with "ad" (dig +dnssec), or the script exits 1. With SIGNED=0 the
# zone is unsigned and neither validates (Unbound iterator only, Portcullis dnssec-validation:
# false: with its default root anchor it would rightly answer SERVFAIL, DNSKEY Missing, for a
# bench. that NSD cannot chain to the root).
#
# usage: bench/resolver/run.sh      (from anywhere; about 4 minutes with the defaults, plus the build)
#        SIGNED=1 bench/resolver/run.sh
# Environment (defaults in brackets):
#   SIGNED [0]  1: signed zone, validation on in both resolvers, DO=1 queries (above)
#   NAMES [10000] names in the zone and lines in the query file
#   ROUNDS [3]  DURATION [20] seconds per dnsperf run  WARMUP [5] seconds per server before round 1
#   CLIENTS [4] dnsperf -c  OUTSTANDING [100] dnsperf -q
#   FIXED_QPS [20000] offered load of the fixed-load pass, one run per server ("" skips it)
#   SERVER_CPU [0]  CLIENT_CPU [1]
#   PORTCULLIS_PUBLISH  an existing `dotnet publish` directory (skips the build; a Native AOT publish,
#             with the native `portcullis` and no portcullis.dll, is run as such)
#   PORTCULLIS_REF  build this commit instead of the working tree
#   QUIET_WAIT [10] before each run, wait up to this many seconds for a second in which the machine
#             is at least 90% idle (0 disables)  QUIET_BUDGET [60] at most this much waiting in all
#   KEEP [0]  1 keeps the temporary directory (zone, configs, logs, every dnsperf output)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib.sh"
NAMES=${NAMES:-10000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
FIXED_QPS=${FIXED_QPS-20000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-60}
KEEP=${KEEP:-0}
SIGNED=${SIGNED:-0}
SERVERS="unbound portcullis"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HZ=$(getconf CLK_TCK)

require_tools run.sh dnsperf taskset dig nsd unbound
[ "$SIGNED" = 1 ] && require_tools run.sh dnssec-keygen dnssec-signzone dnssec-dsfromkey
# dnsperf's extra options for every run: DO=1 when signed, so that answers carry RRSIGs and AD.
DNSPERF_DO=()
[ "$SIGNED" = 1 ] && DNSPERF_DO=(-D)
ZONEFILE=bench.zone
[ "$SIGNED" = 1 ] && ZONEFILE=bench.zone.signed

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-resolver-bench.XXXXXX")
declare -A PID PORT
STARTED=()

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do terminate "$pid" 50; done
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
        rest=${stat##*) }
        set -- $rest                   # $1 is field 3 (state): utime is field 14, stime field 15
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

pin() {
    local pid
    for pid in $(tree_pids "$1"); do taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null; done
}

# wait_answering NAME PORT PID: until a recursive query for h0.bench. gets NOERROR (for the
# resolvers this is their first resolution through NSD) or 30 s.
wait_answering() {
    local name=$1 port=$2 pid=$3
    for _ in $(seq 120); do
        kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited; its log:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
        if dig +time=1 +tries=1 +rec @127.0.0.1 -p "$port" h0.bench. A 2>/dev/null | grep -q 'status: NOERROR'; then
            return 0
        fi
        sleep 0.25
    done
    echo "run.sh: $name did not answer h0.bench. A within 30 s; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
}

start_nsd() {
    local port=$1 dir=$WORK/nsd
    mkdir -p "$dir"
    cat >"$dir/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$port
    server-count: 1
    rrl-ratelimit: 0
    username: ""
    chroot: ""
    zonesdir: "$WORK"
    database: ""
    zonelistfile: "$dir/zone.list"
    xfrdfile: "$dir/xfrd.state"
    pidfile: "$dir/nsd.pid"
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: bench.
    zonefile: $ZONEFILE
EOF
    # On the client's CPU: it works only while the caches are warmed, and is stopped before measuring.
    taskset -c "$CLIENT_CPU" nsd -d -c "$dir/nsd.conf" >"$WORK/nsd.log" 2>&1 &
    echo $!
}

start_unbound() {
    local port=$1 dir=$WORK/unbound
    mkdir -p "$dir"
    # The iterator alone (no validation, as Portcullis's is off then) or, SIGNED=1, the validator
    # with bench.'s DS as its only trust anchor; one thread, caches far larger than 10,000 names,
    # prefetch off (Portcullis's is off too), 127/8 allowed; do-not-query-localhost: no or Unbound
    # never asks NSD on 127.0.0.1.
    local modules='"iterator"' anchor=""
    if [ "$SIGNED" = 1 ]; then
        modules='"validator iterator"'
        anchor="    trust-anchor-file: \"$WORK/bench.ds\""
    fi
    cat >"$dir/unbound.conf" <<EOF
server:
    interface: 127.0.0.1@$port
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    chroot: ""
    username: ""
    directory: "$dir"
    pidfile: "$dir/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    module-config: $modules
$anchor
    do-not-query-localhost: no
    msg-cache-size: 64m
    rrset-cache-size: 128m
    prefetch: no
    serve-expired: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@${PORT[nsd]}
remote-control:
    control-enable: no
EOF
    taskset -c "$SERVER_CPU" unbound -d -c "$dir/unbound.conf" >"$WORK/unbound.log" 2>&1 &
    echo $!
}

start_portcullis() {
    local port=$1 cmd=(dotnet "$PUBLISH/portcullis.dll")
    [ -f "$PUBLISH/portcullis.dll" ] || cmd=("$PUBLISH/portcullis")
    # No zones: the embedded example zone stays (names outside it go to recursion). One UDP worker,
    # as Unbound has one thread; prefetch off as Unbound's; the default 64 MiB cache. Validation off
    # or, SIGNED=1, on (its default) with bench.'s DS as the only trust anchor.
    local validation="  dnssec-validation: false"
    [ "$SIGNED" = 1 ] && validation="  trust-anchor-files: [ \"$WORK/bench.ds\" ]"
    cat >"$WORK/portcullis.yaml" <<EOF
listen: [ "127.0.0.1:$port" ]
allow-recursion: [ 127.0.0.0/8 ]
udp-workers: 1
recursion:
  enabled: true
  forwarders: [ "127.0.0.1@${PORT[nsd]}" ]
  prefetch: false
$validation
logging:
  level: warning
EOF
    taskset -c "$SERVER_CPU" "${cmd[@]}" serve -c "$WORK/portcullis.yaml" >"$WORK/portcullis.log" 2>&1 &
    echo $!
}

# --- build and data -------------------------------------------------------------------------------
# What is measured, named before the build (HEAD may move while the harness runs).
if [ -n "${PORTCULLIS_PUBLISH:-}" ]; then
    BUILT="Portcullis from $PORTCULLIS_PUBLISH"
elif [ -n "${PORTCULLIS_REF:-}" ]; then
    BUILT="Portcullis $(git -C "$REPO" rev-parse --short "$PORTCULLIS_REF")"
else
    BUILT="Portcullis working tree at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
fi
publish_portcullis
log "generating bench. ($NAMES names, TTL 86400) and the query file"
"$PY" - "$WORK/bench.zone" "$WORK/queries" "$NAMES" <<'EOF'
import random, sys
zone, queries, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(zone, "w") as f:
    f.write("$ORIGIN bench.\n$TTL 86400\n@ SOA ns hostmaster 1 7200 3600 1209600 86400\n@ NS ns\nns A 127.0.0.1\n")
    for i in range(n):
        f.write(f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
names = [f"h{i}.bench. A" for i in range(n)]
random.Random(1).shuffle(names)
open(queries, "w").write("\n".join(names) + "\n")
EOF
if [ "$SIGNED" = 1 ]; then
    log "signing bench. (ECDSAP256SHA256 KSK + ZSK, NSEC, valid from an hour ago for 30 days)"
    mkdir -p "$WORK/keys"
    (
        cd "$WORK/keys"
        ksk=$(dnssec-keygen -q -a ECDSAP256SHA256 -f KSK -n ZONE bench.)
        dnssec-keygen -q -a ECDSAP256SHA256 -n ZONE bench. >/dev/null
        dnssec-dsfromkey -2 "$ksk.key" >"$WORK/bench.ds"
    ) 2>"$WORK/sign.log" || { cat "$WORK/sign.log" >&2; exit 1; }
    # -d: the dsset-bench. file goes to the work directory, not wherever the script was started.
    dnssec-signzone -S -K "$WORK/keys" -d "$WORK" -o bench. -s now-3600 -e now+2592000 -f "$WORK/$ZONEFILE" \
        "$WORK/bench.zone" >>"$WORK/sign.log" 2>&1 || { cat "$WORK/sign.log" >&2; exit 1; }
    log "trust anchor of both resolvers: $(cat "$WORK/bench.ds")"
fi

# --- servers --------------------------------------------------------------------------------------
PORT[nsd]=$(free_port)
PID[nsd]=$(start_nsd "${PORT[nsd]}")
STARTED+=("${PID[nsd]}")
for _ in $(seq 120); do
    kill -0 "${PID[nsd]}" 2>/dev/null || { echo "run.sh: nsd exited; its log:" >&2; cat "$WORK/nsd.log" >&2; exit 1; }
    dig +time=1 +tries=1 +norec @127.0.0.1 -p "${PORT[nsd]}" bench. SOA 2>/dev/null | grep -q 'flags: qr aa' && break
    sleep 0.25
done
for s in $SERVERS; do
    PORT[$s]=$(free_port)
    PID[$s]=$(start_"$s" "${PORT[$s]}")
    STARTED+=("${PID[$s]}")
done
for s in $SERVERS; do
    wait_answering "$s" "${PORT[$s]}" "${PID[$s]}"
    pin "${PID[$s]}"
    threads=$(for p in $(tree_pids "${PID[$s]}"); do ls /proc/"$p"/task; done | wc -l)
    log "$s answering on 127.0.0.1:${PORT[$s]} (pid ${PID[$s]}, $threads threads, pinned to CPU $SERVER_CPU)"
done
# SIGNED=1: both must have validated before anything is measured: AD on a query as dnsperf -D sends
# it (DO=1, AD=0, no cookie).
if [ "$SIGNED" = 1 ]; then
    for s in $SERVERS; do
        answer=$(dig +time=2 +tries=1 +rec +dnssec +noadflag +nocookie @127.0.0.1 -p "${PORT[$s]}" h1.bench. A 2>&1 || true)
        if ! grep -q '^;; flags: [a-z ]*\bad\b' <<<"$answer" || ! grep -q 'status: NOERROR' <<<"$answer" \
            || ! grep -q '[[:space:]]RRSIG[[:space:]]\+A[[:space:]]' <<<"$answer"; then
            echo "run.sh: $s did not answer h1.bench. A validated (NOERROR, flag ad, an RRSIG); dig +dnssec said:" >&2
            echo "$answer" >&2
            exit 1
        fi
        log "$s validates: h1.bench. A NOERROR, $(grep -o '^;; flags: [a-z ]*' <<<"$answer" | sed 's/^;; //'), $(grep -c '[[:space:]]RRSIG[[:space:]]' <<<"$answer") RRSIG, $(grep -o 'MSG SIZE  rcvd: [0-9]*' <<<"$answer" | sed 's/  / /')"
    done
fi

# One dnsperf run: appends "mode server round sent completed lost qps latency cpu_s q_per_cpu_s rcodes"
# to $RESULTS. Exits 1 on any response code but NOERROR, or when nothing was answered.
RESULTS=$WORK/results
: >"$RESULTS"
measure() {
    local mode=$1 s=$2 round=$3 extra=("${@:4}") out before after line
    out=$WORK/dnsperf-$mode-$s-$round.txt
    [ "$QUIET_WAIT" -gt 0 ] && [ "$mode" != fill ] && wait_quiet
    before=$(cpu_ticks "${PID[$s]}")
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$WORK/queries" ${DNSPERF_DO[@]+"${DNSPERF_DO[@]}"} "${extra[@]}" >"$out" 2>&1 || true
    after=$(cpu_ticks "${PID[$s]}")
    line=$(awk -v mode="$mode" -v s="$s" -v r="$round" -v ticks=$((after - before)) -v hz="$HZ" '
        /Queries sent:/ { sent = $3 }
        /Queries completed:/ { done = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        /Average Latency/ { lat = $4 }
        /Response codes:/ { sub(/.*Response codes: */, ""); gsub(/ \([0-9.]+%\)/, ""); gsub(/, /, ","); gsub(/ /, "="); rc = $0 }
        END {
            cpu = ticks / hz
            printf "%s %s %s %d %d %d %.0f %.6f %.2f %.0f %s\n", mode, s, r, sent, done, lost, qps, lat, cpu, (cpu > 0 ? done / cpu : 0), rc
        }' "$out")
    echo "$line" >>"$RESULTS"
    echo "$line" | awk '{ printf "  %-10s %-9s round %s: sent %d completed %d lost %d, %d q/s, latency %.3f ms, server CPU %.2f s, %d queries per CPU-second; %s\n", $2, $1, $3, $4, $5, $6, $7, $8 * 1000, $9, $10, $11 }' >&2
    set -- $line
    if [ "$5" -eq 0 ] || [ "${11:-}" != "NOERROR=$5" ]; then
        echo "run.sh: $s answered with response codes '${11:-none}' in the $mode run (expected NOERROR only); dnsperf said:" >&2
        cat "$out" >&2
        exit 1
    fi
}

# --- warm the caches, then take the authoritative server away --------------------------------------
log "warming each cache: every name once (dnsperf -n 1 -c 1 -q 20)"
for s in $SERVERS; do measure fill "$s" 0 -n 1 -c 1 -q 20; done
terminate "${PID[nsd]}" 50
# Forget it, so that cleanup never signals a process id the system has since given to another.
KEEP_PIDS=()
for p in "${STARTED[@]}"; do [ "$p" = "${PID[nsd]}" ] || KEEP_PIDS+=("$p"); done
STARTED=("${KEEP_PIDS[@]}")
log "nsd stopped: from here on every answer comes from the resolvers' caches"

if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: $WARMUP s per server (not counted; lets .NET's tiered JIT reach its final code)"
    for s in $SERVERS; do measure warmup "$s" 0 -l "$WARMUP" -c "$CLIENTS" -q "$OUTSTANDING"; done
fi
log "saturation: $ROUNDS interleaved rounds of $DURATION s (dnsperf -c $CLIENTS -q $OUTSTANDING)"
for r in $(seq "$ROUNDS"); do
    for s in $SERVERS; do measure max "$s" "$r" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING"; done
done
for rate in $FIXED_QPS; do
    log "fixed offered load: -Q $rate for $DURATION s per server"
    for s in $SERVERS; do measure "fixed$rate" "$s" 1 -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" -Q "$rate"; done
done

# --- summary --------------------------------------------------------------------------------------
echo
echo "nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(unbound -V 2>&1 | awk 'NR==1 {print "Unbound " $2}'), NSD $(nsd -v 2>&1 | awk 'NR==1 {print $3}'), $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}'), .NET $(dotnet --version), $BUILT"
echo "resolver pinned to CPU $SERVER_CPU (all threads; Unbound num-threads 1, Portcullis udp-workers 1), dnsperf to CPU $CLIENT_CPU;"
echo "$NAMES cached names (hN.bench. A, TTL 86400) asked in a shuffled loop with RD set; NSD stopped after the fill; $ROUNDS rounds x $DURATION s, dnsperf -c $CLIENTS -q $OUTSTANDING"
if [ "$SIGNED" = 1 ]; then
    echo "SIGNED=1: bench. signed (ECDSAP256SHA256, NSEC), validation on in both with bench.'s DS as the only trust anchor, every query DO=1 (dnsperf -D): answers are A + RRSIG with AD"
else
    echo "SIGNED=0: bench. unsigned, validation off in both (Unbound iterator only, Portcullis dnssec-validation: false), queries without EDNS"
fi
echo
"$PY" - "$RESULTS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(mode, s, i):
    v = [float(r[i]) for r in rows if r[0] == mode and r[1] == s]
    return statistics.median(v) if v else float("nan")
def show(mode, title):
    if not any(r[0] == mode for r in rows):
        return
    print(title)
    print(f"{'server':<11}{'sent':>10}{'completed':>11}{'lost':>7}{'q/s':>9}{'latency ms':>12}{'CPU s':>7}{'q/CPU-s':>9}  rcodes (last run)")
    for s in ("unbound", "portcullis"):
        mine = [r for r in rows if r[0] == mode and r[1] == s]
        print(f"{s:<11}{med(mode,s,3):>10.0f}{med(mode,s,4):>11.0f}{med(mode,s,5):>7.0f}{med(mode,s,6):>9.0f}"
              f"{med(mode,s,7)*1000:>12.3f}{med(mode,s,8):>7.2f}{med(mode,s,9):>9.0f}  {mine[-1][10] if len(mine[-1]) > 10 else ''}")
    p = lambda i: med(mode, "portcullis", i) / med(mode, "unbound", i)
    print(f"  portcullis/unbound: queries per CPU-second {p(9):.2f}x, q/s {p(6):.2f}x, latency {p(7):.2f}x")
    n = sum(r[0] == mode and r[1] == "portcullis" for r in rows)
    if n > 1:
        per = [float(a[9]) / float(b[9]) for a, b in zip([r for r in rows if r[0] == mode and r[1] == "portcullis"],
                                                         [r for r in rows if r[0] == mode and r[1] == "unbound"])]
        print("  portcullis/unbound per round (q/CPU-s): " + ", ".join(f"{x:.2f}" for x in per))
    print()
show("fill", "Cache fill, every name once, a cache miss each (dnsperf -n 1 -c 1 -q 20; through NSD):")
show("max", "Cache hits at saturation (median of the rounds):")
for mode in dict.fromkeys(r[0] for r in rows if r[0].startswith("fixed")):
    show(mode, f"Cache hits at a fixed offered load, dnsperf -Q {mode[5:]}:")
EOF
for s in $SERVERS; do
    if [ -s "$WORK/$s.log" ]; then
        echo "$s log ($(wc -l <"$WORK/$s.log") lines), first lines:"
        head -n 5 "$WORK/$s.log" | sed 's/^/  /'
    fi
done
