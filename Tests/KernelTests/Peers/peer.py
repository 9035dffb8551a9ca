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
  peer.py reuseport tcp|udp HOST PORT
                                   a SO_REUSEPORT member bound to HOST:PORT (0: a new
                                   port), listening if TCP; print {pid, fd, port}; each
                                   "drain" reads (UDP) or accepts and closes (TCP) what
                                   is queued and prints {"received": total so far}
  peer.py reuseport-threads HOST CPU...
                                   one process, a UDP SO_REUSEPORT member per CPU given,
                                   each read by a thread of its own pinned to that CPU
                                   and blocked in epoll_wait on an epoll of its own;
                                   print {pid, fds, port}; "count" prints {"received": [..]}
  peer.py reuseport-steer PID:FD ...
                                   takes the members' sockets (pidfd_getfd), puts member
                                   i in slot i of a REUSEPORT_SOCKARRAY map, attaches an
                                   sk_reuseport program that selects slot 0, closes its
                                   copies; prints {pid, map_id, prog_id} or {refused}
  peer.py udp-spray HOST PORT FLOWS COUNT
                                   COUNT datagrams from each of FLOWS new sockets (FLOWS
                                   source ports: flows the reuseport hash spreads)

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
import struct
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


SO_REUSEPORT = 15


def reuseport_member(proto, host, port):
    sock = socket.socket(family_of(host), socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_REUSEPORT, 1)
    sock.bind((host, int(port)))
    if proto == "tcp":
        sock.listen(256)
    sock.setblocking(False)
    say(pid=os.getpid(), fd=sock.fileno(), port=sock.getsockname()[1])
    received = 0
    for line in sys.stdin:
        if line.split()[:1] == ["drain"]:
            while True:
                try:
                    if proto == "tcp":
                        sock.accept()[0].close()
                    else:
                        sock.recv(SIZE)
                except BlockingIOError:
                    break
                received += 1
            say(received=received)


def reuseport_threads(host, *cpus):
    import threading
    sockets = []
    for _ in cpus:
        sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, SO_REUSEPORT, 1)
        sock.bind((host, sockets[0].getsockname()[1] if sockets else 0))
        sock.setblocking(False)
        sockets.append(sock)
    received = [0] * len(sockets)
    ready = threading.Barrier(len(sockets) + 1)

    def worker(index, cpu):
        os.sched_setaffinity(0, {int(cpu)})  # this thread only
        poller = select.epoll()
        poller.register(sockets[index].fileno(), select.EPOLLIN)
        ready.wait()
        while True:
            poller.poll()
            while True:
                try:
                    sockets[index].recv(SIZE)
                except BlockingIOError:
                    break
                received[index] += 1

    for index, cpu in enumerate(cpus):
        threading.Thread(target=worker, args=(index, cpu), daemon=True).start()
    ready.wait()
    say(pid=os.getpid(), fds=[sock.fileno() for sock in sockets], port=sockets[0].getsockname()[1])
    for line in sys.stdin:
        if line.split()[:1] == ["count"]:
            say(received=list(received))


def bpf_syscall(cmd, attr):
    """bpf(2) through libc: Python has no binding. Returns the result and the attr buffer."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    number = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
    buffer = ctypes.create_string_buffer(bytes(attr), len(attr))
    result = libc.syscall(number, cmd, buffer, len(attr))
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"bpf({cmd}): {os.strerror(error)}")
    return result, buffer


def map_create(map_type, key_size, value_size, entries, name):
    """BPF_MAP_CREATE; `name` at most 15 bytes (the kernel's names end in a NUL)."""
    attr = struct.pack("IIIIIII16s", map_type, key_size, value_size, entries, 0, 0, 0, name) + bytes(84)
    return bpf_syscall(0, attr)[0]


def map_update(map_fd, key, value):
    """BPF_MAP_UPDATE_ELEM of two ctypes values."""
    import ctypes
    attr = struct.pack("IIQQQ", map_fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0) + bytes(96)
    bpf_syscall(2, attr)


def insn(code, dst=0, src=0, off=0, imm=0):
    """One eBPF instruction."""
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def program_load(prog_type, instructions, name, expected_attach_type=0):
    """BPF_PROG_LOAD of `instructions` (GPL); `name` at most 15 bytes."""
    import ctypes
    program = b"".join(instructions)
    license = ctypes.create_string_buffer(b"GPL")
    code = ctypes.create_string_buffer(program, len(program))
    attr = struct.pack(
        "IIQQIIQII16sII", prog_type, len(program) // 8, ctypes.addressof(code), ctypes.addressof(license),
        0, 0, 0, 0, 0, name, 0, expected_attach_type) + bytes(56)
    return bpf_syscall(5, attr)[0]


def object_id(fd):
    """BPF_OBJ_GET_INFO_BY_FD: the id (both map and prog info start with type, id)."""
    import ctypes
    info = ctypes.create_string_buffer(256)
    attr = struct.pack("IIQ", fd, 256, ctypes.addressof(info)) + bytes(112)
    bpf_syscall(15, attr)
    return struct.unpack_from("II", info.raw)[1]


def reuseport_steer(members):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    sockets = []
    for member in members:
        pid, fd = (int(part) for part in member.split(":"))
        pidfd = os.pidfd_open(pid)
        copy = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd
        os.close(pidfd)
        if copy < 0:
            sys.exit(f"pidfd_getfd {member}: {os.strerror(ctypes.get_errno())}")
        sockets.append(copy)
    try:
        # REUSEPORT_SOCKARRAY (20), u32 keys, u64 values (a lookup gives cookies).
        map_fd = map_create(20, 4, 8, len(sockets), b"sockaff_test_rp")
        for slot, copy in enumerate(sockets):
            map_update(map_fd, ctypes.c_uint32(slot), ctypes.c_uint64(copy))
        prog_fd = program_load(21, [  # BPF_PROG_TYPE_SK_REUSEPORT
            insn(0xBF, 6, 1),                  # r6 = ctx
            insn(0x62, 10, 0, -4, 0),          # *(u32 *)(r10 - 4) = 0: the key
            insn(0xBF, 1, 6),                  # r1 = ctx
            insn(0x18, 2, 1, 0, map_fd), insn(0),  # r2 = the map (BPF_PSEUDO_MAP_FD)
            insn(0xBF, 3, 10), insn(0x07, 3, 0, 0, -4),  # r3 = &key
            insn(0xB7, 4, 0, 0, 0),            # r4 = 0: flags
            insn(0x85, 0, 0, 0, 82),           # bpf_sk_select_reuseport
            insn(0xB7, 0, 0, 0, 1),            # return SK_PASS
            insn(0x95),
        ], b"sockaff_test_rp")
        socket.socket(fileno=os.dup(sockets[0])).setsockopt(socket.SOL_SOCKET, 52, struct.pack("i", prog_fd))
    except OSError as error:
        say(pid=os.getpid(), refused=str(error))
        sys.stdin.read()
        return
    for copy in sockets:
        os.close(copy)  # the members alone hold their sockets
    say(pid=os.getpid(), map_id=object_id(map_fd), prog_id=object_id(prog_fd))
    sys.stdin.read()


def xdp_cpumap(interface, cpu):
    """An XDP program in generic (skb) mode on `interface` that redirects
    every frame to `cpu` through a cpumap, held by a BPF link for as long
    as this process lives (its exit detaches it, also when a test fails)."""
    import ctypes
    try:
        # CPUMAP (16), u32 keys (CPU numbers), u32 values (the queue size).
        map_fd = map_create(16, 4, 4, os.cpu_count(), b"sockaff_cpumap")
        map_update(map_fd, ctypes.c_uint32(int(cpu)), ctypes.c_uint32(192))  # the CPU's kthread starts
        prog_fd = program_load(6, [  # BPF_PROG_TYPE_XDP, expected BPF_XDP
            insn(0x18, 1, 1, 0, map_fd), insn(0),  # r1 = the cpumap (BPF_PSEUDO_MAP_FD)
            insn(0xB7, 2, 0, 0, int(cpu)),     # r2 = the CPU: the key
            insn(0xB7, 3, 0, 0, 2),            # r3 = XDP_PASS where the entry is missing
            insn(0x85, 0, 0, 0, 51),           # bpf_redirect_map
            insn(0x95),
        ], b"sockaff_xdp", expected_attach_type=37)
        # BPF_LINK_CREATE: the program on the interface, XDP_FLAGS_SKB_MODE.
        link = struct.pack("IIII", prog_fd, socket.if_nametoindex(interface), 37, 2) + bytes(112)
        bpf_syscall(28, link)
    except OSError as error:
        say(pid=os.getpid(), refused=str(error))
        sys.stdin.read()
        return
    say(pid=os.getpid(), map_id=object_id(map_fd), prog_id=object_id(prog_fd))
    sys.stdin.read()


def udp_spray(host, port, flows, count):
    for _ in range(int(flows)):
        sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        for _ in range(int(count)):
            sock.sendto(b"x" * SIZE, (host, int(port)))
        sock.close()
    say(done=int(flows) * int(count))


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
    elif mode == "reuseport":
        reuseport_member(*args)
    elif mode == "reuseport-threads":
        reuseport_threads(*args)
    elif mode == "reuseport-steer":
        reuseport_steer(args)
    elif mode == "xdp-cpumap":
        xdp_cpumap(*args)
    elif mode == "udp-spray":
        udp_spray(*args)

    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
