import XCTest

@testable import SocketAffinity

/// A census's totals from answers made by hand: each socket once however
/// many processes hold it, cross-NUMA per holder by its threads' nodes.
final class KernelCensusTests: XCTestCase {
  func answer(pid: Int32, cookie: UInt64, cpu: Int, node: Int, threadNodes: [Int], queue: UInt32?) -> SocketAffinity {
    SocketAffinity(
      pid: pid, fd: 3, command: "nginx", networkNamespace: nil, cookie: cookie, family: .inet, transport: .tcp,
      local: nil, remote: nil, connected: true, cpu: cpu, processor: nil, numaNode: node, rxQueue: queue, napiID: nil,
      ifindex: nil, interface: queue == nil ? nil : "eth0", packets: nil, bytes: nil, cpuChanges: nil, cpus: [],
      otherCPUsPackets: nil, firstSeen: nil, lastSeen: nil, kernelIncomingCPU: Int32(cpu), source: .kernel,
      consumerCPU: nil, reads: nil, threadNodes: threadNodes, locality: nil, crossNUMA: nil)
  }

  func testEachSocketCountsOnceAndCrossNUMAPerHolder() {
    var listing = SocketListing.Result(
      sockets: [
        // One listener's accepted socket held by two workers, one of them on the other node.
        answer(pid: 10, cookie: 1, cpu: 0, node: 0, threadNodes: [0], queue: 2),
        answer(pid: 11, cookie: 1, cpu: 0, node: 0, threadNodes: [1], queue: 2),
        answer(pid: 10, cookie: 2, cpu: 3, node: 1, threadNodes: [0], queue: nil),
        // Threads unknown: not called cross-NUMA.
        answer(pid: 12, cookie: 3, cpu: 3, node: 1, threadNodes: [], queue: 5),
      ], notPermitted: [99])
    listing.withoutReceiveCPU = 7
    let census = KernelCensus(listing: listing, topology: Topology(cpusByNode: [0: [0, 1], 1: [2, 3]]))
    XCTAssertEqual(census.sockets, 3)
    XCTAssertEqual(census.socketsByCPU, [0: 1, 3: 2])
    XCTAssertEqual(census.socketsByNode, [0: 1, 1: 2])
    XCTAssertEqual(
      census.socketsByQueue, [.init(interface: "eth0", queue: 2): 1, .init(interface: "eth0", queue: 5): 1])
    XCTAssertEqual(census.crossNUMASockets, 2, "pid 11's hold of socket 1, pid 10's socket 2")
    XCTAssertEqual(census.withoutReceiveCPU, 7)
    XCTAssertEqual(census.skippedProcesses, 1)
  }
}
