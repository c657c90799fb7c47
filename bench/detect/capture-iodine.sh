#!/usr/bin/env bash
# Labelled tunnel traffic for the tunnel detector (issue 10): real iodine 0.7 sessions through
# Portcullis as the resolver, one query log (JSON lines, docs/watching.md) per variant.
#
# For each variant: iodined in the root namespace, authoritative for t.tunnel.test on
# 127.56.N.1:5300 (tun 172.31.N.1/27); Portcullis listening on 10.199.N.1:53, the host end of a veth
# pair, with recursion for 10.199.N.0/24 only and a forward-zone t.tunnel.test -> iodined, leaving
# from 127.56.N.2, its query log on; the iodine client (-r: no raw mode, every packet goes as DNS
# through Portcullis) inside a network namespace at 10.199.N.2, with the variant's options. Once the
# tunnel is up: ROUNDS TCP transfers across it (UPLOAD random octets from the client, DOWNLOAD back;
# random, as iodine compresses), PAUSE seconds apart, then IDLE seconds of an idle tunnel (lazy-mode
# polling), then everything is stopped and the query log is copied to
#   tests/Portcullis.Server.Tests/Detection/Data/iodine-VARIANT.jsonl
# Every line in those files is tunnel traffic (label: tunnel), client 10.199.N.2 as captured; the
# handshake (version, login, codec and fragment-size probes) is included. Each file is checked
# to stay under MAX_BYTES.
#
# usage: sudo bench/detect/capture-iodine.sh [VARIANT...]     (default: every variant; about a minute)
# Variants (name: iodine options):
#   null: (autodetect: NULL records, raw downstream)   null-nolazy: -T NULL -L 0 (polls every second)
#   txt-base32: -T TXT -O Base32   txt-base64: -T TXT -O Base64   cname-base128: -T CNAME -O Base128
#   mx: -T MX   srv: -T SRV   private: -T PRIVATE (TYPE65399)
# Environment (defaults in brackets): UPLOAD [16000] DOWNLOAD [48000] ROUNDS [3] PAUSE [1] IDLE [5]
#   MAX_BYTES [1000000]  OUT [tests/Portcullis.Server.Tests/Detection/Data]  KEEP [0] keeps the work dir
#   PORTCULLIS_PUBLISH  an existing `dotnet publish` directory (skips the build)
# Needs root (network namespaces, tun devices, port 53), Debian's iodine, ip, python3, dotnet.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/../lib.sh"
UPLOAD=${UPLOAD:-16000}
DOWNLOAD=${DOWNLOAD:-48000}
ROUNDS=${ROUNDS:-3}
PAUSE=${PAUSE:-1}
IDLE=${IDLE:-5}
MAX_BYTES=${MAX_BYTES:-1000000}
OUT=${OUT:-$REPO/tests/Portcullis.Server.Tests/Detection/Data}
KEEP=${KEEP:-0}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DOMAIN=t.tunnel.test
PASSWORD=portcullis-iodine-capture

declare -A OPTIONS=(
    [null]=""
    [null-nolazy]="-T NULL -L 0"
    [txt-base32]="-T TXT -O Base32"
    [txt-base64]="-T TXT -O Base64"
    [cname-base128]="-T CNAME -O Base128"
    [mx]="-T MX"
    [srv]="-T SRV"
    [private]="-T PRIVATE"
)
ORDER="null null-nolazy txt-base32 txt-base64 cname-base128 mx srv private"
VARIANTS=${*:-$ORDER}
for v in $VARIANTS; do
    [ -n "${OPTIONS[$v]+set}" ] || { echo "capture-iodine.sh: unknown variant '$v' (known: $ORDER)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "capture-iodine.sh: needs root (network namespaces, tun devices, port 53)" >&2; exit 1; }
require_tools capture-iodine.sh iodine iodined ip "$PY" dotnet

WORK=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-iodine-capture.XXXXXX")
NS="" SLOT="" PIDS=()

cleanup() {
    local i
    # Newest first: the client, then Portcullis (it writes out its query log on the way), then iodined.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do terminate "${PIDS[i]}" 100; done
    PIDS=()
    # Deleting the host end deletes the veth pair at once, even while a socket still closing in the
    # namespace keeps the namespace alive; the tun devices go with iodine and iodined.
    [ -n "$NS" ] && { ip link del "pcio${SLOT}h" 2>/dev/null; ip netns del "$NS" 2>/dev/null; } || true
    NS=""
}
finish() {
    cleanup
    if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# Waits (at most $3 s) until file $1 contains $2, or the process $4 ends.
wait_for_line() {
    local file=$1 text=$2 seconds=$3 pid=$4 i
    for i in $(seq $((seconds * 10))); do
        grep -qF "$text" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -qF "$text" "$file" 2>/dev/null
}

# Slot N: the first from 200 down whose namespace name is free (the tests count up from 1, same names).
take_slot() {
    local n
    for n in $(seq 200 -1 101); do
        if ip netns add "portcullis-iodine-$n" 2>/dev/null; then
            SLOT=$n NS=portcullis-iodine-$n
            return
        fi
    done
    echo "capture-iodine.sh: no free namespace portcullis-iodine-N (N 101-200)" >&2
    exit 1
}

# One TCP transfer across the tunnel: a listener on iodined's tunnel address takes UPLOAD octets and
# sends DOWNLOAD random octets back; the client inside the namespace (bash /dev/tcp) sends random
# octets and checks what it got. Fails unless both directions arrived whole.
transfer() {
    local port=$(( 20000 + RANDOM % 20000 )) server result
    "$PY" - "172.31.$SLOT.1" "$port" "$UPLOAD" "$DOWNLOAD" >"$WORK/server.out" 2>&1 <<'EOF' &
import hashlib, os, socket, sys
host, port, up, down = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port)); s.listen(1); s.settimeout(60)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(60)
h, n = hashlib.sha256(), 0
while n < up:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
data = os.urandom(down); c.sendall(data); c.shutdown(socket.SHUT_WR)
while c.recv(65536): pass   # the client closes while the tunnel is up
print(h.hexdigest(), hashlib.sha256(data).hexdigest(), flush=True)
EOF
    server=$!
    wait_for_line "$WORK/server.out" listening 10 "$server" || { cat "$WORK/server.out" >&2; return 1; }
    result=$(timeout 90 ip netns exec "$NS" bash -c "set -e; head -c $UPLOAD /dev/urandom > '$WORK/up.bin';
        sha256sum < '$WORK/up.bin' | cut -c1-64; exec 3<>/dev/tcp/172.31.$SLOT.1/$port; cat '$WORK/up.bin' >&3;
        head -c $DOWNLOAD <&3 | sha256sum | cut -c1-64" | tr '\n' ' ')
    wait "$server" || { cat "$WORK/server.out" >&2; return 1; }
    local sent received server_received server_sent
    read -r sent received <<<"$result"
    read -r server_received server_sent < <(tail -1 "$WORK/server.out")
    [ "$sent" = "$server_received" ] && [ "$received" = "$server_sent" ] || {
        echo "capture-iodine.sh: transfer damaged: client sent $sent, server got $server_received; server sent $server_sent, client got $received" >&2
        return 1
    }
}

capture() {
    local variant=$1 dir=$WORK/$1 pid
    mkdir -p "$dir"
    take_slot
    log "$variant: slot $SLOT, iodine ${OPTIONS[$variant]:-(defaults)}"
    ip link del "pcio${SLOT}h" 2>/dev/null || true   # left by an earlier owner of the slot (see cleanup)
    ip netns exec "$NS" ip link set lo up
    ip link add "pcio${SLOT}h" type veth peer name "pcio${SLOT}c"
    ip link set "pcio${SLOT}c" netns "$NS"
    ip addr add "10.199.$SLOT.1/24" dev "pcio${SLOT}h"
    ip link set "pcio${SLOT}h" up
    ip netns exec "$NS" ip addr add "10.199.$SLOT.2/24" dev "pcio${SLOT}c"
    ip netns exec "$NS" ip link set "pcio${SLOT}c" up

    iodined -f -c -l "127.56.$SLOT.1" -p 5300 -d "pcio${SLOT}s" -P "$PASSWORD" "172.31.$SLOT.1/27" "$DOMAIN" \
        >"$dir/iodined.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    wait_for_line "$dir/iodined.log" "Listening to dns for domain" 20 "$pid" || { cat "$dir/iodined.log" >&2; return 1; }

    cat >"$dir/portcullis.yaml" <<EOF
listen: [ "10.199.$SLOT.1:53" ]
allow-recursion: [ "10.199.$SLOT.0/24" ]
zones: []
recursion:
  forward-zones:
    $DOMAIN: [ "127.56.$SLOT.1@5300" ]
  outgoing-interface: [ "127.56.$SLOT.2" ]
query-log:
  file: $dir/queries.jsonl
EOF
    "${PORTCULLIS[@]}" serve --config "$dir/portcullis.yaml" >"$dir/portcullis.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    wait_for_line "$dir/portcullis.log" "ready" 60 "$pid" || { cat "$dir/portcullis.log" >&2; return 1; }

    # shellcheck disable=SC2086 # the options are words
    ip netns exec "$NS" iodine -f -r -P "$PASSWORD" -d "pcio${SLOT}t" ${OPTIONS[$variant]} "10.199.$SLOT.1" "$DOMAIN" \
        >"$dir/iodine.log" 2>&1 &
    pid=$!; PIDS+=("$pid")
    wait_for_line "$dir/iodine.log" "Connection setup complete" 60 "$pid" || { cat "$dir/iodine.log" >&2; return 1; }
    log "  $(grep -E 'Using DNS type|codec|fragment size to' "$dir/iodine.log" | tr '\n' ';')"

    local round
    for round in $(seq "$ROUNDS"); do
        transfer
        sleep "$PAUSE"
    done
    sleep "$IDLE"
    # Stop the client first (its last queries are answered or time out), then the server flushes the log.
    cleanup
    local lines bytes
    lines=$(wc -l <"$dir/queries.jsonl")
    bytes=$(wc -c <"$dir/queries.jsonl")
    log "  $lines queries, $bytes octets, $(grep -c SERVFAIL "$dir/iodine.log" || true) SERVFAIL lines from iodine"
    [ "$bytes" -le "$MAX_BYTES" ] || { echo "capture-iodine.sh: $variant: $bytes octets > MAX_BYTES $MAX_BYTES; lower UPLOAD/DOWNLOAD/ROUNDS" >&2; return 1; }
    mkdir -p "$OUT"
    cp "$dir/queries.jsonl" "$OUT/iodine-$variant.jsonl"
}

publish_portcullis
if [ -x "$PUBLISH/portcullis" ] && [ ! -f "$PUBLISH/portcullis.dll" ]; then PORTCULLIS=("$PUBLISH/portcullis")
else PORTCULLIS=(dotnet "$PUBLISH/portcullis.dll"); fi

for v in $VARIANTS; do capture "$v"; done
log "wrote $(for v in $VARIANTS; do printf '%s ' "iodine-$v.jsonl"; done)to $OUT"
