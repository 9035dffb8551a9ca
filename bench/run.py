#!/usr/bin/env python3
"""sockaff's benchmark: measures, and writes what it measured to a JSON file
(raw values per round; bench/render.py turns it into BENCHMARKS.md's tables).
Every figure that matters is a ratio taken side by side in one run, because
the machine is shared and noisy. Run as root through `make bench` or `make
bench-smoke` (seconds, every measurement once). Sections (--sections):

  per_packet: per-packet cost in real traffic (bpf_stats): sockaff vs an empty program,
     both attached at once so they see the same packets, attach order alternating
  test_run: per-invocation cost through BPF_PROG_TEST_RUN, on separately loaded copies
  throughput: TCP bulk with/without the tracer; UDP 64 B packets per second
     with no program / the empty program / sockaff, alternating
  peer: the peer an operator would write instead: a bpftrace script on
     tracepoint:sock:sk_data_ready
  queries: library latency, whole-process latency, `list` of 10k/100k sockets
  memory: kernel memory per tracked socket
  fan_in: every CPU into one socket vs one socket per sender (ns/packet,
     counted/delivered against the UDP MIB, packets per second), and the
     per-CPU pool's memory
"""
import argparse
import base64
import contextlib
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings

PIN_DIR = "/sys/fs/bpf/sockaff_bench"


def sh(*args, check=True, capture=True, **kwargs):
    result = subprocess.run(list(args), capture_output=capture, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout if capture else ""


def cgroup2_root():
    mounts = [line.split() for line in open("/proc/mounts")]
    points = [m[1] for m in mounts if len(m) > 2 and m[2] == "cgroup2"]
    for preferred in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if preferred in points:
            return preferred
    if not points:
        raise RuntimeError("no cgroup2 mount")
    return points[0]


def prog_stats(prog_id):
    info = json.loads(sh("bpftool", "-j", "prog", "show", "id", str(prog_id)))
    return info.get("run_time_ns", 0), info.get("run_cnt", 0)


def prog_ids(name):
    progs = json.loads(sh("bpftool", "-j", "prog", "show") or "[]")
    return [p["id"] for p in progs if p.get("name") == name]


def busy_ns():
    """CPU time all CPUs spent not idle, from /proc/stat (USER_HZ ticks)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) * 1e9 / os.sysconf("SC_CLK_TCK")


class Holders:
    """The socket-holding processes of one measurement; killed on close."""

    def __init__(self, processes):
        self.processes = processes
        self.pids = {p.pid for p in processes}
        self.pid = processes[0].pid
        self.first_fd = processes[0].first_fd

    def kill(self):
        for p in self.processes:
            p.kill()

    def wait(self):
        for p in self.processes:
            p.wait()


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.sockaff = os.path.abspath(args.sockaff)
        self.objects = os.path.abspath(args.objects)
        self.cgroup = cgroup2_root()
        self.iperf = None

    # -- setup and teardown ------------------------------------------------

    @staticmethod
    def progress(text):
        print(f"bench: {text}", file=sys.stderr, flush=True)

    def __enter__(self):
        if os.geteuid() != 0:
            sys.exit("bench: needs root")
        sh(self.sockaff, "detach")
        sh(self.sockaff, "trace")  # mounts bpffs if needed
        sh(self.sockaff, "detach")
        os.makedirs(PIN_DIR, exist_ok=True)
        self.stats = self.bpf_stats(True)  # for the whole run; the scrape rows set it apart
        self.stats.__enter__()
        sh("bpftool", "prog", "load", f"{self.objects}/empty.bpf.o", f"{PIN_DIR}/empty", "type", "cgroup/skb")
        self.empty_id = json.loads(sh("bpftool", "-j", "prog", "show", "pinned", f"{PIN_DIR}/empty"))["id"]
        self.iperf = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", "5399"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        if self.iperf:
            self.iperf.kill()
            self.iperf.wait()
        self.detach_empty()
        self.detach_object("storage_floor")
        self.detach_object("lookup_floor")
        sh(self.sockaff, "detach", check=False)
        sh("rm", "-rf", PIN_DIR, check=False)
        self.stats.__exit__(None, None, None)

    def attach_empty(self):
        sh("bpftool", "cgroup", "attach", self.cgroup, "ingress", "pinned", f"{PIN_DIR}/empty", "multi")

    def detach_empty(self):
        sh("bpftool", "cgroup", "detach", self.cgroup, "ingress", "pinned", f"{PIN_DIR}/empty", check=False)

    def attach_sockaff(self, *options):
        sh(self.sockaff, "trace", *options)

    def detach_sockaff(self):
        sh(self.sockaff, "detach")

    # -- traffic -----------------------------------------------------------

    def iperf_client(self, *options, seconds):
        out = sh("iperf3", "-c", "127.0.0.1", "-p", "5399", "-J", "-t", str(seconds), *options)
        return json.loads(out)["end"]

    def udp_small(self, seconds):
        """Received 64-byte datagrams per second, unlimited rate."""
        return self.udp_small_counted(seconds)[0]

    def udp_small_counted(self, seconds):
        """udp_small's rate, and the datagrams received."""
        end = self.iperf_client("-u", "-l", "64", "-b", "0", seconds=seconds)
        total = end["sum"]
        received = total["packets"] - total["lost_packets"]
        return received / total["seconds"], received

    def tcp_small(self, seconds):
        self.iperf_client("-N", "-l", "64", "-b", "50M", seconds=seconds)

    def tcp_bulk(self, seconds):
        return self.iperf_client(seconds=seconds)["sum_received"]["bits_per_second"] / 1e9

    # -- 1. per-packet cost in real traffic ---------------------------------

    def per_packet(self):
        """Each row's rounds interleaved with the other rows' (round 1 of
        every row, then round 2, ...), so a machine that drifts during the
        run moves every row alike: the read modes' rows are compared with
        each other as well as with the empty program."""
        rounds = self.args.rounds or (2 if self.quick else 6)
        seconds = 1 if self.quick else 3
        self.progress("1. per-packet cost in real traffic")
        udp, tcp = (lambda: self.udp_small(seconds)), (lambda: self.tcp_small(seconds))
        shapes = (("UDP 64 B", udp, ()),
                  ("TCP 64 B, NODELAY, 50 Mbit/s", tcp, ()),
                  ("UDP 64 B, trace --sampled-reads", udp, ("--sampled-reads",)),
                  ("TCP 64 B, NODELAY, 50 Mbit/s, trace --sampled-reads", tcp, ("--sampled-reads",)),
                  ("UDP 64 B, trace --no-locality", udp, ("--no-locality",)))
        rows = [{"traffic": name, "options": list(options), "empty_ns": [], "sockaff_ns": [], "empty_first": [],
                 "consume_ns": [], "empty_read_ns": []} for name, _, options in shapes]
        for round_index in range(rounds):
            for row, (_, traffic, options) in zip(rows, shapes):
                self.per_packet_round(row, round_index, traffic, options)
                # The floor of any per-socket tracer on the same traffic, the
                # same way (section 7's lookup floor): what is sockaff's own
                # and what any socket storage lookup pays. Once per traffic.
                if not options:
                    self.floor_round(row, round_index, traffic)
        return {"rounds": rounds, "seconds": seconds, "interleaved": True, "rows": rows}

    def per_packet_round(self, row, round_index, traffic, options):
        """One round of one row: sockaff (traced with `options`) and the empty
        program beside it, and on the read side, the read program beside an
        empty tp_btf program, in the same order as the ingress pair."""
        reader = "sockaff_sampled" if "--sampled-reads" in options else "sockaff_consume"
        reads = "--no-locality" not in options
        held = {}

        def attach(first=round_index % 2 == 0):
            if first and reads:
                held["process"], held["id"] = self.hold_empty_read()
            self.attach_sockaff(*options)
            if not first and reads:
                held["process"], held["id"] = self.hold_empty_read()

        def detach():
            self.detach_sockaff()
            self.release(held.pop("process", None))

        per, (ingress, consume, empty_read) = self.beside_empty(
            round_index, attach, detach,
            lambda: (prog_ids("sockaff_ingress")[0], (prog_ids(reader) or [None])[0] if reads else None,
                     held.get("id")), traffic)
        row["empty_ns"].append(per[self.empty_id])
        row["sockaff_ns"].append(per[ingress])
        row["empty_first"].append(round_index % 2 == 0)
        if consume and empty_read:
            row["consume_ns"].append(per[consume])
            row["empty_read_ns"].append(per[empty_read])

    def floor_round(self, row, round_index, traffic):
        """One round of the lookup floor (bench/bpf/lookup_floor.bpf.c: one
        socket storage lookup per packet, nothing written, what any
        per-socket tracer pays) beside the empty program, into row's
        floor_ns and floor_empty_ns."""
        floor = {}
        per, (floor_id,) = self.beside_empty(
            round_index, lambda: floor.update(id=self.attach_object("lookup_floor")),
            lambda: self.detach_object("lookup_floor"), lambda: (floor["id"],), traffic)
        row.setdefault("floor_empty_ns", []).append(per[self.empty_id])
        row.setdefault("floor_ns", []).append(per[floor_id])

    def hold_empty_read(self):
        """Attaches bench/bpf/empty_read.bpf.o (tp_btf/sock_recv_length, which
        bpftool cannot attach) through `sockaff-bench hold`, held until its
        stdin closes: returns the process and the program's id."""
        process = subprocess.Popen([self.args.bench, "hold", f"{self.objects}/empty_read.bpf.o"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = process.stdout.readline()
        if not line:
            process.wait()
            sys.exit("bench: sockaff-bench hold empty_read.bpf.o failed")
        return process, json.loads(line)["sockaff_empty_read"]

    @staticmethod
    def release(process):
        if process:
            process.stdin.close()
            process.wait()

    # -- 2. BPF_PROG_TEST_RUN ----------------------------------------------

    def test_run(self):
        repeats = 100_000 if self.quick else 2_000_000
        rounds = 1 if self.quick else 5
        self.progress("2. per-invocation cost (BPF_PROG_TEST_RUN)")
        copy = f"{PIN_DIR}/copy"
        # Program types come from the SEC names (the object also holds a tp_btf program).
        sh("bpftool", "prog", "loadall", f"{self.objects}/sockaff.bpf.o", copy)
        frame = tempfile.NamedTemporaryFile(delete=False)
        frame.write(bytes(12) + b"\x08\x00" + b"\x45" + bytes(49))  # Ethernet + IPv4 header
        frame.close()

        def run(path):
            out = sh("bpftool", "-j", "prog", "run", "pinned", path, "data_in", frame.name, "repeat", str(repeats))
            return float(json.loads(out)["duration"])  # ns per run, averaged by the kernel

        empty, ours = [], []
        try:
            for _ in range(rounds):
                empty.append(run(f"{PIN_DIR}/empty"))
                ours.append(run(f"{copy}/sockaff_ingress"))
        finally:
            sh("rm", "-rf", copy)
            os.unlink(frame.name)
        return {"rounds": rounds, "repeats": repeats, "empty_ns": empty, "sockaff_ns": ours}

    # -- 3. throughput -----------------------------------------------------

    def throughput(self):
        pairs = 1 if self.quick else 5
        seconds = 1 if self.quick else 3
        self.progress("3. throughput")
        bulk = {"pairs": pairs, "seconds": seconds, "without_gbps": [], "with_gbps": [], "sockaff_share": [],
                "empty_share": []}
        for index in range(pairs):
            order = [False, True] if index % 2 == 0 else [True, False]
            result = {}
            for traced in order:
                if traced:
                    self.attach_sockaff()
                try:
                    if traced:
                        result[traced], share = self.program_cpu_share(lambda: self.tcp_bulk(seconds))
                        bulk["sockaff_share"].append(share)
                    else:
                        result[traced] = self.tcp_bulk(seconds)
                finally:
                    if traced:
                        self.detach_sockaff()
            bulk["without_gbps"].append(result[False])
            bulk["with_gbps"].append(result[True])
        for _ in range(pairs):
            self.attach_empty()
            try:
                bulk["empty_share"].append(
                    self.program_cpu_share(lambda: self.tcp_bulk(seconds), [self.empty_id])[1])
            finally:
                self.detach_empty()

        triples = 1 if self.quick else 10
        # Besides the rate, the host's busy CPU time per datagram received (/proc/stat,
        # all CPUs, sender and receiver both here): what a CPU-bound receiver pays per
        # packet, which wall-clock rates show only through their ±10-20% swings.
        udp = {"triples": triples, "seconds": seconds, "kpps": {"none": [], "empty": [], "sockaff": []},
               "cpu_ns": {"none": [], "empty": [], "sockaff": []}, "sockaff_share": [], "empty_share": []}
        for index in range(triples):
            kinds = ["none", "empty", "sockaff"]
            kinds = kinds[index % 3:] + kinds[:index % 3]
            for kind in kinds:
                if kind == "empty":
                    self.attach_empty()
                if kind == "sockaff":
                    self.attach_sockaff()
                try:
                    busy_before = busy_ns()
                    if kind == "sockaff":
                        (rate, received), share = self.program_cpu_share(lambda: self.udp_small_counted(seconds))
                        udp["sockaff_share"].append(share)
                    elif kind == "empty":
                        (rate, received), share = self.program_cpu_share(
                            lambda: self.udp_small_counted(seconds), [self.empty_id])
                        udp["empty_share"].append(share)
                    else:
                        rate, received = self.udp_small_counted(seconds)
                    udp["cpu_ns"][kind].append((busy_ns() - busy_before) / max(received, 1))
                    udp["kpps"][kind].append(rate / 1000)
                finally:
                    self.detach_empty()
                    if kind == "sockaff":
                        self.detach_sockaff()
        return {"tcp_bulk": bulk, "udp_small": udp}

    def program_cpu_share(self, traffic, watched=None):
        """traffic()'s result, and the time sockaff's programs (or those of
        `watched`) ran during it as a share of all CPU time the host spent
        busy meanwhile (/proc/stat): what they can take from a CPU-bound
        transfer at most, exact where wall-clock rates are too noisy to show 1%."""
        if watched is None:
            watched = prog_ids("sockaff_ingress") + prog_ids("sockaff_consume") + prog_ids("sockaff_sampled")
        before, busy_before = sum(prog_stats(p)[0] for p in watched), busy_ns()
        result = traffic()
        after, busy_after = sum(prog_stats(p)[0] for p in watched), busy_ns()
        return result, (after - before) / max(busy_after - busy_before, 1)

    # -- 4. the bpftrace peer ------------------------------------------------

    PEER_SCRIPT = "tracepoint:sock:sk_data_ready { @cpu[args->skaddr] = cpu; @n[args->skaddr] = count(); }"

    def bpftrace_peer(self):
        self.progress("4. the bpftrace peer")
        if not os.path.exists("/usr/bin/bpftrace"):
            return {"skipped": "bpftrace is not installed (`make bench-deps`)"}
        if not os.path.exists("/sys/kernel/tracing/events"):
            sh("mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing", check=False)
        rounds = 1 if self.quick else 4
        seconds = 1 if self.quick else 3
        result = {"script": self.PEER_SCRIPT, "rounds": rounds, "seconds": seconds, "peer_ns": [],
                  "sockaff_ns": [], "peer_kpps": [], "sockaff_kpps": []}
        for _ in range(rounds):
            before_ids = {p["id"] for p in json.loads(sh("bpftool", "-j", "prog", "show") or "[]")}
            tracer = subprocess.Popen(["bpftrace", "-e", self.PEER_SCRIPT], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                peer_id = None
                for _ in range(100):
                    progs = json.loads(sh("bpftool", "-j", "prog", "show") or "[]")
                    fresh = [p["id"] for p in progs if p["id"] not in before_ids and p.get("type") == "tracepoint"]
                    if fresh:
                        peer_id = fresh[0]
                        break
                    time.sleep(0.1)
                if peer_id is None:
                    raise RuntimeError("bpftrace did not load its program")
                before = prog_stats(peer_id)
                result["peer_kpps"].append(self.udp_small(seconds) / 1000)
                after = prog_stats(peer_id)
                result["peer_ns"].append((after[0] - before[0]) / max(after[1] - before[1], 1))
            finally:
                tracer.terminate()
                tracer.wait()
            self.attach_sockaff()
            try:
                ingress = prog_ids("sockaff_ingress")[0]
                before = prog_stats(ingress)
                result["sockaff_kpps"].append(self.udp_small(seconds) / 1000)
                after = prog_stats(ingress)
                result["sockaff_ns"].append((after[0] - before[0]) / max(after[1] - before[1], 1))
            finally:
                self.detach_sockaff()
        return result

    # -- 5 and 6. queries and memory ---------------------------------------

    # A process here may hold at most ~20,000 fds (the hard RLIMIT_NOFILE
    # cannot be raised in this sandbox, even as root): spread the sockets.
    PER_HOLDER = 15_000

    def open_sockets(self, count):
        """Processes holding `count` UDP sockets in all; `send_all` makes each
        socket receive (and read) one datagram."""
        code = r"""
import resource, socket, sys
count = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sockets = []
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((f"127.0.{1 + i % 8}.1", 0))
    sockets.append(s)
print(sockets[0].fileno(), flush=True)
for line in sys.stdin:
    if line.strip() == "send":
        for s in sockets:
            sender.sendto(b"x", s.getsockname())
        for s in sockets:
            s.recv(16)
        print("sent", flush=True)
"""
        holders = []
        left = count
        while left > 0:
            share = min(left, self.PER_HOLDER)
            holder = subprocess.Popen([sys.executable, "-c", code, str(share)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            line = holder.stdout.readline()
            if not line:
                raise RuntimeError(f"a socket holder failed to open {share} sockets")
            holder.first_fd = int(line)
            holders.append(holder)
            left -= share
        return Holders(holders)

    @staticmethod
    def send_all(holders):
        for holder in holders.processes:
            holder.stdin.write("send\n")
            holder.stdin.flush()
        for holder in holders.processes:
            assert holder.stdout.readline().strip() == "sent"

    def timed_child(self, *args):
        start = time.perf_counter()
        child = subprocess.Popen(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        if status != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {child.stderr.read().decode()}")
        return elapsed, usage.ru_maxrss  # KiB

    @staticmethod
    @contextlib.contextmanager
    def bpf_stats(enabled):
        """kernel.bpf_stats_enabled set for a while (this benchmark turns it
        on for the per-packet sections): it adds two clock reads to every run
        of every BPF program, an iterator's per-object runs too, so a scrape
        is measured with the host's default (0) and, apart, with it on."""
        path = "/proc/sys/kernel/bpf_stats_enabled"
        before = open(path).read().strip()
        with open(path, "w") as f:
            f.write("1" if enabled else "0")
        try:
            yield
        finally:
            with open(path, "w") as f:
                f.write(before)

    def feature(self, name):
        """A kernel feature as sockaff probes it (`status --json`): its
        state (yes, no, refused, not_permitted) and detail."""
        features = json.loads(sh(self.sockaff, "status", "--json"))["features"]
        return next(f for f in features if f["name"] == name)

    def web_config(self):
        """A scratch web config serving TLS (a self-signed certificate for
        127.0.0.1, made by openssl) with one basic-auth user: (path, CA
        file, Authorization header). Removed by the caller's directory."""
        directory = tempfile.mkdtemp(prefix="sockaff-bench-web-")
        path = lambda name: os.path.join(directory, name)
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
           "-keyout", path("server.key"), "-out", path("server.crt"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        password = "bench-" + os.urandom(8).hex()
        # Cost 10, as `htpasswd -nBC 10` writes: the verdict is cached, so
        # only the first scrape pays it.
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
        with open(path("web.yml"), "w") as file:
            file.write(f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                       f"basic_auth_users:\n  bench: '{hashed}'\n")
        header = "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()
        return directory, path("web.yml"), path("server.crt"), header

    def scrape_cost(self, source, scrapes, sockaff=None, arguments=(), tls=False, environment=None):
        """CPU time (every thread's time on a CPU, in ns, from
        /proc/PID/task/*/schedstat) and wall time of each scrape of one
        `sockaff serve --sockets-from SOURCE ARGUMENTS`, after a first
        scrape that loads what it keeps (iterator programs, probes).
        `sockaff`: another build's binary (--baseline-sockaff) instead of
        the one measured; `tls`: over TLS with basic auth (a web config),
        a new connection per scrape as Prometheus's are not; `environment`:
        variables added to serve's (SOCKAFF_CENSUS)."""
        scratch = None
        context, headers = None, {}
        if tls:
            scratch, config, ca, header = self.web_config()
            arguments = (*arguments, "--web.config.file", config)
            context, headers = ssl.create_default_context(cafile=ca), {"Authorization": header}
        serve = subprocess.Popen([sockaff or self.sockaff, "serve", "--listen", "127.0.0.1:0", "--sockets-from", source,
                                  *arguments], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, **(environment or {})})
        try:
            url = serve.stdout.readline().split()[-1]
            fetch = lambda: urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60,
                                                   context=context).read()
            fetch()

            def cpu_s():
                total = 0
                for task in os.listdir(f"/proc/{serve.pid}/task"):
                    try:
                        total += int(open(f"/proc/{serve.pid}/task/{task}/schedstat").read().split()[0])
                    except (FileNotFoundError, ProcessLookupError):
                        pass  # a thread that ended meanwhile
                return total / 1e9

            cpu, wall, size = [], [], 0
            for _ in range(scrapes):
                before, start = cpu_s(), time.perf_counter()
                size = len(fetch())
                wall.append((time.perf_counter() - start) * 1000)
                cpu.append((cpu_s() - before) * 1000)
            return {"cpu_ms": cpu, "wall_ms": wall, "bytes": size}
        finally:
            serve.terminate()
            serve.wait()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    def scrape_beside_baseline(self, scrapes, holder, source="iterator"):
        """The scrape (`source`: the iterator, or procfs where this kernel
        runs no iterator), this build and the baseline build alternating (3
        rounds each), so that the two are compared in one run on the same
        sockets: the ratio is the result, not either number. Each build
        scrapes its own tracer's records (a build with another record layout
        refuses the other's pins): traced again and `holder`'s sockets sent
        to before each measurement; this build's tracer is left attached."""
        rows = {f"{source}_this": {"cpu_ms": [], "wall_ms": []}, f"{source}_baseline": {"cpu_ms": [], "wall_ms": []}}
        with self.bpf_stats(False):
            for round_index in range(3):
                order = ("this", "baseline") if round_index % 2 == 0 else ("baseline", "this")
                for build in order:
                    binary = os.path.abspath(self.args.baseline_sockaff) if build == "baseline" else None
                    sh(self.sockaff, "detach", check=False)
                    sh(binary or self.sockaff, "trace")
                    self.send_all(holder)
                    try:
                        measured = self.scrape_cost(source, scrapes, sockaff=binary)
                    finally:
                        sh(binary or self.sockaff, "detach", check=False)
                        sh(self.sockaff, "trace")
                    for key in ("cpu_ms", "wall_ms"):
                        rows[f"{source}_{build}"][key] += measured[key]
        return rows

    def queries(self):
        self.progress("5. queries")
        result = {"lists": []}
        self.attach_sockaff()
        try:
            holder = self.open_sockets(1)
            fd = holder.first_fd
            self.send_all(holder)
            lib = json.loads(sh(self.args.bench, "query", str(holder.pid), str(fd), "100" if self.quick else "2000"))
            result["library_us"] = {"median": lib["median_us"], "p99": lib["p99_us"]}
            result["process_ms"] = [
                self.timed_child(self.sockaff, "query", "--pid", str(holder.pid), "--fd", str(fd))[0] * 1000
                for _ in range(5 if self.quick else 50)]
            result["true_ms"] = [self.timed_child("/bin/true")[0] * 1000 for _ in range(5 if self.quick else 50)]
            holder.kill()
            holder.wait()
            for count in ((1000,) if self.quick else (10_000, 100_000)):
                holder = self.open_sockets(count)
                try:
                    self.send_all(holder)
                    repeats = 1 if self.quick else 3
                    runs = [self.timed_child(self.sockaff, "list", "--json") for _ in range(repeats)]
                    table = [self.timed_child(self.sockaff, "list")[0] for _ in range(repeats)]
                    listed = [s for s in json.loads(sh(self.sockaff, "list", "--json")) if s["pid"] in holder.pids]
                    encoding = json.loads(sh(self.args.bench, "json", str(holder.processes[0].pid), "5"))["median_us"]
                    with self.bpf_stats(False):
                        scrapes = {"procfs": self.scrape_cost("procfs", 1 if self.quick else 5)}
                        # Beside it, on the same sockets: the census (no
                        # packet-path program read: the kernel's fields of
                        # every socket) and the same scrape over TLS with
                        # basic auth.
                        # The census's two readers, alternating: one pass
                        # (iter/tcp, iter/udp, where this kernel runs
                        # them) and socket by socket (pidfd_getfd).
                        census = {"census": {"cpu_ms": [], "wall_ms": []},
                                  "census_per_socket": {"cpu_ms": [], "wall_ms": []}}
                        for round_index in range(1 if self.quick else 3):
                            order = ("census", "census_per_socket")
                            for row in order if round_index % 2 == 0 else reversed(order):
                                measured = self.scrape_cost(
                                    "procfs", 1 if self.quick else 3, arguments=("--source", "kernel"),
                                    environment={"SOCKAFF_CENSUS": "per-socket"} if row != "census" else None)
                                for key in ("cpu_ms", "wall_ms"):
                                    census[row][key] += measured[key]
                        scrapes.update(census)
                        scrapes["census_reader"] = {name: self.feature(name)["state"]
                                                    for name in ("iter/tcp", "iter/udp")}
                        if shutil.which("openssl"):
                            scrapes["procfs_tls"] = self.scrape_cost("procfs", 1 if self.quick else 5, tls=True)
                    # The iterator's rows only where this kernel runs it:
                    # elsewhere the rows say what was skipped, and why.
                    iterator = self.feature("iter/task_file")
                    if iterator["state"] != "yes":
                        scrapes["iterator"] = {"skipped": f"iter/task_file: {iterator['state']} "
                                                          f"({iterator.get('detail') or 'no detail'})"}
                        if self.args.baseline_sockaff:
                            scrapes.update(self.scrape_beside_baseline(1 if self.quick else 5, holder, "procfs"))
                    else:
                        with self.bpf_stats(False):
                            scrapes["iterator"] = self.scrape_cost("iterator", 1 if self.quick else 5)
                        with self.bpf_stats(True):
                            scrapes["iterator_bpf_stats"] = self.scrape_cost("iterator", 1 if self.quick else 5)
                        if self.args.baseline_sockaff:
                            scrapes.update(self.scrape_beside_baseline(1 if self.quick else 5, holder))
                finally:
                    holder.kill()
                    holder.wait()
                result["lists"].append({
                    "sockets": count, "processes": len(holder.pids), "listed": len(listed),
                    "json_s": [run[0] for run in runs], "table_s": table,
                    "peak_rss_kib": max(run[1] for run in runs), "encoding_us_per_record": encoding,
                    "scrape": scrapes})
        finally:
            self.detach_sockaff()
        return result

    def memory(self):
        count = 2000 if self.quick else 100_000
        self.progress("6. kernel memory per tracked socket")

        tracers = (("sockaff", lambda: self.attach_sockaff(), self.detach_sockaff),
                   ("sockaff_no_locality", lambda: self.attach_sockaff("--no-locality"), self.detach_sockaff),
                   ("storage_floor", lambda: self.attach_object("storage_floor"),
                    lambda: self.detach_object("storage_floor")))
        rows = []
        for name, attach, detach in tracers:
            rows.append({"tracer": name, "growth_kib": self.memory_growth(count, attach, detach)})
        return {"sockets": count, "rows": rows}

    @staticmethod
    def kernel_kib():
        """Unreclaimable slab plus vmalloc: socket storage lives in the
        first; a hash map's bucket array in the second."""
        fields = {line.split(":")[0]: int(line.split()[1]) for line in open("/proc/meminfo")}
        return fields["SUnreclaim"] + fields["VmallocUsed"]

    def memory_growth(self, count, attach, detach):
        """KiB the kernel grew by when `count` fresh UDP sockets, each sent a
        datagram before (skbs come and go), were each sent one again with
        attach()'s tracer."""
        holder = self.open_sockets(count)
        try:
            self.send_all(holder)  # warm-up without the tracer: skbs come and go
            time.sleep(1)
            before = self.kernel_kib()
            attach()
            try:
                self.send_all(holder)  # one record per socket (and read counters)
                time.sleep(1)
                after = self.kernel_kib()
            finally:
                detach()
        finally:
            holder.kill()
            holder.wait()
        return after - before

    def attach_object(self, name):
        """Loads .build/bench/NAME.bpf.o (one cgroup_skb program) and attaches it to the root cgroup."""
        sh("bpftool", "prog", "load", f"{self.objects}/{name}.bpf.o", f"{PIN_DIR}/{name}", "type", "cgroup/skb")
        sh("bpftool", "cgroup", "attach", self.cgroup, "ingress", "pinned", f"{PIN_DIR}/{name}", "multi")
        return json.loads(sh("bpftool", "-j", "prog", "show", "pinned", f"{PIN_DIR}/{name}"))["id"]

    def detach_object(self, name):
        sh("bpftool", "cgroup", "detach", self.cgroup, "ingress", "pinned", f"{PIN_DIR}/{name}", check=False)
        sh("rm", "-f", f"{PIN_DIR}/{name}", check=False)

    def beside_empty(self, round_index, attach, detach, programs, traffic):
        """One round of section 1's method: `attach` and the empty program
        both attached (the empty one first in even rounds), traffic(), and ns
        per run of each program. `programs()` names ours, once attached, as a
        tuple of ids (None: not loaded); returns ({id: ns per run}, that tuple)."""
        if round_index % 2 == 0:
            self.attach_empty()
            attach()
        else:
            attach()
            self.attach_empty()
        try:
            ours = programs()
            watched = [self.empty_id] + [p for p in ours if p is not None]
            before = {p: prog_stats(p) for p in watched}
            traffic()
            after = {p: prog_stats(p) for p in watched}
        finally:
            detach()
            self.detach_empty()
        return {p: (after[p][0] - before[p][0]) / max(after[p][1] - before[p][1], 1) for p in watched}, ours

    # -- 8. this build beside a baseline build -------------------------------

    def baseline(self):
        """No regression, side by side in one run (--baseline-sockaff: another
        build's sockaff, e.g. an older commit's `make build`): the single-flow
        UDP row, each build beside the empty program in the same round and
        the builds alternating, so the result is the ratio of the two
        ratios; then the kernel memory per tracked socket, each build on
        fresh sockets, alternating."""
        if not self.args.baseline_sockaff:
            return {"skipped": "no --baseline-sockaff given"}
        self.progress("8. this build beside the baseline build")
        binary = {"this": self.sockaff, "baseline": os.path.abspath(self.args.baseline_sockaff)}
        rounds = self.args.rounds or (2 if self.quick else 6)
        seconds = 1 if self.quick else 3
        udp = {"this_ns": [], "baseline_ns": [], "this_empty_ns": [], "baseline_empty_ns": []}
        for round_index in range(rounds):
            order = ("this", "baseline") if round_index % 2 == 0 else ("baseline", "this")
            for build in order:
                per, (ingress,) = self.beside_empty(
                    round_index, lambda: sh(binary[build], "trace"), lambda: sh(binary[build], "detach"),
                    lambda: (prog_ids("sockaff_ingress")[0],), lambda: self.udp_small(seconds))
                udp[f"{build}_ns"].append(per[ingress])
                udp[f"{build}_empty_ns"].append(per[self.empty_id])
        fan_in = self.fan_in_beside_baseline(binary, rounds)
        count = 2000 if self.quick else 100_000
        memory = {"sockets": count, "this_kib": [], "baseline_kib": []}
        for round_index in range(1 if self.quick else 2):
            order = ("this", "baseline") if round_index % 2 == 0 else ("baseline", "this")
            for build in order:
                memory[f"{build}_kib"].append(self.memory_growth(
                    count, lambda: sh(binary[build], "trace"), lambda: sh(binary[build], "detach")))
        return {"baseline": self.args.baseline_sockaff, "rounds": rounds, "seconds": seconds, "udp": udp,
                "fan_in": fan_in, "memory": memory}

    def fan_in_beside_baseline(self, binary, rounds):
        """Section 7's first row for both builds: a sender pinned on every
        CPU into one UDP socket, each build beside the empty program in the
        same round, the builds alternating. On loopback every sender's CPU
        receives, so all but one take the non-owner path, and whatever
        bounces between them grows with the CPUs."""
        cpus = sorted(os.sched_getaffinity(0))
        count = self.args.count or (20_000 if self.quick else 400_000)
        sink = self.fan_in_sink(tcp=False)
        result = {"cpus": len(cpus), "datagrams_per_cpu": count, "this_ns": [], "baseline_ns": [],
                  "this_empty_ns": [], "baseline_empty_ns": []}
        try:
            for round_index in range(rounds):
                order = ("this", "baseline") if round_index % 2 == 0 else ("baseline", "this")
                for build in order:
                    per, (ingress,) = self.beside_empty(
                        round_index, lambda: sh(binary[build], "trace"), lambda: sh(binary[build], "detach"),
                        lambda: (prog_ids("sockaff_ingress")[0],), lambda: self.send_fan_in([sink], count, cpus))
                    result[f"{build}_ns"].append(per[ingress])
                    result[f"{build}_empty_ns"].append(per[self.empty_id])
        finally:
            sink.close()
        return result

    # -- 7. fan-in --------------------------------------------------------

    @staticmethod
    def udp_delivered():
        """Datagrams that reached a UDP socket's receive path (read, or
        dropped there), from the UDP MIB of this network namespace."""
        lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
        fields = dict(zip(lines[0][1:], map(int, lines[1][1:])))
        return fields["InDatagrams"] + fields["RcvbufErrors"] + fields["MemErrors"]

    @staticmethod
    def tcp_handshakes():
        lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Tcp:")]
        return dict(zip(lines[0][1:], map(int, lines[1][1:])))["PassiveOpens"]

    def send_fan_in(self, sinks, count, cpus):
        """One pinned sender per CPU into `sinks` (datagrams, or connections
        to a listening TCP sink), queued datagrams read back (they count in
        InDatagrams once read); returns packets or connections per second."""
        tcp = sinks[0].type == socket.SOCK_STREAM
        ports = ",".join(str(s.getsockname()[1]) for s in sinks)
        out = json.loads(sh(self.args.bench, "tcp-connect" if tcp else "udp-send", str(count), ports,
                            ",".join(map(str, cpus))))
        for s in [] if tcp else sinks:
            try:
                while True:
                    s.recv(2048)
            except BlockingIOError:
                pass
        return out["packets"] / out["seconds"]

    def delivered(self, tcp):
        """The kernel's count of what reached the sinks' receive path: the UDP
        MIB, or a SYN and an ACK per handshake for a listener."""
        return 2 * self.tcp_handshakes() if tcp else self.udp_delivered()

    @staticmethod
    def fan_in_sink(tcp):
        """A socket on loopback for fan-in traffic: a listener, or a
        non-blocking UDP socket whose buffer holds a round's datagrams."""
        sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        if not tcp:
            sink.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
        sink.bind(("127.0.0.1", 0))
        if tcp:
            sink.listen(4096)
        else:
            sink.setblocking(False)
        return sink

    @staticmethod
    def accept_and_close(listener):
        while True:
            try:
                listener.accept()[0].close()
            except OSError:
                return

    def traced_packets(self, sink):
        answer = json.loads(sh(self.sockaff, "query", "--pid", str(os.getpid()), "--fd", str(sink.fileno()),
                               "--json", check=False) or "{}")
        return answer.get("packets") or 0

    def fan_in(self):
        cpus = sorted(os.sched_getaffinity(0))
        rounds = self.args.rounds or (2 if self.quick else 6)
        count = self.args.count or (20_000 if self.quick else 400_000)
        connections = count // 20
        self.progress("7. fan-in")
        result = {"cpus": len(cpus), "rounds": rounds, "datagrams_per_cpu": count,
                  "connections_per_cpu": connections, "rows": []}
        for shape, sockets, tcp in (("one_udp_socket", 1, False), ("udp_socket_per_sender", len(cpus), False),
                                    ("one_tcp_listener", 1, True)):
            if self.args.shapes and shape not in self.args.shapes.split(","):
                continue
            sinks, acceptor = [], None
            for _ in range(sockets):
                sink = self.fan_in_sink(tcp)
                if tcp:
                    acceptor = threading.Thread(target=self.accept_and_close, args=(sink,), daemon=True)
                    acceptor.start()
                sinks.append(sink)
            row = {"shape": shape, "empty_ns": [], "sockaff_ns": [], "empty_first": [], "counted": 0, "delivered": 0,
                   "kps": {"empty": [], "sockaff": []}}
            try:
                per_cpu = connections if tcp else count

                def measured(sinks=sinks, tcp=tcp, per_cpu=per_cpu, row=row):
                    """Fan-in traffic, adding the sinks' traced packets and the
                    kernel's delivered count to the row."""
                    traced, delivered = sum(map(self.traced_packets, sinks)), self.delivered(tcp)
                    self.send_fan_in(sinks, per_cpu, cpus)
                    row["counted"] += sum(map(self.traced_packets, sinks)) - traced
                    row["delivered"] += self.delivered(tcp) - delivered
                def measured_floor(sinks=sinks, per_cpu=per_cpu):
                    self.send_fan_in(sinks, per_cpu, cpus)
                for index in range(rounds):
                    per, (ingress,) = self.beside_empty(
                        index, self.attach_sockaff, self.detach_sockaff,
                        lambda: (prog_ids("sockaff_ingress")[0],), measured)
                    row["empty_ns"].append(per[self.empty_id])
                    row["sockaff_ns"].append(per[ingress])
                    row["empty_first"].append(index % 2 == 0)
                # The floor of any per-socket tracer, the same way: a socket
                # storage lookup per packet, nothing written.
                for index in range(0 if tcp else rounds):
                    self.floor_round(row, index, measured_floor)
                for index in range(rounds):
                    for kind in (["empty", "sockaff"] if index % 2 == 0 else ["sockaff", "empty"]):
                        attach, detach = ((self.attach_empty, self.detach_empty) if kind == "empty"
                                          else (self.attach_sockaff, self.detach_sockaff))
                        attach()
                        try:
                            row["kps"][kind].append(self.send_fan_in(sinks, per_cpu, cpus) / 1000)
                        finally:
                            detach()
            finally:
                for sink in sinks:
                    if tcp:
                        sink.shutdown(socket.SHUT_RDWR)  # ends the acceptor's accept()
                    sink.close()
                if acceptor:
                    acceptor.join(5)
            result["rows"].append(row)
        self.attach_sockaff()
        try:
            status = json.loads(sh(self.sockaff, "status", "--json"))
        finally:
            self.detach_sockaff()
        result["pool_slots"], result["pool_bytes"] = status["pool_slots"], status["pool_bytes"]
        return result

    SECTIONS = ("per_packet", "test_run", "throughput", "peer", "queries", "memory", "fan_in", "baseline")

    def run(self, sections, save):
        """Measures `sections`, with the machine they ran on, and calls
        save(results) after each section, so that a run stopped part-way (a
        lent machine's time limit) keeps the sections it finished."""
        uname = platform.uname()
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        results = {"machine": {"kernel": uname.release, "cpu": cpu, "cpus": os.cpu_count(),
                               "numa_nodes": numa_nodes()},
                   "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": self.quick,
                   "sections": {}}
        for name in sections:
            results["sections"][name] = getattr(self, name)()
            save(results)

    def peer(self):
        """The peer is a third-party tool: its failure is reported, not fatal."""
        try:
            return self.bpftrace_peer()
        except (RuntimeError, OSError) as error:
            return {"failed": str(error)}


def numa_nodes():
    try:
        return len([n for n in os.listdir("/sys/devices/system/node") if n.startswith("node")])
    except OSError:
        return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockaff", required=True)
    parser.add_argument("--bench", required=True, help="the sockaff-bench executable")
    parser.add_argument("--objects", required=True, help="directory with sockaff.bpf.o and empty.bpf.o")
    parser.add_argument("--quick", action="store_true", help="every measurement once, briefly")
    parser.add_argument("--sections", default=",".join(Bench.SECTIONS),
                        help=f"comma-separated, from: {', '.join(Bench.SECTIONS)} (default: all)")
    parser.add_argument("--rounds", type=int, help="rounds per row in per_packet and fan_in (default 6; quick 2)")
    parser.add_argument("--count", type=int, help="fan_in's datagrams per CPU per round (default 400,000)")
    parser.add_argument("--shapes", help="fan_in's rows, comma-separated, from: one_udp_socket, "
                        "udp_socket_per_sender, one_tcp_listener (default: all)")
    parser.add_argument("--baseline-sockaff", help="another build's sockaff: queries then also measure its scrape "
                        "beside this build's, alternating, and section baseline runs (UDP one flow, fan-in, memory)")
    parser.add_argument("--out", required=True, help="the JSON file to write (bench/render.py makes Markdown of it)")
    args = parser.parse_args()
    sections = args.sections.split(",")
    unknown = [s for s in sections if s not in Bench.SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}")
    def save(results):
        # Written whole, then renamed: a failed run never leaves half a file.
        partial = args.out + ".partial"
        with open(partial, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        os.replace(partial, args.out)

    with Bench(args) as bench:
        bench.run(sections, save)


if __name__ == "__main__":
    main()
