import CSockaffABI
import SocketAffinity
import XCTest

final class ReceiveRecordTests: XCTestCase {
  func record(
    packets: UInt64, runStart: UInt64, lastCPU: UInt32, slots: [(UInt16, UInt64)], other: UInt64 = 0,
    queueMapping: UInt32 = 0
  ) -> sockaff_record {
    var raw = sockaff_record()
    raw.packets = packets
    raw.run_start_packets = runStart
    raw.last_cpu = lastCPU
    raw.other_packets = other
    raw.rx_queue = queueMapping
    var cpus = [UInt16](repeating: UInt16(SOCKAFF_NO_CPU), count: Int(SOCKAFF_SHARE_SLOTS))
    var counts = [UInt64](repeating: 0, count: Int(SOCKAFF_SHARE_SLOTS))
    for (index, slot) in slots.enumerated() { (cpus[index], counts[index]) = slot }
    withUnsafeMutableBytes(of: &raw.slot_cpu) { $0.copyBytes(from: cpus.withUnsafeBytes { Array($0) }) }
    withUnsafeMutableBytes(of: &raw.slot_packets) { $0.copyBytes(from: counts.withUnsafeBytes { Array($0) }) }
    return raw
  }

  func testCurrentRunIsAddedToLastCPU() {
    // 10 packets on CPU 0, then a run of 5 on CPU 3 still going.
    let decoded = ReceiveRecord(record(packets: 15, runStart: 10, lastCPU: 3, slots: [(0, 10)]))
    XCTAssertEqual(decoded.packetsByCPU.map(\.cpu), [0, 3])
    XCTAssertEqual(decoded.packetsByCPU.map(\.packets), [10, 5])
  }

  func testRunOnACPUWithASlotMerges() {
    let decoded = ReceiveRecord(record(packets: 30, runStart: 20, lastCPU: 1, slots: [(1, 12), (0, 8)]))
    XCTAssertEqual(decoded.packetsByCPU.map(\.cpu), [1, 0])
    XCTAssertEqual(decoded.packetsByCPU.map(\.packets), [22, 8])
  }

  func testSharesAddUpWithOtherCPUs() {
    let raw = record(packets: 100, runStart: 90, lastCPU: 7, slots: [(0, 20), (1, 20), (2, 20), (3, 20)], other: 10)
    let decoded = ReceiveRecord(raw)
    XCTAssertEqual(decoded.packetsByCPU.reduce(0) { $0 + $1.packets } + decoded.otherPackets, 100)
    XCTAssertEqual(decoded.packetsByCPU.first?.packets, 20)
  }

  func testQueueMappingIsRxQueuePlusOne() {
    XCTAssertNil(ReceiveRecord(record(packets: 1, runStart: 0, lastCPU: 0, slots: [])).rxQueue)
    XCTAssertEqual(ReceiveRecord(record(packets: 1, runStart: 0, lastCPU: 0, slots: [], queueMapping: 3)).rxQueue, 2)
  }

  func testLayoutIsWhatTheBPFProgramWrites() {
    XCTAssertEqual(MemoryLayout<sockaff_record>.size, 144)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.last_cpu), 8)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.packets), 80)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.reads_and_cpu), 120)
  }

  /// Socket storage puts a 72-byte header (bpf_local_storage_elem up to its
  /// data, cache-line aligned) in front of each value and allocates from
  /// kmalloc size classes: a few bytes more and each socket costs a class more.
  static let elementHeader = 72

  func testRecordFitsKmalloc256() {
    XCTAssertLessThanOrEqual(Self.elementHeader + MemoryLayout<sockaff_record>.size, 256)
  }

  /// The cache line (of the 64-byte aligned element) each field is on.
  func line(_ field: PartialKeyPath<sockaff_record>, last: Bool = false, size: Int = 8) -> Int {
    (Self.elementHeader + MemoryLayout<sockaff_record>.offset(of: field)! + (last ? size - 1 : 0)) / 64
  }

  /// What the reader reads (cookie, last_cpu: cold), what every packet
  /// writes, and what every read writes are on three different lines.
  func testColdPerPacketAndReadFieldsAreOnTheirOwnCacheLines() {
    let cold = [line(\.cookie), line(\.last_cpu, last: true, size: 4)]
    let perPacket = [line(\.packets), line(\.reserved, last: true, size: 4)]
    let reads = [line(\.reads_and_cpu), line(\.reads_same_node, last: true)]
    XCTAssertEqual(Set(cold).count, 1, "cold fields the reader reads: one line")
    XCTAssertEqual(Set(perPacket).count, 1, "per-packet fields: one line")
    XCTAssertEqual(Set(reads).count, 1, "read counters: one line")
    XCTAssertEqual(Set([cold[0], perPacket[0], reads[0]]).count, 3)
    // The element's own map pointer (read by every lookup) shares the cold line.
    XCTAssertEqual((Self.elementHeader - 8) / 64, cold[0])
  }

  func testReadsCountAndReaderCPUShareAWord() {
    var raw = record(packets: 1, runStart: 0, lastCPU: 0, slots: [])
    raw.reads_and_cpu = (UInt64(511) << 48) | 1_000_000_007
    raw.reads_same_cpu = 10
    raw.reads_same_node = 20
    let decoded = ReceiveRecord(raw)
    XCTAssertEqual(decoded.reads, 1_000_000_007)
    XCTAssertEqual(decoded.readerCPU, 511)
    XCTAssertEqual(decoded.readsSameCPU, 10)
    XCTAssertEqual(decoded.readsSameNode, 20)
    XCTAssertNil(ReceiveRecord(record(packets: 1, runStart: 0, lastCPU: 0, slots: [])).readerCPU)
  }
}
