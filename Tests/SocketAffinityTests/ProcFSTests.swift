import SocketAffinity
import XCTest

final class ProcFSTests: XCTestCase {
  /// Field 39 counted from the last ')', whatever the command name holds.
  func testLastCPUFromStatLines() {
    let tail =
      "S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 1000 10 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 3 0 0 0 0 0"
    XCTAssertEqual(ProcFS.lastCPU(statLine: "812 (nginx) " + tail), 3)
    XCTAssertEqual(ProcFS.lastCPU(statLine: "812 (a) b (c)) " + tail), 3, "parentheses and spaces in comm")
    XCTAssertEqual(
      ProcFS.lastCPU(statLine: "812 (x y) " + tail.replacingOccurrences(of: " 17 3 ", with: " 17 12 ")), 12)
  }

  func testMalformedStatLines() {
    XCTAssertNil(ProcFS.lastCPU(statLine: ""))
    XCTAssertNil(ProcFS.lastCPU(statLine: "812 nginx S 1 2 3"))
    XCTAssertNil(ProcFS.lastCPU(statLine: "812 (nginx) S 1 2 3"))
    XCTAssertNil(ProcFS.lastCPU(statLine: "812 (nginx) " + String(repeating: "x ", count: 40)))
  }

  func testInodeLinks() {
    XCTAssertEqual(ProcFS.inode(inLink: "socket:[31577]", kind: "socket"), 31577)
    XCTAssertEqual(ProcFS.inode(inLink: "net:[4026531840]", kind: "net"), 4_026_531_840)
    XCTAssertNil(ProcFS.inode(inLink: "pipe:[12]", kind: "socket"))
    XCTAssertNil(ProcFS.inode(inLink: "/etc/hosts", kind: "socket"))
    XCTAssertNil(ProcFS.inode(inLink: "socket:[x]", kind: "socket"))
  }
}
