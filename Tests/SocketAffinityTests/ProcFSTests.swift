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

  /// The /proc/P/ns/net link (`netns` in every answer); the live one of
  /// this process must parse too.
  func testNamespaceInodeLinks() throws {
    XCTAssertEqual(ProcFS.inode(inLink: "net:[4026531840]", kind: "net"), 4_026_531_840)
    XCTAssertNil(ProcFS.inode(inLink: "mnt:[4026531840]", kind: "net"))
    XCTAssertNil(ProcFS.inode(inLink: "/etc/hosts", kind: "net"))
    XCTAssertNil(ProcFS.inode(inLink: "net:[x]", kind: "net"))
    XCTAssertNotNil(ProcFS.networkNamespace(pid: getpid()))
  }

  func testACgroupIsWithinItselfAndItsAncestorsOnly() {
    XCTAssertTrue(ProcFS.cgroup("/system.slice/nginx.service", isWithin: "/system.slice"))
    XCTAssertTrue(ProcFS.cgroup("/system.slice", isWithin: "/system.slice"))
    XCTAssertTrue(ProcFS.cgroup("/a/b", isWithin: "/"))
    XCTAssertFalse(ProcFS.cgroup("/system.slice-2/x", isWithin: "/system.slice"), "a sibling with the same prefix")
    XCTAssertFalse(ProcFS.cgroup("/user.slice", isWithin: "/system.slice"))
  }
}
