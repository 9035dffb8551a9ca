import CSockaffABI
import XCTest

@testable import SocketAffinity

/// The scrape's totals from the kernel pass's entries alone, without root:
/// what every host-wide series sums is decided here, from entries whose
/// truth is known by construction.
final class HostReceiveSummaryTests: XCTestCase {
  let topology = Topology(cpusByNode: [0: [0, 1], 1: [2, 3]])

  func entry(
    pid: UInt32, fd: UInt32, cookie: UInt64, ownerCPU: Int, packets: UInt64, unpooled: UInt64 = 0,
    reads: UInt64 = 10, sameNode: UInt64 = 10, transport: UInt16 = 17
  ) -> HeldSockets.Entry {
    var entry = sockaff_held_socket()
    (entry.tgid, entry.fd, entry.cookie) = (pid, fd, cookie)
    (entry.family, entry.type, entry.protocol) = (2, transport == 6 ? 1 : 2, transport)
    (entry.owner_cpu, entry.latest_cpu, entry.owner_packets) = (UInt32(ownerCPU + 1), UInt32(max(ownerCPU, 0)), packets)
    entry.unpooled_packets = unpooled
    (entry.reads, entry.reads_same_node) = (reads, sameNode)
    return entry
  }

  func summarize(_ entries: [HeldSockets.Entry]) throws -> HostReceiveSummary {
    try entries.withUnsafeBufferPointer { buffer in
      try HostReceiveSummary.summarize(buffer, top: 0, maps: nil, topology: topology)
    }
  }

  func testTotalsCountEachSocketOnceAndEveryHolder() throws {
    let summary = try summarize([
      entry(pid: 100, fd: 3, cookie: 1, ownerCPU: 0, packets: 40),
      // The same socket in a forked worker: once in the totals, twice in `sockets`.
      entry(pid: 101, fd: 3, cookie: 1, ownerCPU: 0, packets: 40),
      entry(pid: 200, fd: 5, cookie: 2, ownerCPU: 3, packets: 7, unpooled: 5, sameNode: 1),
      entry(pid: 300, fd: 4, cookie: 3, ownerCPU: 2, packets: 11, transport: 6),
    ])
    XCTAssertEqual(summary.sockets, 4, "one per holder, as list rows")
    XCTAssertEqual(summary.packetsByCPU, [0: 40, 3: 7, 2: 11], "each socket once; unpooled packets have no CPU")
    XCTAssertEqual(summary.packetsByNode, [0: 40, 1: 18])
    // Read on the receiving node 1 time in 10: cross-NUMA, for its one holder.
    XCTAssertEqual(summary.crossNUMASockets, 1)
    XCTAssertEqual(summary.crossNUMAProcesses.map(\.pid), [200])
    XCTAssertEqual(summary.busiest.count, 0, "top 0: no socket opened")
    XCTAssertEqual(summary.rxQueues, [], "no entry recorded a queue")
  }

  func testEntriesThatAreNotTracedTCPOrUDPAreLeftOut() throws {
    var unix = entry(pid: 1, fd: 1, cookie: 9, ownerCPU: 1, packets: 3)
    unix.family = 1
    let unclaimed = entry(pid: 1, fd: 2, cookie: 10, ownerCPU: -1, packets: 0)
    let summary = try summarize([unix, unclaimed, entry(pid: 1, fd: 3, cookie: 11, ownerCPU: 1, packets: 2)])
    XCTAssertEqual(summary.sockets, 1)
    XCTAssertEqual(summary.packetsByCPU, [1: 2])
  }
}
