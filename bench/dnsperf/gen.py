#!/usr/bin/python3
"""Writes the benchmark zone (bench.test, about 10,000 owner names) and a dnsperf query file.

usage: gen.py ZONE_FILE QUERY_FILE [QUERIES] [SEED]

The zone: SOA and two name servers with glue at the apex; 9,000 hosts h<N> with A, every second
one AAAA, every fifth MX (pointing at another host, so there is additional-section work), every
seventh TXT; 500 aliases c<N> (CNAME to a host); a wildcard *.wild with A and TXT; 100 delegations
sub<N> with two in-bailiwick name servers each and their glue (A, and AAAA on the first).

The queries (dnsperf -d format, "name type" per line, shuffled with a fixed seed) mix existing
names and types, existing names with a missing type (NODATA), CNAMEs, names that do not exist
(NXDOMAIN), wildcard matches, names below delegations (referrals) and a few apex queries.
"""
import random
import sys

ORIGIN = "bench.test."
HOSTS = 9000
ALIASES = 500
DELEGATIONS = 100


def write_zone(path):
    out = []
    out.append(f"$ORIGIN {ORIGIN}")
    out.append("$TTL 3600")
    out.append("@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )")
    out.append("  IN NS ns1")
    out.append("  IN NS ns2")
    out.append("  IN MX 10 h1")
    out.append('  IN TXT "v=spf1 -all"')
    out.append("ns1 IN A 192.0.2.1")
    out.append("ns1 IN AAAA 2001:db8::1")
    out.append("ns2 IN A 192.0.2.2")
    for i in range(HOSTS):
        name = f"h{i}"
        out.append(f"{name} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}")
        if i % 2 == 0:
            out.append(f"{name} IN AAAA 2001:db8:1::{i:x}")
        if i % 5 == 0:
            out.append(f"{name} IN MX 10 h{(i * 7 + 3) % HOSTS}")
        if i % 7 == 0:
            out.append(f'{name} IN TXT "host {i}" "generated for dnsperf"')
    for i in range(ALIASES):
        out.append(f"c{i} IN CNAME h{(i * 13) % HOSTS}")
    out.append("*.wild IN A 198.51.100.7")
    out.append('*.wild IN TXT "wildcard"')
    for i in range(DELEGATIONS):
        out.append(f"sub{i} IN NS ns1.sub{i}")
        out.append(f"sub{i} IN NS ns2.sub{i}")
        out.append(f"ns1.sub{i} IN A 203.0.113.{i % 250 + 1}")
        out.append(f"ns1.sub{i} IN AAAA 2001:db8:2::{i:x}")
        out.append(f"ns2.sub{i} IN A 203.0.113.{(i + 100) % 250 + 1}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# (weight, generator) pairs; each generator returns "name type".
def mix(rng):
    def host():
        return rng.randrange(HOSTS)

    def even_host():
        return host() & ~1

    def fifth():
        return host() // 5 * 5

    def seventh():
        return host() // 7 * 7

    def odd_host():
        return host() | 1  # HOSTS is even, so this stays below it

    def label():
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(4, 12)))

    return [
        (35, lambda: f"h{host()}.{ORIGIN} A"),
        (10, lambda: f"h{even_host()}.{ORIGIN} AAAA"),
        (8, lambda: f"h{fifth()}.{ORIGIN} MX"),
        (4, lambda: f"h{seventh()}.{ORIGIN} TXT"),
        (6, lambda: f"h{odd_host()}.{ORIGIN} AAAA"),          # NODATA
        (3, lambda: f"h{host()}.{ORIGIN} SRV"),              # NODATA
        (6, lambda: f"c{rng.randrange(ALIASES)}.{ORIGIN} A"),  # CNAME followed in the zone
        (10, lambda: f"{label()}.{ORIGIN} A"),               # NXDOMAIN
        (3, lambda: f"x{label()}.h{host()}.{ORIGIN} A"),    # NXDOMAIN below an existing name
        (6, lambda: f"{label()}.wild.{ORIGIN} A"),          # wildcard
        (1, lambda: f"{label()}.wild.{ORIGIN} TXT"),        # wildcard
        (6, lambda: f"www.sub{rng.randrange(DELEGATIONS)}.{ORIGIN} A"),  # referral
        (1, lambda: f"sub{rng.randrange(DELEGATIONS)}.{ORIGIN} NS"),     # referral at the cut
        (1, lambda: f"{ORIGIN} " + rng.choice(["SOA", "NS", "MX", "TXT"])),
    ]


def write_queries(path, count, seed):
    rng = random.Random(seed)
    kinds = mix(rng)
    weights = [w for w, _ in kinds]
    makers = [m for _, m in kinds]
    with open(path, "w") as f:
        for _ in range(count):
            f.write(rng.choices(makers, weights)[0]() + "\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    write_zone(sys.argv[1])
    write_queries(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100000,
                  int(sys.argv[4]) if len(sys.argv) > 4 else 1)
