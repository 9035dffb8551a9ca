import SocketAffinity
import XCTest

final class TopologyTests: XCTestCase {
  /// A two-node host that is not this one: node0 = CPUs 0-1, node1 = CPUs 2-3.
  func testTwoNodeSysfsFixture() throws {
    let topology = try Topology.fromSysfs(root: Fixture.path("two-node"))
    XCTAssertEqual(topology.nodes, [0, 1])
    XCTAssertEqual(topology.cpus, [0, 1, 2, 3])
    XCTAssertEqual(topology.node(ofCPU: 1), 0)
    XCTAssertEqual(topology.node(ofCPU: 2), 1)
    XCTAssertEqual(topology.processorNumber(ofCPU: 3), ProcessorNumber(group: 0, number: 3))
    XCTAssertNil(topology.node(ofCPU: 4))
  }

  func testSmallHostIsGroupZeroInNodeOrder() {
    // Interleaved CPU ids: numbers follow node order, then CPU order.
    let topology = Topology(cpusByNode: [0: [0, 2], 1: [1, 3]])
    XCTAssertEqual(topology.processorNumber(ofCPU: 2), ProcessorNumber(group: 0, number: 1))
    XCTAssertEqual(topology.processorNumber(ofCPU: 1), ProcessorNumber(group: 0, number: 2))
  }

  /// A node never spans two groups: two 48-CPU nodes do not share group 0.
  func testNodeThatDoesNotFitStartsANewGroup() {
    let topology = Topology(cpusByNode: [0: Array(0..<48), 1: Array(48..<96)])
    XCTAssertEqual(topology.processorNumber(ofCPU: 47), ProcessorNumber(group: 0, number: 47))
    XCTAssertEqual(topology.processorNumber(ofCPU: 48), ProcessorNumber(group: 1, number: 0))
    XCTAssertEqual(topology.processorNumber(ofCPU: 95), ProcessorNumber(group: 1, number: 47))
  }

  func testNodesThatFitShareAGroup() {
    let topology = Topology(cpusByNode: [0: Array(0..<32), 1: Array(32..<64), 2: Array(64..<96)])
    XCTAssertEqual(topology.processorNumber(ofCPU: 63), ProcessorNumber(group: 0, number: 63))
    XCTAssertEqual(topology.processorNumber(ofCPU: 64), ProcessorNumber(group: 1, number: 0))
  }

  /// A node larger than a group fills whole groups of 64; the next node joins
  /// the last of them when it fits there whole.
  func testNodeLargerThanAGroupIsSplit() {
    let topology = Topology(cpusByNode: [0: Array(0..<100), 1: Array(100..<110)])
    XCTAssertEqual(topology.processorNumber(ofCPU: 63), ProcessorNumber(group: 0, number: 63))
    XCTAssertEqual(topology.processorNumber(ofCPU: 64), ProcessorNumber(group: 1, number: 0))
    XCTAssertEqual(topology.processorNumber(ofCPU: 99), ProcessorNumber(group: 1, number: 35))
    XCTAssertEqual(topology.processorNumber(ofCPU: 100), ProcessorNumber(group: 1, number: 36))
  }

  /// libnuma and sysfs must agree about this host.
  func testLiveTopologyMatchesThisHostsSysfs() throws {
    let live = Topology.live()
    XCTAssertFalse(live.cpus.isEmpty)
    // Every Linux kernel built with NUMA support has it, one node or many.
    XCTAssertTrue(FileManager.default.fileExists(atPath: "/sys/devices/system/node"), "no NUMA sysfs here")
    XCTAssertEqual(live, try Topology.fromSysfs(root: "/sys"))
  }
}
