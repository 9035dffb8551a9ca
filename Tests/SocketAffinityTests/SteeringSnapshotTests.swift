import Foundation
import XCTest

@testable import SocketAffinity

/// What changed in a NIC's steering since the tracer attached: every kind
/// of change, named, with before and after; nothing when nothing changed.
final class SteeringSnapshotTests: XCTestCase {
  static func nic(
    _ name: String = "eth0", queues: Int = 4, key: String? = "6d5a56da255b0ec2", table: [UInt32]? = [0, 1, 2, 3],
    function: String? = "toeplitz", transform: String? = "none", irqs: [String: [Int]] = ["rx-0": [0], "rx-1": [2]]
  ) -> SteeringSnapshot.NIC {
    SteeringSnapshot.NIC(
      interface: name, rxQueues: queues, hashFunction: function, inputTransform: transform, key: key, table: table,
      irqCPUs: irqs)
  }

  func changes(_ before: [SteeringSnapshot.NIC], _ after: [SteeringSnapshot.NIC]) -> [SteeringSnapshot.Change] {
    SteeringSnapshot(takenAt: 0, nics: before).changes(to: SteeringSnapshot(takenAt: 1, nics: after))
  }

  func testNothingChangedIsNothing() {
    XCTAssertEqual(changes([Self.nic()], [Self.nic()]), [])
  }

  func testEveryKindOfChangeIsNamed() {
    let after = Self.nic(
      queues: 2, key: "6e5a56da255b0ec2", table: [0, 1, 0, 1], function: "xor", transform: "symmetric-xor",
      irqs: ["rx-0": [6], "rx-1": [2]])
    let found = changes([Self.nic()], [after])
    XCTAssertEqual(
      found.map(\.what), ["rx_queues", "hash_function", "input_transform", "rss_key", "rss_table", "irq_cpus"])
    XCTAssertEqual(found.first { $0.what == "rx_queues" }.map { [$0.before, $0.after] }, ["4", "2"])
    let irq = found.first { $0.what == "irq_cpus" }
    XCTAssertEqual(irq?.queue, 0)
    XCTAssertEqual(irq.map { [$0.before, $0.after] }, ["cpus 0", "cpus 6"])
    let key = found.first { $0.what == "rss_key" }
    XCTAssertEqual(key.map { [$0.before, $0.after] }, ["6d5a56da…", "6e5a56da…"], "the key's first bytes, not all")
    XCTAssertEqual(
      found.first { $0.what == "rss_table" }?.after, "4 entries over queues 0,1")
  }

  /// Keys that differ only past their first bytes still count as changed.
  func testAKeyChangedPastItsFirstBytesIsStillAChange() {
    let found = changes([Self.nic()], [Self.nic(key: "6d5a56da255b0ec3")])
    XCTAssertEqual(found.map(\.what), ["rss_key"])
    XCTAssertNotEqual(found.first?.before, found.first?.after)
  }

  func testInterfacesGoneAndNewAreChanges() {
    let found = changes([Self.nic("eth0")], [Self.nic("eth1")])
    XCTAssertEqual(found.map { "\($0.interface) \($0.after)" }, ["eth0 gone", "eth1 present"])
  }

  /// Saved whole and read back equal; a missing file is no snapshot.
  func testSavedSnapshotReadsBack() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sockaff-snapshot-\(getpid())")
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("steering.json").path
    let snapshot = SteeringSnapshot(takenAt: 1_796_000_000.5, nics: [Self.nic()])
    try snapshot.save(path)
    XCTAssertEqual(SteeringSnapshot.load(path), snapshot)
    XCTAssertNil(SteeringSnapshot.load(path + ".missing"))
  }
}
