import XCTest

@testable import SocketAffinity

/// A thread's blocking call and an epoll instance's registrations, as
/// /proc prints them (the kernel tests check the same on live threads).
final class WaitingThreadsTests: XCTestCase {
  func testTheBlockingCallNamesItsFirstArgument() throws {
    #if arch(x86_64)
      let epollWait = "232 0x7 0x7f0a1c000b70 0x1 0xffffffffffffffff 0x0 0x0 0x7ffd6c5f0c48 0x7f0a2b3c4d5e"
      let accept = "288 0x3 0x0 0x0 0x80800 0x0 0x0 0x7ffd6c5f0c48 0x7f0a2b3c4d5e"
      let nanosleep = "230 0x1 0x0 0x7ffd6c5f0c50 0x0 0x0 0x0 0x7ffd6c5f0c48 0x7f0a2b3c4d5e"
    #elseif arch(arm64)
      let epollWait = "22 0x7 0x7f0a1c000b70 0x1 0xffffffffffffffff 0x0 0x8 0x7ffd6c5f0c48 0x7f0a2b3c4d5e"
      let accept = "242 0x3 0x0 0x0 0x80800 0x0 0x0 0x7ffd6c5f0c48 0x7f0a2b3c4d5e"
      let nanosleep = "101 0x1 0x0 0x7ffd6c5f0c50 0x0 0x0 0x0 0x7ffd6c5f0c48 0x7f0a2b3c4d5e"
    #endif
    let waiting = try XCTUnwrap(WaitingThreads.blockingCall(syscallLine: epollWait))
    XCTAssertEqual(waiting.fd, 7)
    XCTAssertTrue(waiting.isEpollWait)
    let accepting = try XCTUnwrap(WaitingThreads.blockingCall(syscallLine: accept))
    XCTAssertEqual(accepting.fd, 3)
    XCTAssertFalse(accepting.isEpollWait)
    XCTAssertNil(WaitingThreads.blockingCall(syscallLine: nanosleep), "a call that names no socket")
    XCTAssertNil(WaitingThreads.blockingCall(syscallLine: "running\n"))
    XCTAssertNil(WaitingThreads.blockingCall(syscallLine: "-1 0x7ffd6c5f0c48 0x7f0a2b3c4d5e\n"), "blocked in no call")
  }

  func testAnEpollInstancesRegisteredFDs() {
    let fdinfo = """
      pos:	0
      flags:	02000002
      mnt_id:	15
      ino:	1057
      tfd:        5 events:       19 data:                5  pos:0 ino:4f2b sdev:8
      tfd:       12 events:       19 data:                c  pos:0 ino:4f2c sdev:8

      """
    XCTAssertEqual(WaitingThreads.epollTargetFDs(fdinfo: fdinfo), [5, 12])
    XCTAssertEqual(WaitingThreads.epollTargetFDs(fdinfo: "pos:\t0\nflags:\t02\n"), [])
  }
}
