import XCTest

@testable import SocketAffinity

/// Sums per holder cgroup: sockets per holder, a socket's packets once per
/// cgroup however many of its processes hold it, most sockets first.
final class CgroupSummaryTests: XCTestCase {
  func testHoldersAreSummedPerCgroup() throws {
    var tally = CgroupSummary.Tally()
    // A pre-fork server: two workers of one service hold the same listener.
    for pid: Int32 in [100, 101] {
      tally.add(
        cgroup: "/system.slice/web.service", pid: pid, cookie: 7, crossNUMA: true, packets: 50, byNode: [0: 30, 1: 20])
    }
    tally.add(cgroup: "/system.slice/web.service", pid: 100, cookie: 8, crossNUMA: false, packets: 10, byNode: [1: 10])
    tally.add(cgroup: nil, pid: 5, cookie: 9, crossNUMA: false, packets: 1, byNode: [0: 1])
    let summaries = tally.summaries
    XCTAssertEqual(summaries.map(\.cgroup), ["/system.slice/web.service", "unknown"], "most sockets first")
    let web = summaries[0]
    XCTAssertEqual(web.processes, 2)
    XCTAssertEqual(web.sockets, 3, "one per holder, as list rows")
    XCTAssertEqual(web.crossNUMASockets, 2)
    XCTAssertEqual(web.packets, 60, "the shared listener's 50 packets once, and the other socket's 10")
    XCTAssertEqual(web.packetsByNode, [0: 30, 1: 30])
    XCTAssertEqual(web.nodeShares, "0:50% 1:50%")
  }
}
