#!/usr/bin/python3
"""What idle TCP connections cost a DNS server in resident memory.

usage: idle.py PORT PID COUNT [PER_SOURCE] [ZONE]

Against the server listening on 127.0.0.1:PORT whose main process is PID (its child processes
count too, as NSD serves from a forked child):
  1. warm-up: 32 connections, one query each (SOA of ZONE), closed; one second's pause;
  2. baseline: VmRSS summed over the server's processes and their open file descriptors;
  3. opens COUNT connections, PER_SOURCE from each source address (127.0.0.2, 127.0.0.3, ...: servers
     limit connections per client address), sends nothing, and waits (at most 5 s) until the server
     holds COUNT more descriptors, i.e. has accepted them all; reads VmRSS ("idle"). Connections are
     opened 8 at a time, each batch once the server has accepted the previous one: Knot listens with
     a backlog of a few connections, and a SYN dropped on a full queue costs the client a 1 s
     retransmission, which would stretch the test past the servers' idle timeouts;
  4. sends one query on every connection, reads every answer, reads VmRSS again ("used");
  5. counts the server's descriptors once more (connections it already closed show here), closes all.
Everything after step 2 takes a few seconds, inside every server's idle timeout (10 s for Knot and
Portcullis, 120 s for NSD). Prints one line of key=value pairs. Socket buffers are kernel memory and
do not show in VmRSS; the figure is the server process's own cost.
"""
import os
import resource
import socket
import struct
import sys
import time


def tree(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def fds(pids):
    total = 0
    for p in pids:
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def query(zone, qid):
    # RFC 1035 §4.1: header (ID, no flags, QDCOUNT 1), QNAME, QTYPE SOA (6), QCLASS IN (1);
    # over TCP with the two-octet length in front (RFC 1035 §4.2.2).
    name = b"".join(bytes([len(l)]) + l.encode() for l in zone.strip(".").split(".")) + b"\0"
    msg = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + name + struct.pack("!HH", 6, 1)
    return struct.pack("!H", len(msg)) + msg


def read_answer(sock):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the server")
            buf += chunk
        return buf
    (length,) = struct.unpack("!H", exactly(2))
    return exactly(length)


def source(i, per_source):
    n = (127 << 24) + 2 + i // per_source
    return socket.inet_ntoa(struct.pack("!I", n))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    port, pid, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    per_source = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    zone = sys.argv[5] if len(sys.argv) > 5 else "bench.test"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))

    for i in range(32):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(query(zone, i))
            read_answer(s)
    time.sleep(1)

    pids = tree(pid)  # NSD's serving child and xfrd stay the same through the test
    rss0, fds0 = rss_kib(pids), fds(pids)
    t0 = time.monotonic()
    socks, refused = [], 0
    for i in range(count):
        if i % 8 == 0 and i > 0:
            deadline = time.monotonic() + 1
            while fds(pids) < fds0 + len(socks) and time.monotonic() < deadline:
                time.sleep(0.0005)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.bind((source(i, per_source), 0))
            s.connect(("127.0.0.1", port))
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    opened = time.monotonic() - t0
    deadline = time.monotonic() + 5
    while fds(pids) < fds0 + len(socks) and time.monotonic() < deadline:
        time.sleep(0.02)
    accepted = fds(pids) - fds0
    time.sleep(0.2)
    rss_idle = rss_kib(pids)
    idle_at = time.monotonic() - t0

    for i, s in enumerate(socks):
        try:
            s.sendall(query(zone, i & 0xFFFF))
        except OSError:
            pass
    answered = 0
    for s in socks:
        try:
            read_answer(s)
            answered += 1
        except (OSError, ConnectionError):
            pass
    time.sleep(0.2)
    rss_used = rss_kib(pids)
    still_open = fds(pids) - fds0
    used_at = time.monotonic() - t0
    for s in socks:
        s.close()
    print(f"connections={len(socks)} refused={refused} accepted={accepted} answered={answered} still_open={still_open} "
          f"rss0_kib={rss0} rss_idle_kib={rss_idle} rss_used_kib={rss_used} "
          f"open_s={opened:.2f} idle_at_s={idle_at:.2f} used_at_s={used_at:.2f}")


if __name__ == "__main__":
    main()
