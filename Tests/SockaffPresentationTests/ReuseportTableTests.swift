import XCTest

@testable import SockaffPresentation
@testable import SocketAffinity

/// `list --reuseport`'s text: a heading per group, a row per member, the
/// off-node members flagged.
final class ReuseportTableTests: XCTestCase {
  func member(pid: Int32, threadCPUs: [Int], receivedCPU: Int, node: Int, sameNode: Double) -> ReuseportGroup.Member {
    ReuseportGroup.Member(
      cookie: UInt64(pid), holders: [.init(pid: pid, fd: 3, command: "server")], threadCPUs: threadCPUs,
      threadNodes: [0], threads: .waiting, incomingCPU: nil, packets: 30,
      cpus: [.init(cpu: receivedCPU, numaNode: node, packets: 30, share: 1)], readerCPU: nil,
      locality: .init(sameCPU: nil, sameNode: sameNode, source: .threadSampling), slots: [])
  }

  func testTheTableFlagsOffNodeMembers() {
    let group = ReuseportGroup(
      networkNamespace: 4_026_531_833, family: .inet, transport: .udp, local: "127.0.0.1:5353",
      boundInterface: "eth0",
      members: [
        member(pid: 10, threadCPUs: [0, 1], receivedCPU: 2, node: 1, sameNode: 0),
        member(pid: 11, threadCPUs: [1], receivedCPU: 1, node: 0, sameNode: 1),
      ], steering: .judge(members: [], hostPrograms: []))
    let lines = ReuseportTable.render([group]).split(separator: "\n").map(String.init)
    XCTAssertEqual(
      lines[0],
      "udp 127.0.0.1:5353 on eth0  netns 4026531833  2 members  steering: hash  1 received off their threads' node")
    XCTAssertTrue(lines[1].hasPrefix("  no map holds a member"), lines[1])
    XCTAssertTrue(lines[2].hasPrefix("  HOLDERS"), lines[2])
    XCTAssertTrue(
      lines[3].contains("10/3") && lines[3].contains("waiting  0-1") && lines[3].contains("0% thr")
        && lines[3].hasSuffix("yes !"), lines[3])
    XCTAssertTrue(lines[4].contains("11/3") && lines[4].contains("1:100%") && lines[4].hasSuffix("no"), lines[4])
  }
}
