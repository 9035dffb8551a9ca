#!/usr/bin/env python3
"""`make promtest`: sockaff's metrics through a real Prometheus (Debian's).

1. promtool checks contrib/prometheus/sockaff.rules.yml and runs its unit
   tests (sockaff.rules.test.yml).
2. A UDP flow between two network namespaces (a veth pair whose sender takes
   TX queue 1, so the receiver sees RX queue 0): the sender on CPU 0, the
   receiving socket read on CPU 1. sockaff traces it with a two-node topology
   (CPU 0 on node 0, CPU 1 on node 1: Tests/KernelTests/Fixtures), so the
   socket is received on node 0 and read on node 1: cross-NUMA.
3. `sockaff serve` with the same topology, over TLS with basic auth
   (`--web.config.file`: a CA and a server certificate made here by openssl,
   a bcrypt hash by Python's crypt); curl without credentials gets 401, and
   with another CA no answer. Prometheus, started here on loopback with a
   config of its own, scrapes it every second through its own `tls_config`
   and `basic_auth`, and evaluates the rules; a second `serve --source
   kernel` (the census) is its own job.
4. Through Prometheus's HTTP API: the socket's series carries the CPU that
   the kernel's SO_INCOMING_CPU names and that CPU's node, and counts exactly
   the datagrams the socket received, as `sockaff query` does; the census
   counts the socket under that CPU and node; the rules load
   and evaluate without errors; every query of every panel of
   contrib/grafana/sockaff.json returns data.

Prints "prometheus: PASS|FAIL name" lines, then "prometheus: N passed, M failed".
Usage: check.py SOCKAFF   (as root; also check.py --receiver|--sender ..., its peers)
"""
import base64
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings

with warnings.catch_warnings():
    # Deprecated since 3.11, but Debian 12's and libxcrypt's: the bcrypt of the web config.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "contrib/prometheus/sockaff.rules.yml")
RULE_TESTS = os.path.join(ROOT, "contrib/prometheus/sockaff.rules.test.yml")
DASHBOARD = os.path.join(ROOT, "contrib/grafana/sockaff.json")
TOPOLOGY = os.path.join(ROOT, "Tests/KernelTests/Fixtures/two-node-one-cpu-each")
SENDER_NS, RECEIVER_NS = f"sockaff-prom-tx-{os.getpid()}", f"sockaff-prom-rx-{os.getpid()}"
SENDER_ADDRESS, RECEIVER_ADDRESS = "192.0.2.1", "192.0.2.2"  # TEST-NET-1, inside the namespaces only
SEND_CPU, READ_CPU = 0, 1
DATAGRAMS = 2000

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(f"prometheus: {'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return ok


def run(*argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


# --- the peers, run inside the namespaces ---------------------------------------


def receiver():
    """Binds, says where; counts datagrams until told 'report' on stdin, then
    says how many and the kernel's SO_INCOMING_CPU. Connects to the first
    sender: the kernel keeps SO_INCOMING_CPU of connected UDP sockets."""
    os.sched_setaffinity(0, {READ_CPU})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((RECEIVER_ADDRESS, 0))
    print(json.dumps({"pid": os.getpid(), "fd": sock.fileno(), "port": sock.getsockname()[1]}), flush=True)
    received, connected = 0, False
    while True:
        ready, _, _ = select.select([sock, sys.stdin], [], [], 30)
        if not ready:
            sys.exit("receiver: nothing for 30 s")
        if sock in ready:
            _, sender = sock.recvfrom(2048)
            received += 1
            if not connected:
                sock.connect(sender)
                connected = True
        if sys.stdin in ready and sys.stdin.readline().strip() == "report":
            incoming = sock.getsockopt(socket.SOL_SOCKET, 49)  # SO_INCOMING_CPU
            print(json.dumps({"received": received, "incoming_cpu": incoming}), flush=True)
            sys.stdin.readline()
            return


def sender(port):
    """Sends DATAGRAMS 64-byte datagrams over about 8 s, then says so."""
    os.sched_setaffinity(0, {SEND_CPU})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SENDER_ADDRESS, 0))
    sock.connect((RECEIVER_ADDRESS, int(port)))
    for index in range(DATAGRAMS):
        sock.send(b"x" * 64)
        if index % 50 == 49:
            time.sleep(0.2)
    print(json.dumps({"sent": DATAGRAMS}), flush=True)


# --- the harness -----------------------------------------------------------------


class Lab:
    """What the check starts, stopped and removed in reverse, even on failure."""

    def __init__(self):
        self.undo = []
        self.scratch = tempfile.mkdtemp(prefix="sockaff-prom-")
        self.undo.append(lambda: run("rm", "-rf", self.scratch))

    def process(self, argv, **kwargs):
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kwargs)

        def stop():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()

        self.undo.append(stop)
        return child

    def close(self):
        for step in reversed(self.undo):
            try:
                step()
            except Exception as error:  # cleanup goes on
                print(f"prometheus: cleanup: {error}", file=sys.stderr)


def read_line(child, timeout=20):
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    line = child.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"{child.args[:4]}... said nothing within {timeout} s (exit {child.poll()})")
    return line


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def query(base, expr):
    return api(base, "/api/v1/query", query=expr)["result"]


def wait_for(what, condition, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


def network(lab):
    """Two namespaces and a veth pair with 2 queues; the sender's CPUs all
    take TX queue 1, which the receiver records as RX queue 0."""
    for namespace in (SENDER_NS, RECEIVER_NS):
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        lab.undo.append(lambda namespace=namespace: run("ip", "netns", "del", namespace))
    subprocess.run(
        ["ip", "-n", SENDER_NS, "link", "add", "prom-tx", "numtxqueues", "2", "numrxqueues", "2", "type", "veth",
         "peer", "name", "prom-rx", "netns", RECEIVER_NS, "numtxqueues", "2", "numrxqueues", "2"], check=True)
    for namespace, device, address in ((SENDER_NS, "prom-tx", SENDER_ADDRESS), (RECEIVER_NS, "prom-rx", RECEIVER_ADDRESS)):
        subprocess.run(["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", device], check=True)
        subprocess.run(["ip", "-n", namespace, "link", "set", device, "up"], check=True)
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
    cpus = os.cpu_count() or 2
    all_cpus = format((1 << cpus) - 1, "x")
    for queue, mask in (("tx-0", "0"), ("tx-1", all_cpus)):
        subprocess.run(["ip", "netns", "exec", SENDER_NS, "sh", "-c",
                        f"echo {mask} > /sys/class/net/prom-tx/queues/{queue}/xps_cpus"], check=True)
    # The receiver's address resolved before the flow: a datagram held for ARP
    # would leave later from the ARP reply's softirq, on any CPU.
    subprocess.run(["ip", "-n", RECEIVER_NS, "neigh", "replace", SENDER_ADDRESS, "lladdr",
                    mac(SENDER_NS, "prom-tx"), "dev", "prom-rx", "nud", "permanent"], check=True)
    subprocess.run(["ip", "-n", SENDER_NS, "neigh", "replace", RECEIVER_ADDRESS, "lladdr",
                    mac(RECEIVER_NS, "prom-rx"), "dev", "prom-tx", "nud", "permanent"], check=True)


def mac(namespace, device):
    out = run("ip", "-n", namespace, "-j", "link", "show", device).stdout
    return json.loads(out)[0]["address"]


def promtool():
    result = run("promtool", "check", "rules", RULES)
    check("promtool check rules", result.returncode == 0, result.stdout + result.stderr)
    result = run("promtool", "test", "rules", RULE_TESTS, cwd=os.path.dirname(RULE_TESTS))
    check("promtool test rules", result.returncode == 0, result.stdout + result.stderr)


def web_config(lab):
    """A CA, a server certificate for 127.0.0.1 it signs, another CA, and the
    web config serving TLS with one basic-auth user; returns (config, CA file,
    other CA file, user, password)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    path = lambda name: os.path.join(lab.scratch, name)
    for ca in ("ca", "other-ca"):
        subprocess.run(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", f"/CN=sockaff promtest {ca}",
                        "-keyout", path(f"{ca}.key"), "-out", path(f"{ca}.crt")], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", *ec, "-subj", "/CN=127.0.0.1", "-keyout", path("server.key"),
                    "-out", path("server.csr")], check=True, capture_output=True)
    with open(path("server.ext"), "w") as file:
        file.write("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.crt"), "-CAkey",
                    path("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", path("server.ext"),
                    "-out", path("server.crt")], check=True, capture_output=True)
    password = base64.urlsafe_b64encode(os.urandom(18)).decode()
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    with open(path("web.yml"), "w") as file:
        file.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                   f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    return path("web.yml"), path("ca.crt"), path("other-ca.crt"), "prometheus", password


def curl(url, *options):
    """curl's HTTP status ("000": no answer) and exit status."""
    result = run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *options, url)
    return result.stdout, result.returncode


def dashboard_queries():
    with open(DASHBOARD) as file:
        dashboard = json.load(file)
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$instance", ".*").replace("$__rate_interval", "1m")
            queries.append((panel["title"], target["refId"], expr))
    return queries


def main(sockaff):
    promtool()
    queries = dashboard_queries()
    check("dashboard has panel queries", len(queries) >= 10, f"{len(queries)}")

    status = json.loads(run(sockaff, "status", "--json").stdout or "{}")
    if status.get("attached"):
        check("tracer not attached before the check", False, "run 'sockaff detach' first")
        return
    lab = Lab()
    try:
        stats = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
        lab.undo.append(lambda: open("/proc/sys/kernel/bpf_stats_enabled", "w").write(stats))
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
        attach = run(sockaff, "trace", "--sysfs-root", TOPOLOGY)
        lab.undo.append(lambda: run(sockaff, "detach"))
        if not check("sockaff trace", attach.returncode == 0, attach.stderr):
            return
        network(lab)

        web, ca, other_ca, user, password = web_config(lab)
        # Behind TLS and auth, the series that name processes and sockets too.
        serve = lab.process([sockaff, "serve", "--listen", "127.0.0.1:0", "--sysfs-root", TOPOLOGY,
                             "--web.config.file", web, "--per-socket-series"])
        served = read_line(serve)
        metrics_url = served.split()[-1]
        check("serve says it serves https", metrics_url.startswith("https://127.0.0.1:"), served)
        metrics_port = int(served.rsplit(":", 1)[1].split("/")[0])
        check("curl without credentials gets 401", curl(metrics_url, "--cacert", ca) == ("401", 0),
              f"{curl(metrics_url, '--cacert', ca)}")
        code, status = curl(metrics_url, "--cacert", other_ca, "-u", f"{user}:{password}")
        check("curl trusting another CA gets no answer (exit 60)", (code, status) == ("000", 60), f"{code} {status}")
        # The census (no tracer read): plain HTTP on loopback, its own job.
        census = lab.process([sockaff, "serve", "--listen", "127.0.0.1:0", "--sysfs-root", TOPOLOGY,
                              "--source", "kernel"])
        census_port = int(read_line(census).rsplit(":", 1)[1].split("/")[0])
        prometheus_port = free_port()
        config = os.path.join(lab.scratch, "prometheus.yml")
        with open(config, "w") as file:
            file.write(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                f"rule_files:\n  - {RULES}\n"
                "scrape_configs:\n  - job_name: sockaff\n    scheme: https\n"
                f"    tls_config:\n      ca_file: {ca}\n"
                f"    basic_auth:\n      username: {user}\n      password: '{password}'\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
                "  - job_name: sockaff-census\n"
                f"    static_configs:\n      - targets: ['127.0.0.1:{census_port}']\n")
        log = open(os.path.join(lab.scratch, "prometheus.log"), "w")
        lab.process(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={lab.scratch}/data",
                     f"--web.listen-address=127.0.0.1:{prometheus_port}"], stderr=log)
        base = f"http://127.0.0.1:{prometheus_port}"
        try:
            wait_for("Prometheus to be ready", lambda: urllib.request.urlopen(base + "/-/ready", timeout=2).status == 200)
            wait_for("the first scrape of sockaff serve", lambda: query(base, 'up{job="sockaff"} == 1'))
            wait_for("the first scrape of the census", lambda: query(base, 'up{job="sockaff-census"} == 1'))
        except Exception as error:
            check("Prometheus scrapes sockaff serve", False, f"{error}; log: {open(log.name).read()[-2000:]}")
            return
        check("Prometheus scrapes sockaff serve", True)

        me = os.path.abspath(__file__)
        peer = lab.process(["ip", "netns", "exec", RECEIVER_NS, "python3", me, "--receiver"])
        hello = json.loads(read_line(peer))
        send = lab.process(["ip", "netns", "exec", SENDER_NS, "python3", me, "--sender", str(hello["port"])])
        sent = json.loads(read_line(send, timeout=60))["sent"]
        peer.stdin.write("report\n")
        peer.stdin.flush()
        report = json.loads(read_line(peer))
        check(f"the socket received every datagram ({report['received']} of {sent})", report["received"] == sent)
        # Scrapes after the last packet: the series now hold the final counts.
        time.sleep(3)

        # Prometheus's own linter on what serve exposes with the tracer
        # attached and traffic counted (naming, types, HELP): nothing to say.
        request = urllib.request.Request(metrics_url, headers={
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})
        exposition = urllib.request.urlopen(request, timeout=30, context=ssl.create_default_context(cafile=ca)).read()
        lint = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True)
        check("promtool check metrics finds nothing in the exposition", lint.returncode == 0 and not lint.stdout
              and not lint.stderr, (lint.stdout + lint.stderr).decode(errors="replace"))

        answer = json.loads(run(sockaff, "query", "--pid", str(hello["pid"]), "--fd", str(hello["fd"]), "--json",
                                "--sysfs-root", TOPOLOGY).stdout or "{}")
        series = query(base, f'sockaff_socket_receive_packets_total{{pid="{hello["pid"]}",fd="{hello["fd"]}"}}')
        labels = [entry["metric"] for entry in series]
        values = [int(float(entry["value"][1])) for entry in series]
        incoming = report["incoming_cpu"]
        check("one series for the socket, one receiving CPU", len(series) == 1, f"{labels}")
        if series:
            check(f"its cpu label is the kernel's SO_INCOMING_CPU ({incoming})",
                  labels[0].get("cpu") == str(incoming), f"{labels[0]}")
            check("its cpu and node labels are sockaff query's",
                  (labels[0].get("cpu"), labels[0].get("node")) ==
                  (str(answer.get("cpu")), str(answer.get("numa_node"))), f"{labels[0]} vs {answer}")
            check(f"its value counts every datagram ({values[0]} of {sent}), as sockaff query does",
                  values[0] == sent == answer.get("packets"), f"query packets {answer.get('packets')}")
        cross = query(base, f'sockaff_process_cross_numa_sockets{{pid="{hello["pid"]}"}}')
        check("the reading process has its one cross-NUMA socket (received node 0, read node 1)",
              [entry["value"][1] for entry in cross] == ["1"], f"{cross}")
        queue = query(base, 'sockaff_rx_queue_sockets{interface="prom-rx",queue="0"}')
        check("the socket's RX queue (0) has its socket", [entry["value"][1] for entry in queue] == ["1"], f"{queue}")

        # The census counts the receiver's socket under the CPU its own
        # SO_INCOMING_CPU names, and that CPU's node.
        node = "0" if incoming == SEND_CPU else "1"  # the fixture: CPU 0 on node 0, CPU 1 on node 1
        census_cpu = wait_for("the census after the flow", lambda: query(
            base, f'sockaff_census_cpu_sockets{{job="sockaff-census",cpu="{incoming}"}}'), timeout=10)
        check(f"the census counts a socket on the receiver's CPU ({incoming}, node {node})",
              bool(census_cpu) and census_cpu[0]["metric"].get("node") == node
              and float(census_cpu[0]["value"][1]) >= 1, f"{census_cpu}")

        groups = api(base, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        check(f"every rule loaded ({len(rules)})", len(rules) >= 9, f"{[rule['name'] for rule in rules]}")
        unhealthy = [(rule["name"], rule.get("lastError")) for rule in rules if rule.get("health") != "ok"]
        check("every rule evaluates without error", not unhealthy, f"{unhealthy}")
        # A series that needs a kernel feature is absent where the kernel
        # refuses or lacks it: that panel must then show nothing, and the
        # refusal must be a series of its own (sockaff_capability).
        needs = {"sockaff_live_records": "iter/bpf_sk_storage_map"}
        states = {entry["metric"].get("name"): entry["metric"].get("state")
                  for entry in query(base, "sockaff_capability")}
        for title, ref, expr in queries:
            feature = next((needs[name] for name in needs if name in expr), None)
            try:
                result = query(base, expr)
                if feature and states.get(feature) != "yes":
                    check(f"panel '{title}' {ref} is empty: {feature} is {states.get(feature)}, "
                          f"and sockaff_capability says so", len(result) == 0 and feature in states, expr)
                else:
                    check(f"panel '{title}' {ref} returns data", len(result) > 0, expr)
            except Exception as error:
                check(f"panel '{title}' {ref} returns data", False, f"{expr}: {error}")
    finally:
        lab.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--receiver"]:
        receiver()
        sys.exit(0)
    if sys.argv[1:2] == ["--sender"]:
        sender(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except Exception as error:
        check("the check ran to its end", False, f"{type(error).__name__}: {error}")
    print(f"prometheus: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)
