#!/usr/bin/python3
"""flood.py SOURCE PORT NAME SECONDS: sends one query for NAME (type A) over UDP from SOURCE to
127.0.0.1:PORT as fast as it can for SECONDS, without waiting for answers (the reflection pattern),
and counts what comes back. Prints "sent N received M truncated T"."""
import os
import socket
import struct
import sys
import time

source, port, name, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 0))
s.connect(("127.0.0.1", port))
s.setblocking(False)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sent = received = truncated = 0
end = time.monotonic() + seconds
query_id = 0
while True:
    if sent % 256 == 0 and time.monotonic() >= end:
        break
    query_id = (query_id + 1) & 0xFFFF
    try:
        s.send(struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + qname + b"\0\1\0\1")
        sent += 1
    except BlockingIOError:
        pass
    if sent % 32 == 0:
        while True:
            try:
                r = s.recv(4096)
            except BlockingIOError:
                break
            received += 1
            if r[2] & 0x02:
                truncated += 1
# What is still in flight.
deadline = time.monotonic() + 0.5
while time.monotonic() < deadline:
    try:
        r = s.recv(4096)
        received += 1
        if r[2] & 0x02:
            truncated += 1
    except BlockingIOError:
        time.sleep(0.01)
print(f"sent {sent} received {received} truncated {truncated}")
