"""A listener that records anything that arrives: the bypass suite runs it where leaks would land.

``python trap.py LOG --tcp 22,25 --udp 53 --bind 10.0.0.2 --bind fd00::2 [--icmp]`` writes one JSON line per
arrival (TCP connection, UDP datagram, ICMP echo request) to LOG and prints ``ready`` once listening.
Runs until killed.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import time


def _bound(family: int, kind: int, addr: str, port: int) -> socket.socket:
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("log")
    a.add_argument("--tcp", default="")
    a.add_argument("--udp", default="")
    a.add_argument("--bind", action="append", default=[])
    a.add_argument("--icmp", action="store_true")
    args = a.parse_args()
    socks: dict[socket.socket, str] = {}
    for addr in args.bind:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        for port in filter(None, args.tcp.split(",")):
            socks[_bound(fam, socket.SOCK_STREAM, addr, int(port))] = "tcp"
        for port in filter(None, args.udp.split(",")):
            socks[_bound(fam, socket.SOCK_DGRAM, addr, int(port))] = "udp"
    if args.icmp:
        socks[socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)] = "icmp"
        socks[socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)] = "icmp6"
    print("ready", flush=True)
    with open(args.log, "a") as log:
        while True:
            ready, _, _ = select.select(list(socks), [], [], 1.0)
            for s in ready:
                kind = socks[s]
                local = s.getsockname()
                if kind == "tcp":
                    conn, peer = s.accept()
                    conn.close()
                elif kind == "udp":
                    _, peer = s.recvfrom(65535)
                else:
                    data, peer = s.recvfrom(65535)
                    # only echo requests count: replies and neighbour discovery are the host's own traffic
                    icmp_type = data[20] if kind == "icmp" else data[0]
                    if icmp_type not in (8, 128):
                        continue
                entry = {"ts": time.time(), "proto": kind, "local": list(local[:2]), "peer": list(peer[:2])}
                log.write(json.dumps(entry) + "\n")
                log.flush()


if __name__ == "__main__":
    main()
