import XCTest

@testable import SocketAffinity

/// `check`'s rules from the 4-queue virtio-net fixture: the NIC on node 1,
/// its queue IRQs on CPUs 0-3 (node 0 here), RPS on rx-2 only (CPUs 0 and 7:
/// both nodes), RFS on rx-3 only, and rx-0 with most of the interrupts.
final class HostCheckTests: XCTestCase {
  let topology = Topology(cpusByNode: [0: [0, 1, 2, 3], 1: [4, 5, 6, 7]])

  func nic(table: [UInt32] = (0..<128).map { UInt32($0 % 4) }) -> HostCheck.NIC {
    let queues = InterfaceQueues(
      interface: "eth0", sys: Fixture.path("rss-virtio/sys"), proc: Fixture.path("rss-virtio/proc"), netlink: false)
    return HostCheck.NIC(queues: queues, table: table)
  }

  func findings(_ nic: HostCheck.NIC, irqbalance: Bool = false) -> [String: HostCheck.Finding] {
    Dictionary(
      HostCheck(topology: topology).findings(nics: [nic], irqbalanceRunning: irqbalance).map { ($0.id, $0) },
      uniquingKeysWith: { a, _ in a })
  }

  func testTheFixturesLayoutIsJudged() throws {
    let found = findings(nic())
    let off = try XCTUnwrap(found["irq_off_nic_node"])
    XCTAssertEqual(off.severity, .warning)
    XCTAssertEqual(off.evidence.count, 4, "rx-0..3's IRQs on CPUs 0-3 (node 0; rx-3's from its configured mask)")
    XCTAssertEqual(off.evidence.first, "rx-0: irq 25 on cpus 0 (node 0)")
    XCTAssertTrue(off.message.contains("NIC (node 1)"), off.message)
    XCTAssertEqual(found["rps_on_rss_nic"]?.evidence, ["rx-2: rps cpus 0,7, irq on cpus 2"])
    XCTAssertEqual(found["rps_spans_nodes"]?.evidence, ["rx-2: rps cpus 0,7 (nodes 0,1)"])
    XCTAssertEqual(found["rps_inconsistent"]?.severity, .notice)
    XCTAssertEqual(found["rfs_inconsistent"]?.evidence, ["rfs on rx-3"])
    XCTAssertNil(found["table_leaves_queues_out"], "the table covers all 4 queues")
    XCTAssertNil(found["irqbalance_running"], "not running")
    // rx-0: 903 of 903 + 812 + 651 + 702 interrupts: 29%, not twice its share.
    XCTAssertNil(found["queue_imbalance"])
  }

  func testATableThatLeavesQueuesOutIsAWarning() throws {
    let found = findings(nic(table: (0..<128).map { UInt32($0 % 2) }))
    let leaves = try XCTUnwrap(found["table_leaves_queues_out"])
    XCTAssertEqual(leaves.evidence, ["128 entries over queues 0,1; unused: rx-2,rx-3"])
  }

  func testIRQBalanceWithPinnedIRQsIsANotice() throws {
    let found = try XCTUnwrap(findings(nic(), irqbalance: true)["irqbalance_running"])
    XCTAssertEqual(found.severity, .notice)
    XCTAssertEqual(found.evidence.count, 4, "the IRQs delivered to one CPU each")
  }

  /// A traced socket on eth0: `packets`, its same-node share of 40 reads,
  /// and its hash check's verdict.
  func socket(fd: Int32, cookie: UInt64, packets: UInt64, sameNode: Double, verdict: HashCheck.Verdict)
    -> SocketAffinity
  {
    var answer = SocketAffinity(
      pid: 812, fd: fd, command: "server", networkNamespace: nil, cookie: cookie, family: .inet, transport: .tcp,
      local: "10.0.0.2:80", remote: "10.0.0.1:4000", connected: true, cpu: 5, processor: nil, numaNode: 1, rxQueue: 0,
      napiID: nil, ifindex: 2, interface: "eth0", packets: packets, bytes: packets * 64, cpuChanges: 0, cpus: [],
      otherCPUsPackets: 0, firstSeen: nil, lastSeen: nil, kernelIncomingCPU: 5, source: .bpf, consumerCPU: 1,
      reads: 40, threadNodes: [0], locality: .init(sameCPU: 0, sameNode: sameNode, source: .recvmsg),
      crossNUMA: SocketInspection.isCrossNUMA(sameNode: sameNode))
    answer.hashCheck = HashCheck(
      observedHash: 1, fromNIC: true, predictedHash: 2, verdict: verdict, reason: "the NIC's hash 0x1 is not 0x2")
    return answer
  }

  func testCrossNUMASocketsAndContradictedHashesAreNamed() throws {
    let check = HostCheck(topology: topology)
    XCTAssertEqual(check.findings(sockets: []), [])
    let sockets = [
      socket(fd: 5, cookie: 1, packets: 10, sameNode: 0.25, verdict: .verified),
      socket(fd: 6, cookie: 2, packets: 90, sameNode: 0.1, verdict: .contradicted),
      socket(fd: 7, cookie: 3, packets: 50, sameNode: 0.9, verdict: .verified),
    ]
    let found = Dictionary(check.findings(sockets: sockets).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    let crossing = try XCTUnwrap(found["cross_numa_sockets"])
    XCTAssertTrue(crossing.message.hasPrefix("2 traced sockets"), crossing.message)
    XCTAssertEqual(crossing.evidence.count, 2, "the local socket (90% on its node) is not one")
    XCTAssertTrue(crossing.evidence[0].hasPrefix("pid 812 fd 6 (server) 10.0.0.2:80: 10% of 40 reads"), "busiest first")
    let contradicted = try XCTUnwrap(found["hash_contradicted"])
    XCTAssertEqual(contradicted.interface, "eth0")
    XCTAssertEqual(contradicted.evidence.count, 1, "only the contradicted flow")
    XCTAssertTrue(contradicted.evidence[0].hasPrefix("pid 812 fd 6 "), contradicted.evidence[0])
    let changes = [
      SteeringSnapshot.Change(interface: "eth0", what: "rx_queues", queue: nil, before: "4", after: "2")
    ]
    let drift = try XCTUnwrap(check.findings(changes: changes, since: 0).first)
    XCTAssertEqual(drift.id, "steering_changed")
    XCTAssertEqual(drift.evidence, ["rx_queues: 4 -> 2"])
    XCTAssertEqual(check.findings(changes: [], since: 0), [])
  }
}
