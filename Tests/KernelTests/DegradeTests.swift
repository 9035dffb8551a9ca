import Foundation
import Glibc
import XCTest

/// Every optional kernel feature degrades alone, on any kernel: the
/// `SOCKAFF_REFUSE` switch makes sockaff's probes answer "refused" for the
/// features it names, as a kernel that refuses them (EPERM as root) does,
/// and each command must still answer everything else and say what it lost.
/// The answers are checked against the kernel and the peers' own counts.
final class DegradeTests: KernelTestCase {
  static let readers = "iter/bpf_sk_storage_map,iter/task_file"
  static let refuseReaders = ["SOCKAFF_REFUSE=\(readers)"]
  static let refuseAll = ["SOCKAFF_REFUSE=\(readers),tp_btf/sock_recv_length"]

  func sockaff(_ environment: [String], _ arguments: String...) throws -> CommandResult {
    try Command.run(["/usr/bin/env"] + environment + [Command.sockaffPath] + arguments)
  }

  func testStatusSaysWhatIsRefusedAndExitsZero() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    try pair.exchange(5)
    let text = try sockaff(Self.refuseAll, "status")
    XCTAssertEqual(text.status, 0, text.stderr)
    XCTAssertTrue(
      text.stdout.contains("live records:    unknown: the kernel refused iter/bpf_sk_storage_map (SOCKAFF_REFUSE)"),
      text.stdout)
    for name in ["iter/bpf_sk_storage_map", "iter/task_file", "tp_btf/sock_recv_length"] {
      XCTAssertTrue(text.stdout.contains("REFUSED \(name) ("), "\(name) in: \(text.stdout)")
    }
    XCTAssertFalse(text.stdout.contains("CAP_"), "root is never told to get a capability")

    let json = try sockaff(Self.refuseAll, "status", "--json")
    XCTAssertEqual(json.status, 0, json.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any] ?? [:]
    XCTAssertEqual(object["attached"] as? Bool, true, "the tracer itself is unaffected")
    XCTAssertGreaterThanOrEqual(object["records_created"] as? Int ?? 0, 2, "its counters are still read")
    XCTAssertNil(object["live_records"])
    let features = object["features"] as? [[String: Any]] ?? []
    for name in ["iter/bpf_sk_storage_map", "iter/task_file", "tp_btf/sock_recv_length"] {
      let feature = features.first { $0["name"] as? String == name }
      XCTAssertEqual(feature?["state"] as? String, "refused", name)
      XCTAssertEqual(feature?["available"] as? Bool, false, name)
      XCTAssertEqual(feature?["detail"] as? String, "SOCKAFF_REFUSE", name)
    }
    // The switch touches only what it names: the required features are the kernel's.
    XCTAssertEqual(features.first { $0["name"] as? String == "cgroup_skb" }?["state"] as? String, "yes")
  }

  /// Without the held-sockets iterator, `export` and `serve` answer from
  /// procfs with every series: the UDP server's series is the datagrams
  /// it received, and the refusal is a series of its own.
  func testExportAndServeAnswerWithoutTheReadersIterators() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    try pair.exchange(25)
    settle()
    let metrics = try exported("--top", "100000", "--per-socket-series", environment: Self.refuseReaders)
    XCTAssertEqual(metrics.values("sockaff_tracer_attached"), [1])
    for name in ["iter/bpf_sk_storage_map", "iter/task_file"] {
      XCTAssertEqual(metrics.values("sockaff_capability", where: ["name": name, "state": "refused"]), [1], name)
    }
    XCTAssertEqual(metrics.values("sockaff_scrape_sockets_source", where: ["source": "procfs"]), [1])
    XCTAssertEqual(metrics.values("sockaff_live_records"), [], "no count rather than a wrong one")
    let server = ["pid": "\(pair.server.pid)", "fd": "\(pair.serverFD)"]
    XCTAssertEqual(
      metrics.values("sockaff_socket_receive_packets_total", where: server).reduce(0, +), 25,
      "the UDP server received one datagram per exchange")
    XCTAssertGreaterThanOrEqual(metrics.values("sockaff_cpu_receive_packets").reduce(0, +), 50)

    // Asked for by name, the refused iterator is an error of its own.
    let named = try sockaff(Self.refuseReaders, "export", "--sockets-from", "iterator")
    XCTAssertEqual(named.status, 16, named.stderr)
    XCTAssertEqual(named.stdout, "")
    XCTAssertEqual(
      named.stderr.trimmingCharacters(in: .newlines),
      "sockaff export: use iter/task_file: the kernel refused iter/task_file (SOCKAFF_REFUSE); without it: no one-pass scrape (serve and export walk every process's fds instead)"
    )

    let serve = try MetricsServer(environment: Self.refuseReaders, arguments: ["--per-socket-series"])
    defer { serve.stop() }
    let scraped = try parse("url", serve.url)
    XCTAssertEqual(scraped.status, 200)
    XCTAssertEqual(scraped.values("sockaff_scrape_sockets_source", where: ["source": "procfs"]), [1])
    XCTAssertEqual(scraped.values("sockaff_socket_receive_packets_total", where: server).reduce(0, +), 25)
  }

  /// Without the read tracepoint, `trace` attaches the receive recorder
  /// alone, says so once, and answers locality from thread sampling; the
  /// receiving CPU is still the kernel's SO_INCOMING_CPU.
  func testTraceWithoutTheReadTracepointSamplesLocality() throws {
    let trace = try sockaff(Self.refuseAll, "trace")
    XCTAssertEqual(trace.status, 0, trace.stderr)
    XCTAssertTrue(
      trace.stderr.contains("reads are not traced (the kernel refused tp_btf/sock_recv_length (SOCKAFF_REFUSE))"),
      trace.stderr)
    XCTAssertFalse(KernelListing.pinsLeft().contains("consumer_link"), "no read tracer attached")
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    try pair.exchange(10)
    settle()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(answer["packets"] as? Int, 10)
    XCTAssertEqual(answer["cpu"] as? Int, Int(try kernelIncomingCPU(pid: pair.server.pid, fd: pair.serverFD)))
    let locality = answer["locality"] as? [String: Any] ?? [:]
    XCTAssertEqual(locality["source"] as? String, "thread_sampling", "\(answer)")
  }
}
