import XCTest

@testable import SocketAffinity

/// An interface's receive steering read from a fixture of a 4-queue
/// virtio-net guest (8 CPUs, the NIC on node 1): queue → IRQ by the
/// driver's IRQ names, each IRQ's CPUs, RPS and RFS per queue.
final class SteeringTests: XCTestCase {
  func queues(_ interface: String) -> InterfaceQueues {
    InterfaceQueues(
      interface: interface, sys: Fixture.path("rss-virtio/sys"), proc: Fixture.path("rss-virtio/proc"),
      netlink: false)
  }

  func testInterruptsParseNumberedLinesOnly() throws {
    let lines = Interrupts.parse(try Fixture.text("rss-virtio/proc/interrupts"))
    XCTAssertEqual(lines[27]?.name, "virtio0-input.1")
    XCTAssertEqual(lines[27]?.counts, [1, 811, 0, 0, 0, 0, 0, 0])
    XCTAssertEqual(lines[0]?.name, "timer")
    XCTAssertNil(lines.values.first { $0.name.contains("Non-maskable") }, "NMI, LOC, ERR are not IRQs")
    XCTAssertEqual(lines.count, 12)
  }

  func testQueuesMapToTheirInputInterrupts() {
    let eth0 = queues("eth0")
    XCTAssertEqual(eth0.rxQueues, 4)
    XCTAssertTrue(eth0.hasDevice)
    XCTAssertEqual(eth0.deviceNode, 1, "the PCI function's node, above the virtio device")
    XCTAssertEqual(eth0.irqByQueue.mapValues(\.irq), [0: 25, 1: 27, 2: 29, 3: 31])
    // eth9-rx-1 names queue 1 too, but it is not one of this device's MSI vectors.
    XCTAssertEqual(eth0.irqByQueue[1]?.name, "virtio0-input.1")
    XCTAssertEqual(eth0.irqSource, [0: "sysfs", 1: "sysfs", 2: "sysfs", 3: "sysfs"], "no netlink: the names")
  }

  func testInterruptCPUsPreferTheEffectiveAffinity() {
    let eth0 = queues("eth0")
    XCTAssertEqual(eth0.irqCPUs[25], [0], "effective 0 although the mask allows 0-7")
    XCTAssertEqual(eth0.irqCPUs[29], [2])
    XCTAssertEqual(eth0.irqCPUs[31], [3], "no effective list: the mask")
  }

  func testRPSAndRFSPerQueue() {
    let eth0 = queues("eth0")
    XCTAssertEqual(eth0.rpsCPUs[2], [0, 7])
    XCTAssertEqual(eth0.rpsCPUs[0], [])
    XCTAssertTrue(eth0.rfs(queue: 3))
    XCTAssertFalse(eth0.rfs(queue: 2))
  }

  func testAnInterfaceWithoutADeviceHasNoInterrupts() {
    let lo = queues("lo")
    XCTAssertFalse(lo.hasDevice)
    XCTAssertNil(lo.deviceNode)
    XCTAssertEqual(lo.irqByQueue.count, 0)
  }

  func testCPUMasks() {
    XCTAssertEqual(InterfaceQueues.parseCPUMask("00000000,00000003\n"), [0, 1])
    XCTAssertEqual(InterfaceQueues.parseCPUMask("1,00000000"), [32])
    XCTAssertEqual(InterfaceQueues.parseCPUMask("0"), [])
    XCTAssertEqual(InterfaceQueues.parseCPUMask("zz"), [])
  }

  /// Microsoft's first IPv4 verification vector, as the receiver sees it.
  static let firstVectorFlow = ReceivedFlow(
    source: ToeplitzTests.bytes("66.9.149.187"), sourcePort: 2794,
    destination: ToeplitzTests.bytes("161.142.100.80"), destinationPort: 1766, tcp: true)

  /// The prediction indexes the table by the Toeplitz hash of the flow's
  /// hashed fields: with Microsoft's key, the first IPv4 vector's hash
  /// 0x51ccc178 picks entry 0x78 of a 128-entry table.
  func testPredictionIndexesTheTableByTheHash() throws {
    let table = (0..<128).map { UInt32($0 % 4) }
    let configuration = RSSConfiguration(
      interface: "eth0", hashFunction: .toeplitz, key: ToeplitzTests.key, table: table, rxRings: 4, ntupleRules: 0)
    let flow = Self.firstVectorFlow
    let withPorts = try RSSPrediction.predict(flow: flow, configuration: configuration, fields: .addressesAndPorts)
    XCTAssertEqual(withPorts.hash, 0x51cc_c178)
    XCTAssertEqual(withPorts.tableIndex, 0x78)
    XCTAssertEqual(withPorts.rxQueue, 0x78 % 4)
    let addressesOnly = try RSSPrediction.predict(flow: flow, configuration: configuration, fields: .addresses)
    XCTAssertEqual(addressesOnly.hash, 0x323e_8fc2)
    XCTAssertEqual(addressesOnly.tableIndex, 0x42)
    XCTAssertFalse(addressesOnly.hashedPorts)
  }

  /// Tables of any size (bnxt's newer firmware: 512 entries): the hash
  /// modulo the size picks the entry.
  func testLargeTablesAreIndexedByTheHashModuloTheirSize() throws {
    let table = (0..<512).map { UInt32($0 % 12) }
    let configuration = RSSConfiguration(
      interface: "eth0", hashFunction: .toeplitz, key: ToeplitzTests.key, table: table, rxRings: 12, ntupleRules: 0)
    let flow = Self.firstVectorFlow
    let prediction = try RSSPrediction.predict(flow: flow, configuration: configuration, fields: .addressesAndPorts)
    XCTAssertEqual(prediction.tableIndex, Int(0x51cc_c178 % 512), "0x178: beyond a 128-entry table's reach")
    XCTAssertEqual(prediction.rxQueue, 0x178 % 12)
  }

  func testPredictionSaysWhyNot() {
    let flow = ReceivedFlow(
      source: [10, 0, 0, 1], sourcePort: 1, destination: [10, 0, 0, 2], destinationPort: 2, tcp: false)
    let xor = RSSConfiguration(
      interface: "eth0", hashFunction: .xor, key: ToeplitzTests.key, table: [0], rxRings: 1, ntupleRules: 0)
    XCTAssertThrowsError(try RSSPrediction.predict(flow: flow, configuration: xor, fields: .addressesAndPorts)) {
      XCTAssertEqual($0 as? RSSPrediction.Impossible, .notToeplitz(.xor))
    }
    let toeplitz = RSSConfiguration(
      interface: "eth0", hashFunction: .toeplitz, key: ToeplitzTests.key, table: [0], rxRings: 1, ntupleRules: 0)
    XCTAssertThrowsError(try RSSPrediction.predict(flow: flow, configuration: toeplitz, fields: nil)) {
      XCTAssertEqual($0 as? RSSPrediction.Impossible, .unknownHashFields)
    }
  }
}
