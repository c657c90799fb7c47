#!/bin/sh
# Signing speed: Portcullis (`portcullis dnssec sign`) next to BIND's dnssec-signzone and
# ldns-signzone, on one generated zone of N names (default 100000), each with an A record,
# signed with NSEC by one KSK and one ZSK (the same key files for all three tools) for
# ECDSAP256SHA256 and ED25519. Prints seconds and RRSIGs per second; asserts nothing.
# Usage: bench/sign/run.sh [NAMES]   (build first: dotnet build -c Release)
set -eu
N=${1:-100000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DLL="$ROOT/src/Portcullis/bin/Release/net10.0/portcullis.dll"
[ -f "$DLL" ] || { echo "build first: dotnet build -c Release" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ZONE="$WORK/bench.test.zone"
{
  printf '$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n'
  awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "h%d A 10.%d.%d.%d\n", i, int(i/65536)%256, int(i/256)%256, i%256 }'
} > "$ZONE"
now() { date +%s.%N; }
report() { # tool alg seconds file
  sigs=$(awk '$4 == "RRSIG" { n++ } END { print n+0 }' "$4")
  awk -v t="$1" -v a="$2" -v s="$3" -v n="$sigs" 'BEGIN { printf "%-16s %-16s %8.2f s %8d RRSIGs %10.0f sig/s\n", t, a, s, n, n / s }'
}
echo "zone: $N names + apex, $(nproc) CPUs; dnssec-signzone uses all CPUs (-n default), the others one"
for ALG in ecdsap256sha256 ed25519; do
  K="$WORK/keys-$ALG"; mkdir -p "$K"
  KSK=$(dotnet "$DLL" dnssec keygen bench.test -a "$ALG" --ksk -K "$K")
  ZSK=$(dotnet "$DLL" dnssec keygen bench.test -a "$ALG" -K "$K")
  t0=$(now); dotnet "$DLL" dnssec sign "$ZONE" -o bench.test -K "$K" -f "$WORK/p.signed" >/dev/null; t1=$(now)
  report portcullis "$ALG" "$(echo "$t1 - $t0" | bc)" "$WORK/p.signed"
  t0=$(now); dnssec-signzone -q -S -d "$WORK" -o bench.test -K "$K" -f "$WORK/b.signed" -O full "$ZONE" >/dev/null; t1=$(now)
  report dnssec-signzone "$ALG" "$(echo "$t1 - $t0" | bc)" "$WORK/b.signed"
  # ldns-signzone reads BIND's key pairs by base name.
  t0=$(now); ldns-signzone -o bench.test -f "$WORK/l.signed" "$ZONE" "$K/$KSK" "$K/$ZSK" >/dev/null 2>&1 || echo "ldns-signzone failed for $ALG"; t1=$(now)
  [ -f "$WORK/l.signed" ] && report ldns-signzone "$ALG" "$(echo "$t1 - $t0" | bc)" "$WORK/l.signed"
  rm -f "$WORK"/*.signed
done
