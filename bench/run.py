#!/usr/bin/env python3
"""sockaff's benchmark: every figure is a ratio taken side by side in one run,
because the machine is shared and noisy. Run as root through `make bench`
(writes BENCHMARKS.md) or `make bench-smoke` (seconds, prints only).

  1. per-packet cost in real traffic (bpf_stats): sockaff vs an empty program,
     both attached at once so they see the same packets, attach order alternating
  2. per-invocation cost through BPF_PROG_TEST_RUN, on separately loaded copies
  3. throughput: TCP bulk with/without the tracer; UDP 64 B packets per second
     with no program / the empty program / sockaff, alternating
  4. the peer an operator would write instead: a bpftrace script on
     tracepoint:sock:sk_data_ready
  5. queries: library latency, whole-process latency, `list` of 10k/100k sockets
  6. kernel memory per tracked socket
  7. fan-in: every CPU into one socket vs one socket per sender (ns/packet,
     counted/delivered against the UDP MIB, packets per second), and the
     per-CPU pool's memory
"""
import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PIN_DIR = "/sys/fs/bpf/sockaff_bench"
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


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


def summary(values):
    if not values:
        return "n/a"
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


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
        self.lines = []
        self.iperf = None

    # -- setup and teardown ------------------------------------------------

    def say(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def __enter__(self):
        if os.geteuid() != 0:
            sys.exit("bench: needs root")
        sh(self.sockaff, "detach")
        sh(self.sockaff, "trace")  # mounts bpffs if needed
        sh(self.sockaff, "detach")
        os.makedirs(PIN_DIR, exist_ok=True)
        self.stats_before = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
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
        sh(self.sockaff, "detach", check=False)
        sh("rm", "-rf", PIN_DIR, check=False)
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self.stats_before)

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
        end = self.iperf_client("-u", "-l", "64", "-b", "0", seconds=seconds)
        total = end["sum"]
        return (total["packets"] - total["lost_packets"]) / total["seconds"]

    def tcp_small(self, seconds):
        self.iperf_client("-N", "-l", "64", "-b", "50M", seconds=seconds)

    def tcp_bulk(self, seconds):
        return self.iperf_client(seconds=seconds)["sum_received"]["bits_per_second"] / 1e9

    # -- 1. per-packet cost in real traffic ---------------------------------

    def per_packet(self):
        rounds = 2 if self.quick else 6
        seconds = 1 if self.quick else 3
        self.say("## 1. Per-packet cost in real traffic (bpf_stats)")
        self.say()
        self.say(f"Both programs attached at once (same packets), attach order alternating, {rounds} rounds "
                 f"of {seconds} s. ns per run = run_time_ns / run_cnt delta of each program.")
        self.say()
        self.say("| traffic | empty ns/pkt min/med/max | sockaff ns/pkt min/med/max | ratio median (min-max) "
                 "| ratio median, empty attached first / sockaff first | reads: sockaff_consume ns/read |")
        self.say("| --- | --- | --- | --- | --- | --- |")
        for name, traffic in (("UDP 64 B", lambda: self.udp_small(seconds)),
                              ("TCP 64 B, NODELAY, 50 Mbit/s", lambda: self.tcp_small(seconds))):
            empty, ours, ratios, reads = [], [], [], []
            by_order = {True: [], False: []}  # empty attached first?
            for round_index in range(rounds):
                per, (ingress, consume) = self.beside_empty(
                    round_index, self.attach_sockaff, self.detach_sockaff,
                    lambda: (prog_ids("sockaff_ingress")[0], (prog_ids("sockaff_consume") or [None])[0]), traffic)
                empty.append(per[self.empty_id])
                ours.append(per[ingress])
                ratios.append(per[ingress] / per[self.empty_id])
                by_order[round_index % 2 == 0].append(ratios[-1])
                if consume:
                    reads.append(per[consume])
            orders = " / ".join(f"{statistics.median(by_order[first]):.2f}x" if by_order[first] else "n/a"
                                for first in (True, False))
            self.say(f"| {name} | {summary(empty)} | {summary(ours)} | **{statistics.median(ratios):.2f}x** "
                     f"({min(ratios):.2f}-{max(ratios):.2f}) | {orders} | {summary(reads)} |")
        self.say()

    # -- 2. BPF_PROG_TEST_RUN ----------------------------------------------

    def test_run(self):
        repeats = 100_000 if self.quick else 2_000_000
        rounds = 1 if self.quick else 5
        self.say("## 2. Per-invocation cost (BPF_PROG_TEST_RUN)")
        self.say()
        copy = f"{PIN_DIR}/copy"
        # Program types come from the SEC names (the object also holds a tp_btf program).
        sh("bpftool", "prog", "loadall", f"{self.objects}/sockaff.bpf.o", copy)
        frame = tempfile.NamedTemporaryFile(delete=False)
        frame.write(bytes(12) + b"\x08\x00" + b"\x45" + bytes(49))  # Ethernet + IPv4 header
        frame.close()

        def run(path):
            out = sh("bpftool", "prog", "run", "pinned", path, "data_in", frame.name, "repeat", str(repeats))
            # "Return value: 1, duration (average): 33ns"
            return float(out.split("duration (average):")[1].strip().rstrip("ns"))

        empty, ours = [], []
        try:
            for _ in range(rounds):
                empty.append(run(f"{PIN_DIR}/empty"))
                ours.append(run(f"{copy}/sockaff_ingress"))
        finally:
            sh("rm", "-rf", copy)
            os.unlink(frame.name)
        ratio = statistics.median(ours) / statistics.median(empty)
        self.say(f"{rounds} alternating rounds of {repeats:,} runs, a separately loaded copy (never the pinned "
                 "maps). The test skb's socket is the same across repeats, so this is the update path.")
        self.say()
        self.say("| program | ns/run min/med/max |")
        self.say("| --- | --- |")
        self.say(f"| empty | {summary(empty)} |")
        self.say(f"| sockaff_ingress | {summary(ours)} |")
        self.say(f"| ratio | **{ratio:.2f}x** |")
        self.say()

    # -- 3. throughput -----------------------------------------------------

    def throughput(self):
        pairs = 1 if self.quick else 5
        seconds = 1 if self.quick else 3
        self.say("## 3. Throughput impact")
        self.say()
        ratios, without, with_, bulk_share = [], [], [], []
        for index in range(pairs):
            order = [False, True] if index % 2 == 0 else [True, False]
            result = {}
            for traced in order:
                if traced:
                    self.attach_sockaff()
                try:
                    if traced:
                        result[traced], share = self.program_cpu_share(lambda: self.tcp_bulk(seconds))
                        bulk_share.append(share)
                    else:
                        result[traced] = self.tcp_bulk(seconds)
                finally:
                    if traced:
                        self.detach_sockaff()
            without.append(result[False])
            with_.append(result[True])
            ratios.append(result[True] / result[False])
        self.say(f"TCP bulk over loopback (iperf3, {seconds} s), {pairs} alternating pairs:")
        self.say()
        self.say("| | Gbit/s min/med/max |")
        self.say("| --- | --- |")
        self.say(f"| no tracer | {summary(without)} |")
        self.say(f"| sockaff | {summary(with_)} |")
        self.say(f"| ratio (median of pairs) | **{statistics.median(ratios):.3f}** "
                 f"({min(ratios):.3f}-{max(ratios):.3f}) |")
        empty_share = []
        for _ in range(pairs):
            self.attach_empty()
            try:
                empty_share.append(self.program_cpu_share(lambda: self.tcp_bulk(seconds), [self.empty_id])[1])
            finally:
                self.detach_empty()
        self.say(f"| sockaff's programs' share of the busy CPU time while traced (bpf_stats run time / "
                 f"/proc/stat busy time) | {summary([100 * s for s in bulk_share])} % |")
        self.say(f"| the empty program's share, measured the same way ({pairs} runs alone) | "
                 f"{summary([100 * s for s in empty_share])} % |")
        self.say()

        triples = 1 if self.quick else 10
        pps = {"none": [], "empty": [], "sockaff": []}
        udp_share = []
        for index in range(triples):
            kinds = ["none", "empty", "sockaff"]
            kinds = kinds[index % 3:] + kinds[:index % 3]
            for kind in kinds:
                if kind == "empty":
                    self.attach_empty()
                if kind == "sockaff":
                    self.attach_sockaff()
                try:
                    if kind == "sockaff":
                        rate, share = self.program_cpu_share(lambda: self.udp_small(seconds))
                        udp_share.append(share)
                    else:
                        rate = self.udp_small(seconds)
                    pps[kind].append(rate / 1000)
                finally:
                    self.detach_empty()
                    if kind == "sockaff":
                        self.detach_sockaff()
        vs_empty = [s / e for s, e in zip(pps["sockaff"], pps["empty"])]
        vs_none = [s / n for s, n in zip(pps["sockaff"], pps["none"])]
        empty_vs_none = [e / n for e, n in zip(pps["empty"], pps["none"])]
        self.say(f"UDP 64 B received packets per second (iperf3 unlimited, {seconds} s), {triples} triples, "
                 "order rotating:")
        self.say()
        self.say("| | kpps min/med/max |")
        self.say("| --- | --- |")
        for kind in ("none", "empty", "sockaff"):
            self.say(f"| {kind} | {summary(pps[kind])} |")
        self.say(f"| sockaff / empty | **{statistics.median(vs_empty):.3f}** ({min(vs_empty):.3f}-{max(vs_empty):.3f}) |")
        self.say(f"| sockaff / none | {statistics.median(vs_none):.3f} ({min(vs_none):.3f}-{max(vs_none):.3f}) |")
        self.say(f"| empty / none | {statistics.median(empty_vs_none):.3f} "
                 f"({min(empty_vs_none):.3f}-{max(empty_vs_none):.3f}) |")
        self.say(f"| sockaff's programs' share of the busy CPU time while traced | "
                 f"{summary([100 * s for s in udp_share])} % |")
        self.say()

    def program_cpu_share(self, traffic, watched=None):
        """traffic()'s result, and the time sockaff's programs (or those of
        `watched`) ran during it as a share of all CPU time the host spent
        busy meanwhile (/proc/stat): what they can take from a CPU-bound
        transfer at most, exact where wall-clock rates are too noisy to show 1%."""
        if watched is None:
            watched = prog_ids("sockaff_ingress") + prog_ids("sockaff_consume")
        before, busy_before = sum(prog_stats(p)[0] for p in watched), busy_ns()
        result = traffic()
        after, busy_after = sum(prog_stats(p)[0] for p in watched), busy_ns()
        return result, (after - before) / max(busy_after - busy_before, 1)

    # -- 4. the bpftrace peer ------------------------------------------------

    def bpftrace_peer(self):
        self.say("## 4. Peer: a bpftrace script")
        self.say()
        if not os.path.exists("/usr/bin/bpftrace"):
            self.say("bpftrace is not installed (`make bench-deps`): skipped.")
            self.say()
            return
        if not os.path.exists("/sys/kernel/tracing/events"):
            sh("mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing", check=False)
        script = "tracepoint:sock:sk_data_ready { @cpu[args->skaddr] = cpu; @n[args->skaddr] = count(); }"
        rounds = 1 if self.quick else 4
        seconds = 1 if self.quick else 3
        peer_ns, ours_ns, ratio = [], [], []
        pps_peer, pps_ours = [], []
        for _ in range(rounds):
            before_ids = {p["id"] for p in json.loads(sh("bpftool", "-j", "prog", "show") or "[]")}
            tracer = subprocess.Popen(["bpftrace", "-e", script], stdout=subprocess.DEVNULL,
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
                pps_peer.append(self.udp_small(seconds) / 1000)
                after = prog_stats(peer_id)
                peer_ns.append((after[0] - before[0]) / max(after[1] - before[1], 1))
            finally:
                tracer.terminate()
                tracer.wait()
            self.attach_sockaff()
            try:
                ingress = prog_ids("sockaff_ingress")[0]
                before = prog_stats(ingress)
                pps_ours.append(self.udp_small(seconds) / 1000)
                after = prog_stats(ingress)
                ours_ns.append((after[0] - before[0]) / max(after[1] - before[1], 1))
            finally:
                self.detach_sockaff()
            ratio.append(peer_ns[-1] / ours_ns[-1])
        self.say(f"`bpftrace -e '{script}'` (Debian's bpftrace), alternating with sockaff, {rounds} rounds "
                 f"of UDP 64 B for {seconds} s; ns per event from bpf_stats.")
        self.say()
        self.say("| | ns/pkt min/med/max | kpps min/med/max |")
        self.say("| --- | --- | --- |")
        self.say(f"| bpftrace script | {summary(peer_ns)} | {summary(pps_peer)} |")
        self.say(f"| sockaff | {summary(ours_ns)} | {summary(pps_ours)} |")
        self.say(f"| bpftrace / sockaff | **{statistics.median(ratio):.2f}x** the cost per packet | |")
        self.say()

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

    def queries(self):
        self.say("## 5. Queries")
        self.say()
        self.attach_sockaff()
        try:
            holder = self.open_sockets(1)
            fd = holder.first_fd
            self.send_all(holder)
            lib = json.loads(sh(self.args.bench, "query", str(holder.pid), str(fd), "100" if self.quick else "2000"))
            runs = [self.timed_child(self.sockaff, "query", "--pid", str(holder.pid), "--fd", str(fd))[0] * 1000
                    for _ in range(5 if self.quick else 50)]
            baseline = [self.timed_child("/bin/true")[0] * 1000 for _ in range(5 if self.quick else 50)]
            holder.kill()
            holder.wait()
            self.say("| measurement | result |")
            self.say("| --- | --- |")
            self.say(f"| query through the library (median / p99) | {lib['median_us']:.1f} / {lib['p99_us']:.1f} µs |")
            self.say(f"| `sockaff query` as a whole process, min/med/max | {summary(runs)} ms "
                     f"(`/bin/true`: {statistics.median(baseline):.2f} ms) |")
            for count in ((1000,) if self.quick else (10_000, 100_000)):
                holder = self.open_sockets(count)
                try:
                    self.send_all(holder)
                    repeats = 1 if self.quick else 3
                    runs = [self.timed_child(self.sockaff, "list", "--json") for _ in range(repeats)]
                    elapsed = statistics.median(run[0] for run in runs)
                    rss = max(run[1] for run in runs)
                    table = statistics.median(self.timed_child(self.sockaff, "list")[0] for _ in range(repeats))
                    listed = [s for s in json.loads(sh(self.sockaff, "list", "--json")) if s["pid"] in holder.pids]
                    encoding = json.loads(sh(self.args.bench, "json", str(holder.processes[0].pid), "5"))["median_us"]
                finally:
                    holder.kill()
                    holder.wait()
                self.say(f"| `sockaff list` (host) with {count:,} live traced sockets in {len(holder.pids)} "
                         f"processes ({len(listed):,} listed), median of {repeats} | {elapsed:.2f} s JSON, "
                         f"{table:.2f} s table; peak RSS {rss / 1024:.0f} MiB; JSON encoding "
                         f"{encoding:.2f} µs per record |")
        finally:
            self.detach_sockaff()
        self.say()

    def memory(self):
        count = 2000 if self.quick else 100_000
        self.say("## 6. Kernel memory per tracked socket")
        self.say()

        def kernel_kib():
            """Unreclaimable slab plus vmalloc: socket storage lives in the
            first; a hash map's bucket array in the second."""
            fields = {line.split(":")[0]: int(line.split()[1]) for line in open("/proc/meminfo")}
            return fields["SUnreclaim"] + fields["VmallocUsed"]

        self.say(f"{count:,} UDP sockets, each sent one datagram (read back) without the tracer, then again with "
                 "it; the growth of unreclaimable slab and vmalloc (/proc/meminfo SUnreclaim + VmallocUsed) "
                 "divided by the sockets.")
        self.say()
        self.say("| tracer | growth | bytes per tracked socket |")
        self.say("| --- | --- | --- |")
        tracers = (("sockaff trace (records + read counters)", lambda: self.attach_sockaff(), self.detach_sockaff),
                   ("sockaff trace --no-locality (records only)", lambda: self.attach_sockaff("--no-locality"),
                    self.detach_sockaff),
                   ("floor: socket storage of 8 bytes (`bench/bpf/storage_floor.bpf.c`)",
                    lambda: self.attach_object("storage_floor"), lambda: self.detach_object("storage_floor")))
        for label, attach, detach in tracers:
            holder = self.open_sockets(count)
            try:
                self.send_all(holder)  # warm-up without the tracer: skbs come and go
                time.sleep(1)
                before = kernel_kib()
                attach()
                try:
                    self.send_all(holder)  # one record per socket (and read counters)
                    time.sleep(1)
                    after = kernel_kib()
                finally:
                    detach()
            finally:
                holder.kill()
                holder.wait()
            self.say(f"| {label} | {after - before:,} KiB | **{(after - before) * 1024 / count:.0f}** |")
        self.say()

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
        rounds = 2 if self.quick else 6
        count = 20_000 if self.quick else 400_000
        self.say("## 7. Fan-in: every CPU into one socket")
        self.say()
        self.say(f"One sender thread per CPU ({len(cpus)}), each pinned, {count:,} × 64 B datagrams to 127.0.0.1 "
                 "(on loopback a datagram is received in its sender's softirq, on the sender's CPU, as RSS queues "
                 f"deliver on theirs). {rounds} rounds per row, order alternating. ns/pkt: sockaff and the empty "
                 "program attached at once (bpf_stats). Counted / delivered: the sockets' traced packets over the "
                 "UDP MIB's InDatagrams + RcvbufErrors + MemErrors. Packets (or connections) per second: sockaff "
                 "alone vs the empty program alone, alternating. The TCP row's ns/pkt covers every packet of the "
                 "burst (the listener's SYNs and ACKs, and the connections' own); its counted packets may exceed "
                 "2 × PassiveOpens by the few segments that reach the listener while connections are torn down "
                 "(answered with a reset: the kernel's OutRsts).")
        self.say()
        self.say("| shape | empty ns/pkt | sockaff ns/pkt | ratio median (min-max) | counted / delivered "
                 "| k per second sockaff / empty (median) |")
        self.say("| --- | --- | --- | --- | --- | --- |")
        connections = count // 20
        for shape, sockets, tcp in (("every CPU into one UDP socket", 1, False),
                                    ("one UDP socket per sender", len(cpus), False),
                                    (f"every CPU connecting to one TCP listener ({connections:,} per CPU; "
                                     "counted: the listener's packets, delivered: 2 × PassiveOpens)", 1, True)):
            sinks, acceptor = [], None
            for _ in range(sockets):
                sink = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
                if not tcp:
                    sink.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
                sink.bind(("127.0.0.1", 0))
                if tcp:
                    sink.listen(4096)
                    acceptor = threading.Thread(target=self.accept_and_close, args=(sink,), daemon=True)
                    acceptor.start()
                else:
                    sink.setblocking(False)
                sinks.append(sink)
            try:
                empty, ours, ratios, totals = [], [], [], {"counted": 0, "delivered": 0}
                per_cpu = connections if tcp else count

                def measured(sinks=sinks, tcp=tcp, per_cpu=per_cpu):
                    """Fan-in traffic, adding the sinks' traced packets and the
                    kernel's delivered count to `totals`."""
                    traced, delivered = sum(map(self.traced_packets, sinks)), self.delivered(tcp)
                    self.send_fan_in(sinks, per_cpu, cpus)
                    totals["counted"] += sum(map(self.traced_packets, sinks)) - traced
                    totals["delivered"] += self.delivered(tcp) - delivered
                for index in range(rounds):
                    per, (ingress,) = self.beside_empty(
                        index, self.attach_sockaff, self.detach_sockaff,
                        lambda: (prog_ids("sockaff_ingress")[0],), measured)
                    empty.append(per[self.empty_id])
                    ours.append(per[ingress])
                    ratios.append(per[ingress] / per[self.empty_id])
                pps = {"empty": [], "sockaff": []}
                for index in range(rounds):
                    for kind in (["empty", "sockaff"] if index % 2 == 0 else ["sockaff", "empty"]):
                        attach, detach = ((self.attach_empty, self.detach_empty) if kind == "empty"
                                          else (self.attach_sockaff, self.detach_sockaff))
                        attach()
                        try:
                            pps[kind].append(self.send_fan_in(sinks, per_cpu, cpus) / 1000)
                        finally:
                            detach()
            finally:
                for sink in sinks:
                    if tcp:
                        sink.shutdown(socket.SHUT_RDWR)  # ends the acceptor's accept()
                    sink.close()
                if acceptor:
                    acceptor.join(5)
            counted, delivered = totals["counted"], totals["delivered"]
            pps_ratio = statistics.median(pps["sockaff"]) / statistics.median(pps["empty"])
            self.say(f"| {shape} | {summary(empty)} | {summary(ours)} | **{statistics.median(ratios):.2f}x** "
                     f"({min(ratios):.2f}-{max(ratios):.2f}) | {counted:,} / {delivered:,} "
                     f"(**{counted / max(delivered, 1):.4f}**) | {statistics.median(pps['sockaff']):.0f} / "
                     f"{statistics.median(pps['empty']):.0f} (**{pps_ratio:.3f}**) |")
        self.say()
        self.attach_sockaff()
        try:
            status = json.loads(sh(self.sockaff, "status", "--json"))
        finally:
            self.detach_sockaff()
        self.say(f"Per-CPU pool (sockets received on more than one CPU): {status['pool_slots']:,} slots × "
                 f"{os.cpu_count()} CPUs × 48 B = {status['pool_bytes'] / 1024:,.0f} KiB of per-CPU memory, "
                 "allocated at attach (the default: 16 MiB / (CPUs × 48 B), at most 16,384 slots).")
        self.say()

    def run(self):
        uname = platform.uname()
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        self.say(f"Kernel {uname.release}, {cpu}, {os.cpu_count()} CPUs; "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}{' (quick)' if self.quick else ''}.")
        self.say()
        for step in (self.per_packet, self.test_run, self.throughput, self.peer, self.queries, self.memory,
                     self.fan_in):
            step()

    def peer(self):
        """The peer is a third-party tool: its failure is reported, not fatal."""
        try:
            self.bpftrace_peer()
        except (RuntimeError, OSError) as error:
            self.say(f"bpftrace peer failed: {error}")
            self.say()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockaff", required=True)
    parser.add_argument("--bench", required=True, help="the sockaff-bench executable")
    parser.add_argument("--objects", required=True, help="directory with sockaff.bpf.o and empty.bpf.o")
    parser.add_argument("--quick", action="store_true", help="every measurement once, briefly")
    parser.add_argument("--write", help="replace the results section of this Markdown file")
    args = parser.parse_args()
    with Bench(args) as bench:
        bench.run()
    if args.write:
        text = open(args.write).read() if os.path.exists(args.write) else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        with open(args.write, "w") as f:
            f.write(head + BEGIN + "\n" + "\n".join(bench.lines) + "\n" + END + tail)


if __name__ == "__main__":
    main()
