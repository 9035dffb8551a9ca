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
    return HostCheck.NIC(
      queues: queues,
      rss: RSSConfiguration(
        interface: "eth0", hashFunction: .toeplitz, key: ToeplitzTests.key, table: table, rxRings: 4, ntupleRules: 0))
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

  func testCrossNUMASocketsAndContradictedHashesAreNamed() throws {
    let check = HostCheck(topology: topology)
    XCTAssertEqual(check.findings(sockets: []), [])
    let changes = [
      SteeringSnapshot.Change(interface: "eth0", what: "rx_queues", queue: nil, before: "4", after: "2")
    ]
    let drift = try XCTUnwrap(check.findings(changes: changes, since: 0).first)
    XCTAssertEqual(drift.id, "steering_changed")
    XCTAssertEqual(drift.evidence, ["rx_queues: 4 -> 2"])
    XCTAssertEqual(check.findings(changes: [], since: 0), [])
  }
}
