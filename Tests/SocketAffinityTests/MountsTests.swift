import SocketAffinity
import XCTest

final class MountsTests: XCTestCase {
  func testHybridHostUsesTheUnifiedMount() throws {
    let entries = Mounts.parse(try Fixture.text("mounts-hybrid.txt"))
    XCTAssertEqual(Mounts.cgroup2Root(in: entries), "/sys/fs/cgroup/unified")
    XCTAssertFalse(Mounts.isBPFFSMounted(in: entries))
  }

  func testUnifiedHostUsesSysFsCgroup() throws {
    let entries = Mounts.parse(try Fixture.text("mounts-unified.txt"))
    XCTAssertEqual(Mounts.cgroup2Root(in: entries), "/sys/fs/cgroup")
    XCTAssertTrue(Mounts.isBPFFSMounted(in: entries))
  }

  func testOctalEscapesAreDecoded() throws {
    let entries = Mounts.parse(try Fixture.text("mounts-unified.txt"))
    XCTAssertTrue(entries.contains { $0.mountPoint == "/mnt/with space" })
  }

  func testNoCgroup2AndMalformedLines() {
    let entries = Mounts.parse("garbage\n\nnone /x cgroup rw 0 0\n")
    XCTAssertEqual(entries.count, 1)
    XCTAssertNil(Mounts.cgroup2Root(in: entries))
  }

  func testCgroup2ElsewhereIsFound() {
    let entries = Mounts.parse("cgroup2 /run/cg2 cgroup2 rw 0 0\n")
    XCTAssertEqual(Mounts.cgroup2Root(in: entries), "/run/cg2")
  }
}
