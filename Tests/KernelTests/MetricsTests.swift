import Foundation
import Glibc
import XCTest

/// Prometheus metrics from `export` and `serve`, read back with the
/// reference parser (prometheus-client, Peers/prom.py, through
/// `KernelTestCase.parse`), never by sockaff.
final class MetricsTests: KernelTestCase {
  func testExportedTextfileParsesAndCountsTheSocketsPackets() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    try pair.exchange(20)
    let directory = try Command.must(["mktemp", "-d"]).trimmingCharacters(in: .whitespacesAndNewlines)
    defer { _ = try? Command.run(["rm", "-rf", directory]) }
    let export = try Command.sockaff("export", "--textfile", directory, "--per-socket-series")
    XCTAssertEqual(export.status, 0, export.stderr)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: directory), ["sockaff.prom"], "no temporary left")

    let metrics = try parse("file", directory + "/sockaff.prom")
    XCTAssertEqual(metrics.families["sockaff_socket_receive_packets"], "counter")
    XCTAssertEqual(metrics.families["sockaff_cpu_receive_packets"], "gauge")
    XCTAssertEqual(metrics.values("sockaff_tracer_attached"), [1])
    let server = ["pid": "\(pair.server.pid)", "fd": "\(pair.serverFD)", "protocol": "udp"]
    let perCPU = metrics.values("sockaff_socket_receive_packets_total", where: server)
    XCTAssertFalse(perCPU.isEmpty, "the server socket has series")
    let query = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(perCPU.reduce(0, +), Double(query["packets"] as? Int ?? -1), "the same packets as query")
    let cpu = "\(query["cpu"] as? Int ?? -1)"
    XCTAssertFalse(
      metrics.values("sockaff_socket_receive_packets_total", where: server.merging(["cpu": cpu]) { $1 }).isEmpty,
      "a series for the CPU that received it")
    XCTAssertGreaterThanOrEqual(metrics.values("sockaff_node_receive_packets").reduce(0, +), 20)
    // Every probed feature has its state as a series, as status says it,
    // and the scrape says where its sockets came from.
    for name in ["iter/bpf_sk_storage_map", "iter/task_file", "cgroup_skb"] {
      let state = try feature(name).state
      XCTAssertEqual(metrics.values("sockaff_capability", where: ["name": name, "state": state]), [1], name)
    }
    let pass = try feature("iter/task_file").state == "yes"
    XCTAssertEqual(
      metrics.values("sockaff_scrape_sockets_source", where: ["source": pass ? "iterator" : "procfs"]), [1])
    // Families in name order, so that textfiles diff cleanly.
    let text = try String(contentsOfFile: directory + "/sockaff.prom", encoding: .utf8)
    let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
    XCTAssertEqual(families, families.sorted(), "families sorted")
    XCTAssertGreaterThan(families.count, 10)
  }

  /// The kernel's one pass (the held-sockets iterator) and the walk of every
  /// process's fds give the same per-socket series for the same sockets;
  /// `--top N` keeps the series of the N busiest only.
  func testIteratorAndProcfsScrapesAgreeAndTopKeepsTheBusiest() throws {
    try attach()
    var pairs: [PeerPair] = []
    for (index, count) in [5, 12, 30].enumerated() {
      let pair = try PeerPair.start(transport: index == 1 ? "tcp" : "udp", serverHost: "127.0.0.1")
      try pair.exchange(count)
      pairs.append(pair)
    }
    settle()
    let pids = Set(pairs.flatMap { ["\($0.server.pid)", "\($0.client.pid)"] })
    func series(_ metrics: Exposition) -> [(name: String, labels: [String: String], value: Double)] {
      metrics.samples.filter { $0.name == "sockaff_socket_receive_packets_total" }
    }
    func ours(_ source: String) throws -> [String] {
      series(try exported("--sockets-from", source, "--top", "100000", "--per-socket-series"))
        .filter { pids.contains($0.labels["pid"] ?? "") }
        .map { "\($0.labels.sorted { $0.key < $1.key }) \($0.value)" }.sorted()
    }
    let procfs = try ours("procfs")
    XCTAssertGreaterThanOrEqual(procfs.count, 6, "both ends of the three pairs: \(procfs)")
    let pass = try feature("iter/task_file")
    if pass.state == "yes" {
      XCTAssertEqual(try ours("iterator"), procfs, "the same series either way")
    } else {
      // Degraded: the iterator asked for by name fails with one line that
      // names it and the refusal's status; auto takes procfs and loses nothing.
      let refused = try Command.sockaff("export", "--sockets-from", "iterator")
      XCTAssertEqual(refused.status, pass.state == "refused" ? 16 : 12, refused.stderr)
      XCTAssertEqual(refused.stdout, "", "nothing half-written")
      XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
      XCTAssertTrue(refused.stderr.contains("iter/task_file"), refused.stderr)
      XCTAssertEqual(try ours("auto"), procfs, "auto answers from procfs")
    }
    // And what the kernel delivered, not only agreement between two readers:
    // a UDP server's socket received exactly one datagram per exchange.
    let metrics = try exported("--sockets-from", "auto", "--top", "100000", "--per-socket-series")
    for (pair, count) in [(pairs[0], 5), (pairs[2], 30)] {
      let server = ["pid": "\(pair.server.pid)", "fd": "\(pair.serverFD)"]
      XCTAssertEqual(
        metrics.values("sockaff_socket_receive_packets_total", where: server).reduce(0, +), Double(count),
        "UDP server of \(count) exchanges")
    }

    let busiest =
      try pairs.map { pair in try queryJSON(pid: pair.server.pid, fd: pair.serverFD) }
      .compactMap { $0["packets"] as? Int }.max() ?? -1
    let topOne = try exported("--top", "1", "--per-socket-series")
    let top = series(topOne)
    XCTAssertEqual(Set(top.map { "\($0.labels["pid"] ?? "")/\($0.labels["fd"] ?? "")" }).count, 1, "\(top)")
    XCTAssertGreaterThanOrEqual(
      top.reduce(0) { $0 + $1.value }, Double(busiest), "the one socket is the busiest (or busier still)")
    // What the cap left out is said: every traced socket but the one shown
    // (each once), at least the six ends of the three pairs.
    let omitted = topOne.values("sockaff_socket_series_omitted_sockets").first ?? -1
    XCTAssertGreaterThanOrEqual(omitted, 5, "the sockets beyond --top 1")

    // By default no series names a process or a socket: the exposition is
    // bounded by the host's CPUs, nodes and queues, and says how many
    // sockets it leaves out (one more than with one shown).
    let plain = try exported("--top", "1")
    XCTAssertTrue(series(plain).isEmpty, "no per-socket series without --per-socket-series")
    XCTAssertTrue(plain.samples.allSatisfy { $0.labels["pid"] == nil && $0.labels["fd"] == nil }, "no pid, no fd")
    XCTAssertGreaterThanOrEqual(plain.values("sockaff_socket_series_omitted_sockets").first ?? -1, 6)
  }

  /// A socket that two processes hold (a fork) is counted once in the
  /// host's totals by CPU and node, and has one series among the busiest,
  /// by either source: the totals grow by exactly the datagrams the kernel
  /// delivered to the two traced sockets (the shared server and its
  /// client), where counting per holder would add the server's once more. The totals are the host's, so traffic of
  /// other sockets between two scrapes spoils a round: up to 3 rounds, each
  /// with fresh sockets, and one must be exact.
  func testHostTotalsCountASharedSocketOnce() throws {
    try attach()
    let count = 200
    var deltas: [String] = []
    // The iterator where the kernel runs it (the other test checks its refusal).
    let sources = try feature("iter/task_file").state == "yes" ? ["iterator", "procfs"] : ["procfs"]
    for _ in 0..<3 {
      let server = try Peer(["fork-share", "127.0.0.1"])
      let client = try Peer(["udp-client", "127.0.0.1", "\(server.hello["port"] as! Int)"])
      defer {
        try? client.finish()
        try? server.finish()
      }
      func totals() throws -> [String: [Double]] {
        try Dictionary(
          uniqueKeysWithValues: sources.map { source in
            let metrics = try exported("--sockets-from", source)
            return (
              source,
              [
                metrics.values("sockaff_cpu_receive_packets").reduce(0, +),
                metrics.values("sockaff_node_receive_packets").reduce(0, +),
              ]
            )
          })
      }
      let before = try totals()
      server.startExchanges(count)
      client.startExchanges(count)
      try client.waitDone()
      try server.waitDone()
      let after = try totals()
      var exact = true
      for source in sources {
        let growth = zip(after[source] ?? [], before[source] ?? []).map { $0 - $1 }
        deltas.append("\(source): \(growth)")
        exact = exact && growth == [Double(2 * count), Double(2 * count)]
      }
      if exact {
        // And its series among the busiest: one, under one of its holders.
        for source in sources {
          let series = try exported("--sockets-from", source, "--top", "100000", "--per-socket-series").samples.filter {
            $0.name == "sockaff_socket_receive_packets_total"
              && $0.labels["local"] == "127.0.0.1:\(server.hello["port"] as! Int)"
          }
          let holders = Set(series.map { $0.labels["pid"] ?? "" })
          XCTAssertEqual(holders.count, 1, "\(source): one holder's series, not each holder's: \(series)")
          XCTAssertTrue(
            holders.isSubset(of: ["\(server.pid)", "\(server.hello["child_pid"] as! Int)"]), "\(source): \(holders)")
          XCTAssertEqual(series.reduce(0) { $0 + $1.value }, Double(count), "\(source): the datagrams it received")
        }
        return
      }
    }
    XCTFail("by CPU and by node, the totals never grew by exactly \(2 * count) (server once + client): \(deltas)")
  }

  func testExportWithTheTracerDetachedSaysSo() throws {
    let export = try Command.sockaff("export")
    XCTAssertEqual(export.status, 0, export.stderr)
    let file = FileManager.default.temporaryDirectory.appending(path: "sockaff-detached-\(getpid()).prom")
      .path(percentEncoded: false)
    defer { unlink(file) }
    try export.stdout.write(toFile: file, atomically: true, encoding: .utf8)
    XCTAssertEqual(try parse("file", file).values("sockaff_tracer_attached"), [0], "an alertable 0, not an error")
  }

  func testServeAnswersOnLoopbackAndCountersOnlyGrow() throws {
    try attach()
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(10)
    let server = try MetricsServer(arguments: ["--per-socket-series"])
    defer { server.stop() }
    XCTAssertTrue(server.url.hasPrefix("http://127.0.0.1:"), server.url)

    let labels = ["pid": "\(pair.server.pid)", "fd": "\(pair.serverFD)"]
    let first = try parse("url", server.url)
    XCTAssertEqual(first.status, 200)
    try pair.exchange(10)
    settle()
    let second = try parse("url", server.url)
    let before = first.values("sockaff_socket_receive_packets_total", where: labels).reduce(0, +)
    let after = second.values("sockaff_socket_receive_packets_total", where: labels).reduce(0, +)
    XCTAssertGreaterThanOrEqual(before, 10)
    XCTAssertGreaterThanOrEqual(after, before + 10, "the socket's counter grew with its traffic")
    for name in ["sockaff_records_created_total", "sockaff_untracked_packets_total"] {
      XCTAssertGreaterThanOrEqual(
        second.values(name).first ?? -1, first.values(name).first ?? .infinity, "\(name) never goes down")
    }
    XCTAssertEqual(try parse("url", server.url.replacingOccurrences(of: "/metrics", with: "/other")).status, 404)
  }

  func testBadListenValuesAreUsageErrors() throws {
    for value in ["localhost:9977", "127.0.0.1", "127.0.0.1:99999", "[::1]", ":9977", "127.0.0.1:http", "[::1:9977"] {
      let result = try Command.sockaff("serve", "--listen", value)
      XCTAssertEqual(result.status, 64, "--listen \(value): \(result.stderr)")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
      XCTAssertTrue(result.stderr.contains("--listen"), result.stderr)
    }
    // Well-formed, but not an address of this host: bind fails, nothing is sent.
    let foreign = try Command.sockaff("serve", "--listen", "192.0.2.77:9977")
    XCTAssertEqual(foreign.status, 11, foreign.stderr)
    XCTAssertTrue(foreign.stderr.contains("listen on 192.0.2.77:9977"), foreign.stderr)
  }
}
