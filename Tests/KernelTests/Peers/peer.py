#!/usr/bin/env python3
"""A socket peer for sockaff's kernel tests: a separate process that owns the
sockets being queried, driven line by line over stdin, answering in JSON lines.

  peer.py tcp-server HOST          listen on HOST:0, print {pid, port, listen_fd};
                                   accept one, print {fd}
  peer.py tcp-client HOST PORT     connect, print {pid, fd}
  peer.py udp-server HOST [--connect-on-first]
                                   bind HOST:0, print {pid, port, fd}; with the flag,
                                   connect to the first sender (a connected socket)
  peer.py udp-client HOST PORT     connect a UDP socket, print {pid, fd}
  peer.py hold                     open a file, a pipe, an eventfd, an epoll fd,
                                   unix, netlink and packet sockets and a UDP socket
                                   that receives nothing, fork a zombie child;
                                   print their fds and the zombie's pid
  peer.py multi HOST               in one process: a TCP listener, a TCP connection
                                   to it (both ends), a connected UDP socket and the
                                   unconnected UDP socket it talks to; print all fds
  peer.py fork-share HOST          bind a UDP socket, fork a child that holds it too,
                                   print {pid, child_pid, fd, port}; the parent echoes

Any mode takes --cpu N (first): pin the process to CPU N (sched_setaffinity).

Then each stdin line "run N" makes N exchanges of 64-byte messages (servers
echo, clients send then read the echo) and prints {"done": N}; "incoming"
prints the kernel's own SO_INCOMING_CPU and SO_INCOMING_NAPI_ID of the
exchanging socket, read by the peer itself: {"incoming_cpu", "napi_id"}
(tcp-server, tcp-client, udp-server, udp-client). EOF ends it.
Every socket call has a timeout, so a broken test fails instead of hanging.
"""
import json
import os
import select
import socket
import sys
import time

TIMEOUT = 10.0
SIZE = 64


def say(**fields):
    print(json.dumps(fields), flush=True)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


SO_INCOMING_CPU, SO_INCOMING_NAPI_ID = 49, 56  # <asm-generic/socket.h>


def serve_commands(exchange, sock=None):
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["run"]:
            count = int(words[1])
            for _ in range(count):
                exchange()
            say(done=count)
        elif words[:1] == ["incoming"] and sock is not None:
            say(incoming_cpu=sock.getsockopt(socket.SOL_SOCKET, SO_INCOMING_CPU),
                napi_id=sock.getsockopt(socket.SOL_SOCKET, SO_INCOMING_NAPI_ID))


def tcp_server(host):
    listener = socket.socket(family_of(host), socket.SOCK_STREAM)
    listener.settimeout(TIMEOUT)
    listener.bind((host, 0))
    listener.listen(1)
    say(pid=os.getpid(), port=listener.getsockname()[1], listen_fd=listener.fileno())
    conn, _ = listener.accept()
    conn.settimeout(TIMEOUT)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    say(fd=conn.fileno())
    serve_commands(lambda: conn.sendall(recv_exact(conn, SIZE)), conn)


def tcp_client(host, port):
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    say(pid=os.getpid(), fd=sock.fileno())

    def exchange():
        sock.sendall(b"x" * SIZE)
        recv_exact(sock, SIZE)

    serve_commands(exchange, sock)


def udp_server(host, connect_on_first):
    sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    sock.bind((host, 0))
    say(pid=os.getpid(), port=sock.getsockname()[1], fd=sock.fileno())
    state = {"connected": False}

    def exchange():
        data, sender = sock.recvfrom(SIZE)
        if connect_on_first and not state["connected"]:
            sock.connect(sender)
            state["connected"] = True
        sock.sendto(data, sender)

    serve_commands(exchange, sock)


def udp_client(host, port):
    sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    sock.connect((host, int(port)))
    say(pid=os.getpid(), fd=sock.fileno())

    def exchange():
        sock.send(b"x" * SIZE)
        sock.recv(SIZE)

    serve_commands(exchange, sock)


def hold():
    regular = open("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd")
    read_end, write_end = os.pipe()
    unix_a, unix_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    packet = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    quiet_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet_udp.bind(("127.0.0.1", 0))
    events = os.eventfd(0)
    poller = select.epoll()
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)  # never reaped while we hold: stays a zombie
    say(pid=os.getpid(), file_fd=regular.fileno(), pipe_fd=read_end,
        unix_fd=unix_a.fileno(), netlink_fd=netlink.fileno(), packet_fd=packet.fileno(),
        quiet_udp_fd=quiet_udp.fileno(), eventfd_fd=events, epoll_fd=poller.fileno(),
        zombie_pid=zombie)
    sys.stdin.read()


def multi(host):
    family = family_of(host)
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.settimeout(TIMEOUT)
    listener.bind((host, 0))
    listener.listen(1)
    client = socket.socket(family, socket.SOCK_STREAM)
    client.settimeout(TIMEOUT)
    client.connect(listener.getsockname()[:2])
    accepted, _ = listener.accept()
    accepted.settimeout(TIMEOUT)
    unconnected = socket.socket(family, socket.SOCK_DGRAM)
    unconnected.settimeout(TIMEOUT)
    unconnected.bind((host, 0))
    connected = socket.socket(family, socket.SOCK_DGRAM)
    connected.settimeout(TIMEOUT)
    connected.bind((host, 0))
    connected.connect(unconnected.getsockname()[:2])
    say(pid=os.getpid(), listen_fd=listener.fileno(), client_fd=client.fileno(),
        accepted_fd=accepted.fileno(), udp_connected_fd=connected.fileno(),
        udp_unconnected_fd=unconnected.fileno(), tcp_port=listener.getsockname()[1],
        udp_connected_port=connected.getsockname()[1],
        udp_unconnected_port=unconnected.getsockname()[1])

    def exchange():
        client.sendall(b"x" * SIZE)
        accepted.sendall(recv_exact(accepted, SIZE))
        recv_exact(client, SIZE)
        connected.send(b"x" * SIZE)
        data, sender = unconnected.recvfrom(SIZE)
        unconnected.sendto(data, sender)
        connected.recv(SIZE)

    serve_commands(exchange)


def fork_share(host):
    sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    sock.bind((host, 0))
    child = os.fork()
    if child == 0:
        sys.stdin.close()
        # Holds the shared socket until the parent ends.
        while os.getppid() != 1:
            time.sleep(0.1)
        os._exit(0)
    say(pid=os.getpid(), child_pid=child, fd=sock.fileno(), port=sock.getsockname()[1])

    def exchange():
        data, sender = sock.recvfrom(SIZE)
        sock.sendto(data, sender)

    try:
        serve_commands(exchange)
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)


def main(argv):
    if argv[1] == "--cpu":
        os.sched_setaffinity(0, {int(argv[2])})
        argv = argv[:1] + argv[3:]
    mode, args = argv[1], argv[2:]
    if mode == "tcp-server":
        tcp_server(args[0])
    elif mode == "tcp-client":
        tcp_client(args[0], args[1])
    elif mode == "udp-server":
        udp_server(args[0], "--connect-on-first" in args)
    elif mode == "udp-client":
        udp_client(args[0], args[1])
    elif mode == "hold":
        hold()
    elif mode == "multi":
        multi(args[0])
    elif mode == "fork-share":
        fork_share(args[0])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
