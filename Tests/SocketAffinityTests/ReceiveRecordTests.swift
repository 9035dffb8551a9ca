import CSockaffABI
import SocketAffinity
import XCTest

final class ReceiveRecordTests: XCTestCase {
  /// A record owned by `owner` (its own packets in the per-packet group).
  func record(
    owner: UInt32, packets: UInt64, latest: UInt32? = nil, unpooled: UInt64 = 0, queueMapping: UInt32 = 0,
    cookie: UInt64 = 42
  ) -> sockaff_record {
    var raw = sockaff_record()
    raw.cookie = cookie
    raw.owner_cpu = owner + 1
    raw.owner.packets = packets
    raw.owner.bytes = packets * 100
    raw.latest_cpu = latest ?? owner
    raw.unpooled_packets = unpooled
    raw.unpooled_bytes = unpooled * 100
    raw.owner.rx_queue = queueMapping
    return raw
  }

  /// A pool slot's value on `cpus` CPUs: `packets[cpu]` for `cookie`.
  func shares(cpus: Int, packets: [Int: UInt64], cookie: UInt64 = 42) -> [sockaff_cpu_share] {
    (0..<cpus).map { cpu in
      var share = sockaff_cpu_share()
      share.cookie = cookie
      share.rx.packets = packets[cpu] ?? 0
      share.rx.bytes = (packets[cpu] ?? 0) * 100
      share.rx.rx_queue = UInt32(cpu) + 1
      return share
    }
  }

  func testOwnerAloneHasEveryPacket() {
    let decoded = ReceiveRecord(record(owner: 3, packets: 15))
    XCTAssertEqual(decoded.packetsByCPU.map(\.cpu), [3])
    XCTAssertEqual(decoded.packetsByCPU.map(\.packets), [15])
    XCTAssertEqual(decoded.packets, 15)
    XCTAssertEqual(decoded.bytes, 1_500)
    XCTAssertEqual(decoded.otherPackets, 0)
  }

  /// 64 CPUs each with their own count: all of them, exactly, no "other".
  func testEveryCPUOfAPoolSlotIsReported() {
    let counts = Dictionary(uniqueKeysWithValues: (1..<64).map { ($0, UInt64(1_000 + $0)) })
    let decoded = ReceiveRecord(record(owner: 0, packets: 7), shares: shares(cpus: 64, packets: counts))
    XCTAssertEqual(decoded.packetsByCPU.count, 64)
    XCTAssertEqual(decoded.packets, 7 + counts.values.reduce(0, +))
    XCTAssertEqual(decoded.bytes, decoded.packets * 100)
    XCTAssertEqual(decoded.packetsByCPU.first?.cpu, 63, "highest first")
    XCTAssertEqual(Dictionary(uniqueKeysWithValues: decoded.packetsByCPU.map { ($0.cpu, $0.packets) })[5], 1_005)
    XCTAssertEqual(decoded.otherPackets, 0)
  }

  /// A slot that another socket held before: CPUs that have not received
  /// this socket still hold the old socket's counts, under its cookie.
  func testSharesOfAnotherCookieAreNotCounted() {
    var pool = shares(cpus: 4, packets: [1: 10])
    pool[2] = shares(cpus: 4, packets: [2: 999], cookie: 7)[2]
    let decoded = ReceiveRecord(record(owner: 0, packets: 5), shares: pool)
    XCTAssertEqual(decoded.packetsByCPU.map(\.cpu), [1, 0])
    XCTAssertEqual(decoded.packets, 15)
  }

  func testUnpooledPacketsAreCountedButNotSplit() {
    let decoded = ReceiveRecord(record(owner: 1, packets: 10, unpooled: 30))
    XCTAssertEqual(decoded.packets, 40)
    XCTAssertEqual(decoded.otherPackets, 30)
    XCTAssertEqual(decoded.packetsByCPU.map(\.packets), [10])
  }

  /// Queue, NAPI id and interface come from the CPU of the latest packet.
  func testLatestCPUsQueueIsReported() {
    let decoded = ReceiveRecord(
      record(owner: 0, packets: 5, latest: 2, queueMapping: 9), shares: shares(cpus: 4, packets: [2: 1]))
    XCTAssertEqual(decoded.lastCPU, 2)
    XCTAssertEqual(decoded.rxQueue, 2, "CPU 2's share recorded queue_mapping 3")
    XCTAssertEqual(ReceiveRecord(record(owner: 0, packets: 5, queueMapping: 9)).rxQueue, 8)
  }

  func testQueueMappingIsRxQueuePlusOne() {
    XCTAssertNil(ReceiveRecord(record(owner: 0, packets: 1)).rxQueue)
    XCTAssertEqual(ReceiveRecord(record(owner: 0, packets: 1, queueMapping: 3)).rxQueue, 2)
  }

  func testLayoutIsWhatTheBPFProgramWrites() {
    XCTAssertEqual(MemoryLayout<sockaff_record>.size, 144)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.owner_cpu), 8)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.latest_cpu), 24)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.owner.packets), 56)
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.reads_and_cpu), 120)
    XCTAssertEqual(MemoryLayout<sockaff_cpu_share>.size, 48)
    XCTAssertEqual(MemoryLayout<sockaff_clock>.size, 32)
    // The held-sockets iterator's entries are read back-to-back: no padding.
    XCTAssertEqual(MemoryLayout<sockaff_held_socket>.size, 80)
    XCTAssertEqual(MemoryLayout<sockaff_held_socket>.stride, 80)
    // The census iterators' rows, as bpf_seq_write writes them back to back.
    XCTAssertEqual(MemoryLayout<sockaff_census_socket>.size, 80)
    XCTAssertEqual(MemoryLayout<sockaff_census_socket>.stride, 80)
  }

  /// Socket storage puts a 72-byte header (bpf_local_storage_elem up to its
  /// data, cache-line aligned) in front of each value and allocates from
  /// kmalloc size classes: a few bytes more and each socket costs a class more.
  static let elementHeader = 72

  func testRecordFitsKmalloc256() {
    XCTAssertLessThanOrEqual(Self.elementHeader + MemoryLayout<sockaff_record>.size, 256)
    XCTAssertLessThanOrEqual(Self.elementHeader + Int(SOCKAFF_RECORD_SIZE_WITHOUT_READS), 192)
  }

  /// The cache line (of the 64-byte aligned element) each field is on.
  func line(_ field: PartialKeyPath<sockaff_record>, last: Bool = false, size: Int = 8) -> Int {
    (Self.elementHeader + MemoryLayout<sockaff_record>.offset(of: field)! + (last ? size - 1 : 0)) / 64
  }

  /// What every packet reads (owner, pool slot, latest CPU: cold), what the
  /// owner writes per packet, and what every read writes are on three lines.
  func testColdPerPacketAndReadFieldsAreOnTheirOwnCacheLines() {
    let cold = [line(\.cookie), line(\.rx_hash_changes, last: true, size: 4)]
    let perPacket = [line(\.owner.packets), line(\.reserved_packet, last: true, size: 24)]
    let reads = [line(\.reads_and_cpu), line(\.reads_same_node, last: true)]
    XCTAssertEqual(Set(cold).count, 1, "cold fields: one line")
    XCTAssertEqual(Set(perPacket).count, 1, "per-packet fields: one line")
    XCTAssertEqual(Set(reads).count, 1, "read counters: one line")
    XCTAssertEqual(Set([cold[0], perPacket[0], reads[0]]).count, 3)
    // The element's own map pointer (read by every lookup) shares the cold line.
    XCTAssertEqual((Self.elementHeader - 8) / 64, cold[0])
    XCTAssertEqual(MemoryLayout<sockaff_record>.offset(of: \.reads_and_cpu), Int(SOCKAFF_RECORD_SIZE_WITHOUT_READS))
  }

  func testReadsCountAndReaderCPUShareAWord() {
    var raw = record(owner: 0, packets: 1)
    raw.reads_and_cpu = (UInt64(511) << 48) | 1_000_000_007
    raw.reads_same_cpu = 10
    raw.reads_same_node = 20
    let decoded = ReceiveRecord(raw)
    XCTAssertEqual(decoded.reads, 1_000_000_007)
    XCTAssertEqual(decoded.readerCPU, 511)
    XCTAssertEqual(decoded.readsSameCPU, 10)
    XCTAssertEqual(decoded.readsSameNode, 20)
    XCTAssertNil(ReceiveRecord(record(owner: 0, packets: 1)).readerCPU)
  }
}
