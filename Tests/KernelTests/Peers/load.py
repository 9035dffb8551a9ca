#!/usr/bin/env python3
"""Load for the reliability tests: real loopback traffic, checked end to end.

  load.py tcp BYTES            send BYTES over one loopback TCP connection from a
                               forked sender; both ends hash what they saw
  load.py udp COUNT            send COUNT 64-byte datagrams, each carrying its
                               sequence number and a CRC, with a window of
                               acknowledgements so that a healthy host loses none
  load.py churn TOTAL BATCH    open BATCH UDP sockets, send each one datagram,
                               read it, close them all; repeat up to TOTAL sockets
  load.py storm TOTAL BATCH    TCP connection storms: BATCH connections to a
                               listener, each sent a byte from CPU 0 and one from
                               CPU 1; half accepted and closed, the others left in
                               the accept queue when the listener closes; every
                               client closed abortively (RST, no TIME_WAIT);
                               repeated up to TOTAL connections, then
                               {"done": TOTAL, "seconds": ...}
  load.py unaccepted COUNT     COUNT loopback TCP connections to a listener that
                               never accepts them, each sent a byte from CPU 0
                               and one from CPU 1 (so the kernel's child socket
                               receives on two CPUs); prints {"ready": ...} with
                               the listener's port, then on "close" from stdin
                               closes the listener and the clients, {"closed": true}

tcp and udp print one JSON line with what each end counted and hashed. churn
prints {"ready": true} after its first batch, then {"done": ...} at the end;
it holds at most BATCH + 1 sockets at any time. Every wait has a time-out, so a
broken test fails instead of hanging.
"""
import hashlib
import json
import os
import socket
import struct
import sys
import time
import zlib

TIMEOUT = 10.0
BLOCK = 1 << 20
WINDOW = 256


def say(**fields):
    print(json.dumps(fields), flush=True)


def in_child(work):
    """Runs work() in a forked child; returns a function that waits for and
    returns the dict the child produced."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            result = work()
        except Exception as error:  # reported to the parent, not lost
            result = {"error": repr(error)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)

    def wait():
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
        os.waitpid(child, 0)
        return json.loads(data)

    return wait


def tcp(total):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)

    def receive():
        connection, _ = listener.accept()
        connection.settimeout(TIMEOUT)
        digest, count = hashlib.sha256(), 0
        while data := connection.recv(BLOCK):
            digest.update(data)
            count += len(data)
        return {"bytes": count, "sha256": digest.hexdigest()}

    receiver = in_child(receive)
    sender = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
    base = bytearray(os.urandom(BLOCK))
    digest, sent = hashlib.sha256(), 0
    while sent < total:
        block = base[: min(BLOCK, total - sent)]
        block[:8] = struct.pack("<Q", sent)  # no two blocks alike
        sender.sendall(block)
        digest.update(block)
        sent += len(block)
    sender.close()
    say(sent_bytes=sent, sent_sha256=digest.hexdigest(), received=receiver())


def datagram(sequence):
    body = struct.pack("<Q", sequence) + (sequence * 2654435761 % (1 << 32)).to_bytes(4, "little") * 13
    return body + struct.pack("<I", zlib.crc32(body))


def udp(count):
    inbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inbound.bind(("127.0.0.1", 0))
    outbound = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outbound.bind(("127.0.0.1", 0))
    outbound.settimeout(1.0)

    def receive():
        inbound.settimeout(2.0)
        digest = hashlib.sha256()
        received = corrupt = out_of_order = 0
        last = -1
        while last < count - 1:
            try:
                data, sender = inbound.recvfrom(256)
            except socket.timeout:
                break
            body, crc = data[:-4], data[-4:]
            if len(data) != 64 or struct.pack("<I", zlib.crc32(body)) != crc:
                corrupt += 1
                continue
            sequence = struct.unpack("<Q", body[:8])[0]
            received += 1
            out_of_order += sequence <= last
            last = max(last, sequence)
            digest.update(data)
            if (sequence + 1) % WINDOW == 0 or sequence == count - 1:
                inbound.sendto(struct.pack("<Q", sequence), sender)
        return {"datagrams": received, "corrupt": corrupt, "out_of_order": out_of_order, "sha256": digest.hexdigest()}

    receiver = in_child(receive)
    target = inbound.getsockname()
    digest = hashlib.sha256()
    stalls = 0
    for sequence in range(count):
        data = datagram(sequence)
        outbound.sendto(data, target)
        digest.update(data)
        if (sequence + 1) % WINDOW == 0 or sequence == count - 1:
            try:
                while struct.unpack("<Q", outbound.recv(16))[0] < sequence:
                    pass
            except socket.timeout:
                stalls += 1  # an acknowledgement or datagram was lost
    say(sent_datagrams=count, sent_sha256=digest.hexdigest(), window_stalls=stalls, received=receiver())


def churn(total, batch):
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    opened = 0
    started = time.monotonic()
    while opened < total:
        sockets = []
        for _ in range(min(batch, total - opened)):
            receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            receiver.bind(("127.0.0.1", 0))
            receiver.settimeout(TIMEOUT)
            sockets.append(receiver)
        for receiver in sockets:
            sender.sendto(b"x", receiver.getsockname())
        for receiver in sockets:
            receiver.recv(1)
        for receiver in sockets:
            receiver.close()
        if opened == 0:
            say(ready=True)
        opened += len(sockets)
    say(done=opened, seconds=round(time.monotonic() - started, 2))


def connect_from_two_cpus(port, count, linger=None):
    """count connections to the loopback port, each sent a byte from CPU 0,
    then one from CPU 1: loopback processes a packet on the CPU that sent
    it, so the accepting side's socket receives on two CPUs."""
    clients = []
    for cpu in (0, 1):
        os.sched_setaffinity(0, {cpu})
        if cpu == 0:
            for _ in range(count):
                client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                if linger:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                clients.append(client)
        for client in clients:
            client.sendall(b"x")
    os.sched_setaffinity(0, set(range(os.cpu_count())))
    return clients


def storm(total, batch):
    linger = struct.pack("ii", 1, 0)  # close() sends RST: no TIME_WAIT, no port exhaustion
    start = time.monotonic()
    done = 0
    while done < total:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(batch + 16)
        port = listener.getsockname()[1]
        clients = connect_from_two_cpus(port, min(batch, total - done), linger)
        listener.settimeout(TIMEOUT)
        for _ in range(len(clients) // 2):
            accepted, _ = listener.accept()
            accepted.close()
        listener.close()
        for client in clients:
            client.close()
        done += len(clients)
        if done == len(clients):
            say(ready=True)
    say(done=done, seconds=round(time.monotonic() - start, 1))


def unaccepted(count):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(count + 16)
    port = listener.getsockname()[1]
    clients = connect_from_two_cpus(port, count)
    say(ready=True, port=port, connections=len(clients))
    sys.stdin.readline()
    listener.close()
    for client in clients:
        client.close()
    say(closed=True)


def main(arguments):
    mode = arguments[0]
    if mode == "tcp":
        tcp(int(arguments[1]))
    elif mode == "udp":
        udp(int(arguments[1]))
    elif mode == "storm":
        storm(int(arguments[1]), int(arguments[2]))
    elif mode == "unaccepted":
        unaccepted(int(arguments[1]))
    elif mode == "churn":
        churn(int(arguments[1]), int(arguments[2]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
