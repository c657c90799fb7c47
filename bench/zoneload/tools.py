#!/usr/bin/python3
"""Helpers of bench/zoneload/run.sh.

  tools.py gen ZONE_FILE RECORDS ORIGIN
      Writes a zone of exactly RECORDS records and prints the poll target: "NAME ADDRESS", the last
      host of the file. The mix, per host h<N>: A; AAAA on every second; MX (to another host) on every
      fifth; TXT on every seventh; a CNAME w<N> to it on every twentieth; on every fiftieth a
      delegation d<N> with two in-bailiwick name servers and their glue (2 NS, 3 A/AAAA). The apex
      has SOA, two NS with glue, MX and TXT. Roughly: 46% A, 25% AAAA, 10% MX, 7% TXT, 2.5% CNAME,
      5% NS and 2.5% glue beyond the hosts' own A; 18 to 70 octets of RDATA.
  tools.py poll PORT NAME ADDRESS PID TIMEOUT
      Sends "NAME A" over UDP to 127.0.0.1:PORT every 50 ms (each try waits at most 50 ms for the
      answer) until an authoritative NOERROR answer holding ADDRESS comes back; prints the wall-clock
      time of that answer (seconds since the epoch). Exit 1 after TIMEOUT seconds, 2 if PID exits.
  tools.py mem PID
      Prints "rss_kib pss_kib" summed over PID and its descendants: VmRSS from /proc/PID/status as
      asked, and Pss from /proc/PID/smaps_rollup, which shares each page among the processes mapping
      it (NSD loads the zone, then forks its server and xfrd, which share the zone copy-on-write:
      VmRSS counts it once per process, Pss once in all).
"""
import os
import random
import socket
import struct
import sys
import time


def gen(path, records, origin):
    origin = origin.rstrip(".") + "."
    n = 0
    lines = [f"$ORIGIN {origin}", "$TTL 3600"]

    def add(text):
        nonlocal n
        lines.append(text)
        n += 1

    add("@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )")
    add("  IN NS ns1")
    add("  IN NS ns2")
    add("ns1 IN A 192.0.2.1")
    add("ns2 IN A 192.0.2.2")
    if records > 7:
        add("@ IN MX 10 h0")
        add('@ IN TXT "v=spf1 -all"')
    # Hosts in blocks; once fewer records remain than the largest block could take, plain A hosts fill
    # up to RECORDS exactly, so that the file always ends with a host.
    i = 0
    last = None
    while records - n > 12:
        name = f"h{i}"
        addr = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        add(f"{name} IN A {addr}")
        last = (name, addr)
        if i % 2 == 0:
            add(f"{name} IN AAAA 2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1")
        if i % 5 == 0:
            add(f"{name} IN MX 10 h{(i * 7 + 3) % (i + 1)}")
        if i % 7 == 0:
            add(f'{name} IN TXT "host {i}" "generated for the zone-load benchmark"')
        if i % 20 == 0:
            add(f"w{i} IN CNAME {name}")
        if i % 50 == 0:
            add(f"d{i} IN NS ns1.d{i}")
            add(f"d{i} IN NS ns2.d{i}")
            add(f"ns1.d{i} IN A 203.0.113.{i % 250 + 1}")
            add(f"ns1.d{i} IN AAAA 2001:db8:ffff:{i & 0xffff:x}::53")
            add(f"ns2.d{i} IN A 203.0.113.{(i + 100) % 250 + 1}")
        i += 1
    while n < records:
        name = f"h{i}"
        addr = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        add(f"{name} IN A {addr}")
        last = (name, addr)
        i += 1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{last[0]}.{origin} {last[1]}")


def query(name, qid):
    # RFC 1035 §4.1: header (ID, RD clear, QDCOUNT 1), QNAME, QTYPE A (1), QCLASS IN (1).
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)


def poll(port, name, address, pid, timeout):
    want = socket.inet_aton(address)
    deadline = time.monotonic() + timeout
    rng = random.Random()
    while time.monotonic() < deadline:
        start = time.monotonic()
        if not os.path.exists(f"/proc/{pid}"):
            sys.exit(2)
        qid = rng.randrange(65536)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect(("127.0.0.1", port))
            s.send(query(name, qid))
            s.settimeout(0.05)
            while True:
                data = s.recv(4096)
                if len(data) < 12:
                    continue
                rid, flags, _, ancount = struct.unpack("!HHHH", data[:8])
                # QR and AA set, RCODE 0, an answer: the zone is loaded and served.
                if rid == qid and flags & 0x8000 and flags & 0x0400 and flags & 0x000F == 0 and ancount > 0 and want in data[12:]:
                    print(f"{time.time():.3f}")
                    return
                break
        except OSError:
            pass  # refused (nothing bound yet) or timed out
        finally:
            s.close()
        rest = 0.05 - (time.monotonic() - start)
        if rest > 0:
            time.sleep(rest)
    sys.exit(1)


def tree(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def field(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem(pid):
    pids = tree(pid)
    rss = sum(field(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(field(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    print(rss, pss)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen" and len(args) == 3:
        gen(args[0], int(args[1]), args[2])
    elif cmd == "poll" and len(args) == 5:
        poll(int(args[0]), args[1], args[2], int(args[3]), float(args[4]))
    elif cmd == "mem" and len(args) == 1:
        mem(int(args[0]))
    else:
        sys.exit(__doc__)
