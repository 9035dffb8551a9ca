import CSockaffABI
import Foundation
import Glibc
import XCTest

/// Locality and cross-NUMA mismatch: RPS steers receive processing to one CPU
/// while the reading thread is pinned to a CPU, with a topology that puts
/// CPU 0 and CPU 1 on different nodes (this host has one node).
final class LocalityTests: KernelTestCase {
  struct Scenario {
    let answer: [String: Any]
    let listed: [[String: Any]]
    let mismatches: [String: Any]
  }

  func run(receiveCPU: Int, readerCPU: Int) throws -> Scenario {
    try attach("--sysfs-root", Self.twoNodeSysfs)
    let namespaces = try NetworkNamespacePair()
    try namespaces.steerReceive(toCPU: receiveCPU)
    let pair = try PeerPair.start(
      transport: "udp", serverHost: NetworkNamespacePair.receiverAddress, clientNamespace: namespaces.sender,
      serverNamespace: namespaces.receiver, connectOnFirst: true, serverCPU: readerCPU)
    try pair.exchange(40)
    settle()
    let result = try Command.sockaff(
      "query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)", "--json", "--sysfs-root", Self.twoNodeSysfs)
    let answer = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
    let listed = try listJSON("--pid", "\(pair.server.pid)", "--sysfs-root", Self.twoNodeSysfs)
    let mismatch = try Command.sockaff("list", "--mismatch", "--json", "--sysfs-root", Self.twoNodeSysfs)
    XCTAssertEqual(mismatch.status, 0, mismatch.stderr)
    let mismatches = try JSONSerialization.jsonObject(with: Data(mismatch.stdout.utf8)) as? [String: Any] ?? [:]
    let text = try Command.sockaff("list", "--mismatch", "--sysfs-root", Self.twoNodeSysfs)
    XCTAssertEqual(text.status, 0, text.stderr)
    return Scenario(answer: answer, listed: listed, mismatches: ["json": mismatches, "text": text.stdout])
  }

  func mismatchedPIDs(_ scenario: Scenario) -> [Int] {
    let json = scenario.mismatches["json"] as? [String: Any] ?? [:]
    return (json["sockets"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int }
  }

  func testReaderOnTheReceivingCPUIsLocal() throws {
    let scenario = try run(receiveCPU: 0, readerCPU: 0)
    let locality = scenario.answer["locality"] as? [String: Any] ?? [:]
    XCTAssertEqual(locality["source"] as? String, "recvmsg")
    XCTAssertGreaterThanOrEqual(locality["same_cpu"] as? Double ?? 0, 0.95, "\(locality)")
    XCTAssertGreaterThanOrEqual(locality["same_node"] as? Double ?? 0, 0.95)
    XCTAssertEqual(scenario.answer["consumer_cpu"] as? Int, 0)
    XCTAssertEqual(scenario.answer["cross_numa"] as? Bool, false)
    XCTAssertEqual(scenario.listed.first?["cross_numa"] as? Bool, false)
    XCTAssertFalse(mismatchedPIDs(scenario).contains(scenario.answer["pid"] as? Int ?? -1))
  }

  func testReaderOnTheOtherNodeIsFlaggedCrossNUMA() throws {
    let scenario = try run(receiveCPU: 1, readerCPU: 0)
    let locality = scenario.answer["locality"] as? [String: Any] ?? [:]
    XCTAssertEqual(scenario.answer["cpu"] as? Int, 1)
    XCTAssertEqual(scenario.answer["numa_node"] as? Int, 1)
    XCTAssertEqual(scenario.answer["consumer_cpu"] as? Int, 0)
    XCTAssertLessThanOrEqual(locality["same_cpu"] as? Double ?? 1, 0.05, "\(locality)")
    XCTAssertLessThanOrEqual(locality["same_node"] as? Double ?? 1, 0.05)
    XCTAssertEqual(scenario.answer["cross_numa"] as? Bool, true)
    XCTAssertEqual(scenario.answer["thread_nodes"] as? [Int], [0])
    let pid = scenario.answer["pid"] as? Int ?? -1
    XCTAssertTrue(mismatchedPIDs(scenario).contains(pid))
    let summary = (scenario.mismatches["text"] as? String ?? "").split(separator: "\n").filter {
      $0.contains("(pid \(pid))")
    }
    XCTAssertEqual(summary.count, 1)
    XCTAssertTrue(summary.first?.contains("processed on node 1; its threads ran on node 0") ?? false, "\(summary)")
  }

  /// On this host's real topology (one node) a different CPU is not another
  /// node: the same steering is off-CPU but not cross-NUMA.
  func testOnThisHostsTopologyOffCPUIsNotCrossNUMA() throws {
    try attach()
    let namespaces = try NetworkNamespacePair()
    try namespaces.steerReceive(toCPU: 1)
    let pair = try PeerPair.start(
      transport: "udp", serverHost: NetworkNamespacePair.receiverAddress, clientNamespace: namespaces.sender,
      serverNamespace: namespaces.receiver, connectOnFirst: true, serverCPU: 0)
    try pair.exchange(40)
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    let locality = answer["locality"] as? [String: Any] ?? [:]
    XCTAssertLessThanOrEqual(locality["same_cpu"] as? Double ?? 1, 0.05, "\(locality)")
    let sameNode = locality["same_node"] as? Double ?? 0
    XCTAssertEqual(sameNode, 1, accuracy: 0.001, "one node: every read is on the receiving node")
    XCTAssertEqual(answer["cross_numa"] as? Bool, false)
    let mismatch = try Command.sockaff("list", "--mismatch", "--json")
    let document = try JSONSerialization.jsonObject(with: Data(mismatch.stdout.utf8)) as? [String: Any]
    let pids = (document?["sockets"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int }
    XCTAssertFalse(pids.contains(Int(pair.server.pid)))
  }

  /// Without traced reads (--no-locality), the threads' last CPUs are sampled.
  func testWithoutReadTracingMismatchIsSampledFromThreads() throws {
    try attach("--no-locality", "--sysfs-root", Self.twoNodeSysfs)
    let namespaces = try NetworkNamespacePair()
    try namespaces.steerReceive(toCPU: 1)
    let pair = try PeerPair.start(
      transport: "udp", serverHost: NetworkNamespacePair.receiverAddress, clientNamespace: namespaces.sender,
      serverNamespace: namespaces.receiver, serverCPU: 0)
    try pair.exchange(20)
    let listed = try listJSON("--pid", "\(pair.server.pid)", "--sysfs-root", Self.twoNodeSysfs)
    let locality = listed.first?["locality"] as? [String: Any] ?? [:]
    XCTAssertEqual(locality["source"] as? String, "thread_sampling")
    XCTAssertEqual(listed.first?["cross_numa"] as? Bool, true)
    XCTAssertEqual(listed.first?["reads"] as? Int, 0)
    XCTAssertEqual(listed.first?["cpu"] as? Int, 1, "RPS-steered, read from the records-only layout")
    // The object without read counters was loaded: its records stop before them (the kernel's map info).
    let map = try Command.must(["bpftool", "-j", "map", "show", "pinned", "/sys/fs/bpf/sockaff/records"])
    let info = try JSONSerialization.jsonObject(with: Data(map.utf8)) as? [String: Any]
    XCTAssertEqual(info?["bytes_value"] as? Int, Int(SOCKAFF_RECORD_SIZE_WITHOUT_READS), map)
  }

  /// `trace --sampled-reads`: one read in SOCKAFF_READ_SAMPLE, at random,
  /// counted as that many. Against the reads the server made (every
  /// exchange is one recvfrom that returned data): the estimate is a
  /// multiple of the sample, within 5 standard deviations of the truth
  /// (the count of sampled reads is binomial), and the packets stay exact.
  /// The kernel names the read program attached (bpftool's link list).
  func testSampledReadsEstimateTheReadCountAndSaySo() throws {
    try attach("--sampled-reads")
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    let reads = 4800
    try pair.exchange(reads)
    settle()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    let status =
      try JSONSerialization.jsonObject(
        with: Data(try Command.sockaff("status", "--json").stdout.utf8)) as? [String: Any]
    let locality = answer["locality"] as? [String: Any] ?? [:]
    guard try feature("tp_btf/sock_recv_length").state == "yes" else {
      // No read tracepoint: nothing to sample, and nothing claims it.
      XCTAssertEqual(answer["reads"] as? Int, 0)
      XCTAssertTrue(status?["read_sampling"] == nil || status?["read_sampling"] is NSNull, "\(status ?? [:])")
      return
    }
    let sample = Int(SOCKAFF_READ_SAMPLE)
    XCTAssertEqual(answer["packets"] as? Int, reads, "packets are still each counted")
    let estimate = try XCTUnwrap(answer["reads"] as? Int)
    XCTAssertEqual(estimate % sample, 0, "each sampled read counts \(sample)")
    let sigma = (Double(reads) * Double(sample - 1)).squareRoot()
    XCTAssertLessThanOrEqual(abs(Double(estimate - reads)), 5 * sigma, "estimate \(estimate) of \(reads) reads")
    XCTAssertEqual(locality["read_sampling"] as? Int, sample)
    XCTAssertEqual(locality["source"] as? String, "recvmsg")
    XCTAssertEqual(status?["read_sampling"] as? Int, sample)
    let links =
      try JSONSerialization.jsonObject(with: Data(try Command.must(["bpftool", "-j", "link", "show"]).utf8))
      as? [[String: Any]] ?? []
    let names = try links.compactMap { $0["prog_id"] as? Int }.compactMap { id -> String? in
      let program =
        try JSONSerialization.jsonObject(
          with: Data(try Command.must(["bpftool", "-j", "prog", "show", "id", "\(id)"]).utf8)) as? [String: Any]
      return program?["name"] as? String
    }
    XCTAssertTrue(names.contains("sockaff_sampled"), "the kernel's links: \(names)")
    XCTAssertFalse(names.contains("sockaff_consume"), "one read program, the sampled one")
    let text = try Command.sockaff("query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)")
    XCTAssertTrue(text.stdout.contains("(~\(estimate) reads, 1 in \(sample) sampled"), text.stdout)
    // Exact again: every read counted, and said.
    try Command.sockaff("detach")
    try attach()
    let exact =
      try JSONSerialization.jsonObject(
        with: Data(try Command.sockaff("status", "--json").stdout.utf8)) as? [String: Any]
    XCTAssertEqual(exact?["read_sampling"] as? Int, 1)
    // In the foreground no link is pinned: the host's links name the program.
    try Command.sockaff("detach")
    let foreground = try ForegroundTracer(["--sampled-reads"])
    let unpinned =
      try JSONSerialization.jsonObject(
        with: Data(try Command.sockaff("status", "--json").stdout.utf8)) as? [String: Any]
    XCTAssertEqual(unpinned?["mode"] as? String, "foreground")
    XCTAssertEqual(unpinned?["read_sampling"] as? Int, sample)
    XCTAssertEqual(try foreground.stop(signal: SIGTERM), 0)
  }
}
