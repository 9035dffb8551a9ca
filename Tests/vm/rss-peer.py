#!/usr/bin/env python3
"""The VM lab's RSS peer, on the host side of the guest's multi-queue NIC
(Tests/vm/run.sh runs it in a network namespace of the lab's own).

  rss-peer.py ports KEY PEER PEER_PORT LOCAL QUEUES PER_QUEUE FIRST
      local ports from FIRST up, PER_QUEUE of them per RX queue, chosen so
      that with Toeplitz key KEY (hex, colon separated) and the table
      `ethtool -X ... equal QUEUES` the flow PEER:PEER_PORT -> LOCAL:port
      lands on each queue: the lab's flows cover every queue. Computed here,
      apart from sockaff's own Toeplitz, which the guest then checks.
  rss-peer.py serve ADDRESS UDP_PORT TCP_PORT
      answers each UDP datagram "N" with N 64-byte datagrams, and each line
      "N" on a TCP connection with N x 64 bytes (Sources/sockaff-bench/RSSFlows.swift).
"""
import socket
import sys
import threading


def toeplitz(key, data):
    """Microsoft's RSS hash: for every set input bit, XOR in the key's 32
    bits starting at that bit position."""
    key_bits = int.from_bytes(key, "big")
    key_length = len(key) * 8
    result = 0
    for i, byte in enumerate(data):
        for bit in range(8):
            if byte & (0x80 >> bit):
                position = i * 8 + bit
                result ^= (key_bits >> (key_length - 32 - position)) & 0xFFFFFFFF
    return result


def ports(key_hex, peer, peer_port, local, queues, per_queue, first):
    key = bytes(int(b, 16) for b in key_hex.split(":"))
    wanted = {q: int(per_queue) for q in range(int(queues))}
    chosen = []
    port = int(first)
    while any(wanted.values()):
        data = (socket.inet_aton(peer) + socket.inet_aton(local) + int(peer_port).to_bytes(2, "big")
                + port.to_bytes(2, "big"))
        queue = (toeplitz(key, data) % 128) % int(queues)
        if wanted[queue]:
            wanted[queue] -= 1
            chosen.append(port)
        port += 1
    print(",".join(map(str, chosen)))


def serve(address, udp_port, tcp_port):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((address, int(udp_port)))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, int(tcp_port)))
    listener.listen(64)

    def answer_datagrams():
        while True:
            data, peer = udp.recvfrom(64)
            for _ in range(int(data)):
                udp.sendto(b"r" * 64, peer)

    def answer_connection(connection):
        with connection, connection.makefile("rb") as lines:
            for line in lines:
                connection.sendall(b"r" * 64 * int(line))

    threading.Thread(target=answer_datagrams, daemon=True).start()
    print("serving", flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=answer_connection, args=(connection,), daemon=True).start()


if __name__ == "__main__":
    {"ports": ports, "serve": serve}[sys.argv[1]](*sys.argv[2:])
