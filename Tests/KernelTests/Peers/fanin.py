#!/usr/bin/env python3
"""Fan-in peers for sockaff's many-core tests: one socket received on every
CPU at once. On loopback the receive path runs in the sender's softirq, so a
sender pinned to CPU N is received on CPU N, as one RSS queue's CPU would be.

  fanin.py udp-sink HOST          bind HOST:0 (a large receive buffer), print
                                  {pid, port, fd}; each stdin line "drain" reads
                                  what is queued and prints {"drained": N}
  fanin.py udp-send HOST PORT N   send N 64-byte datagrams, print {"sent": N}
  fanin.py tcp-listen HOST        listen on HOST:0 and accept every connection,
                                  holding it; print {pid, port, fd}
  fanin.py tcp-connect HOST PORT N
                                  open N connections, print {"connected": N},
                                  hold them until stdin ends

The TCP peers hold their connections while the test counts: tearing many
down at once sends a few segments to the listener when an established lookup
races a socket's move to TIME_WAIT (seen as the listener's RSTs, OutRsts).

Any mode takes --cpu N (first): pin the process to CPU N. Every socket call
has a timeout, so a broken test fails instead of hanging.
"""
import os
import resource
import socket
import sys
import threading

from peer import TIMEOUT, family_of, say

SO_RCVBUFFORCE = 33


def udp_sink(host):
    sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)
    sock.bind((host, 0))
    sock.setblocking(False)
    say(pid=os.getpid(), port=sock.getsockname()[1], fd=sock.fileno())
    for line in sys.stdin:
        if line.split()[:1] == ["drain"]:
            drained = 0
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    break
                drained += 1
            say(drained=drained)


def udp_send(host, port, count):
    sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    sock.connect((host, int(port)))
    payload = b"x" * 64
    send = sock.send
    for _ in range(int(count)):
        send(payload)
    say(sent=int(count))


def open_files_to_the_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tcp_listen(host):
    open_files_to_the_limit()
    listener = socket.socket(family_of(host), socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(4096)
    say(pid=os.getpid(), port=listener.getsockname()[1], fd=listener.fileno())
    held = []

    def accept_all():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_all, daemon=True).start()
    sys.stdin.read()


def tcp_connect(host, port, count):
    open_files_to_the_limit()
    held = []
    for _ in range(int(count)):
        sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect((host, int(port)))
        held.append(sock)
    say(connected=int(count))
    sys.stdin.read()


def main(argv):
    if argv[1] == "--cpu":
        os.sched_setaffinity(0, {int(argv[2])})
        argv = argv[:1] + argv[3:]
    mode, args = argv[1], argv[2:]
    modes = {"udp-sink": udp_sink, "udp-send": udp_send, "tcp-listen": tcp_listen, "tcp-connect": tcp_connect}
    if mode not in modes:
        sys.exit(f"unknown mode {mode}")
    modes[mode](*args)


if __name__ == "__main__":
    main(sys.argv)
