#!/usr/bin/env bash
# Flood: does a legitimate client keep its answers and its latency while another source floods the
# server with identical queries (the reflection pattern that response rate limiting is for)?
#
# Portcullis runs with its default security settings except that loopback is not exempt (RRL and
# client blocks both apply to 127.0.0.x here) and RRL accounts per /32 (so the two sources are two
# clients), pinned to SERVER_CPU with one UDP worker. In interleaved rounds:
#   quiet: the legitimate client (dnsperf -a 127.0.0.2, LEGIT_QPS queries/s over 1,000 names) alone;
#   flood: the same, while a second dnsperf (-a 127.0.0.3) sends one name as fast as it can.
# Both dnsperf processes run on CLIENT_CPU. Reported: the legitimate client's answered share, mean
# and maximum latency, quiet against flood; and how much of the flood got a response (full or
# slipped) — with RRL, a flood gets its first second's burst, then only slips.
#
# Knot DNS and NSD are not run here: Knot 3.2's RRL keys on a fixed /24, so on loopback both sources
# would be one client (see ../shared/reference/peers.md), and NSD has no per-/32 setting either.
#
# usage: bench/flood/run.sh     (about 1.5 minutes with the defaults)
# Environment: ROUNDS [3]  DURATION [8] seconds per run  LEGIT_QPS [500]  SERVER_CPU [0]  CLIENT_CPU [1]
#   CLIENT_LIMIT_QPS [1000, the default] client-limit: queries-per-second; 0 leaves RRL alone against the flood
#   PORTCULLIS_PUBLISH  an existing `dotnet publish` directory (skips the build)  KEEP [0]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
LEGIT_QPS=${LEGIT_QPS:-500}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KEEP=${KEEP:-0}
CLIENT_LIMIT_QPS=${CLIENT_LIMIT_QPS:-1000}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_BUDGET=${QUIET_BUDGET:-60}

require_tools flood dnsperf dotnet taskset python3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-flood.XXXXXX")
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

publish_portcullis -r linux-x64 --self-contained false -p:PublishReadyToRun=true

PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
    echo '$ORIGIN flood.test.'
    echo '$TTL 3600'
    echo '@ SOA ns1 hostmaster 1 7200 3600 1209600 300'
    echo '@ NS ns1'
    echo 'ns1 A 192.0.2.1'
    echo 'www A 192.0.2.80'
    for i in $(seq 0 999); do echo "h$i A 10.0.$((i / 256)).$((i % 256))"; done
} >"$WORK/flood.test.zone"
for i in $(seq 0 999); do echo "h$i.flood.test A"; done | shuf --random-source=<(yes) >"$WORK/legit"
cat >"$WORK/portcullis.yaml" <<EOF
listen: [ "127.0.0.1:$PORT" ]
zones:
  - name: flood.test
    file: $WORK/flood.test.zone
udp-workers: 1
rate-limit:
  ipv4-prefix-length: 32
  exempt-clients: [ none ]
client-limit:
  queries-per-second: $CLIENT_LIMIT_QPS
  exempt-clients: [ none ]
EOF

taskset -c "$SERVER_CPU" dotnet "$PUBLISH/portcullis.dll" serve --config "$WORK/portcullis.yaml" --log-level warning >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 www.flood.test A 2>/dev/null | grep -q 192.0.2.80 && break
    sleep 0.1
done

# legit OUT: the legitimate client at LEGIT_QPS for DURATION seconds.
legit() {
    taskset -c "$CLIENT_CPU" dnsperf -a 127.0.0.2 -s 127.0.0.1 -p "$PORT" -d "$WORK/legit" -l "$DURATION" \
        -Q "$LEGIT_QPS" -c 1 -q 100 -t 2 >"$1" 2>&1
}

RESULTS=$WORK/results
: >"$RESULTS"
for r in $(seq "$ROUNDS"); do
    wait_quiet
    legit "$WORK/quiet-$r"
    wait_quiet
    taskset -c "$CLIENT_CPU" python3 "$HERE/flood.py" 127.0.0.3 "$PORT" www.flood.test $((DURATION + 1)) >"$WORK/flood-$r" 2>&1 &
    FLOOD=$!
    legit "$WORK/during-$r"
    wait "$FLOOD" || true
    for kind in quiet during; do
        awk -v kind="$kind" -v r="$r" '
            /Queries sent:/ { sent = $3 }
            /Queries completed:/ { done = $3 }
            /Average Latency/ { avg = $4; max = $8; sub(/\)/, "", max) }
            END { printf "%s %s %d %d %.6f %.6f\n", kind, r, sent, done, avg, max }' "$WORK/$kind-$r" >>"$RESULTS"
    done
    awk -v r="$r" '/^sent/ { printf "flood %s %d %d %d 0\n", r, $2, $4, $6 }' "$WORK/flood-$r" >>"$RESULTS"
    log "round $r: $(grep " $r " "$RESULTS" | tr '\n' ';')"
done

echo
echo "nproc $(nproc), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); Portcullis pinned to CPU $SERVER_CPU, both dnsperf to CPU $CLIENT_CPU"
echo "legitimate client: $LEGIT_QPS q/s over 1,000 names from 127.0.0.2; flood: one name as fast as flood.py goes from 127.0.0.3; $ROUNDS rounds x $DURATION s; RRL 20/s per /32, slip 2; client limit $CLIENT_LIMIT_QPS q/s"
python3 - "$RESULTS" $((DURATION + 1)) <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(kind, i): return statistics.median(float(r[i]) for r in rows if r[0] == kind)
for kind, label in (("quiet", "legitimate, alone"), ("during", "legitimate, during the flood")):
    answered = med(kind, 3) / med(kind, 2) * 100
    print(f"{label:<30} answered {answered:6.2f}%   mean latency {med(kind, 4) * 1000:7.3f} ms   max {med(kind, 5) * 1000:7.3f} ms")
print(f"{'flood':<30} sent {med('flood', 2):,.0f} ({med('flood', 2) / float(sys.argv[2]):,.0f} q/s), got a response {med('flood', 3):,.0f} ({med('flood', 3) / med('flood', 2) * 100:.2f}%), of which TC=1 slips {med('flood', 4):,.0f}")
print(f"latency during the flood / alone: {med('during', 4) / med('quiet', 4):.2f}x")
EOF
