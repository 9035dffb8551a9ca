import Glibc
import SystemPackage
import XCTest

@testable import SocketAffinity

final class SockaffErrorTests: XCTestCase {
  func testErrnoMapsToTheDesignedKinds() {
    let cases: [(Errno, SockaffError.Kind)] = [
      (.noSuchProcess, .noSuchProcess), (.badFileDescriptor, .badFileDescriptor), (.notSocket, .notSocket),
      (.notSupported, .unsupportedSocket), (.notPermitted, .notPermitted), (.permissionDenied, .notPermitted),
      (.ioError, .other),
    ]
    for (errno, kind) in cases {
      XCTAssertEqual(SockaffError.fromErrno(errno, operation: "x").kind, kind, "\(errno)")
    }
  }

  func testEveryKindHasItsOwnExitStatus() {
    let kinds: [SockaffError.Kind] = [
      .noSuchProcess, .badFileDescriptor, .notSocket, .unsupportedSocket, .notPermitted, .notAttached,
      .noPacketsYet, .timedOut, .environment, .kernelUnsupported, .bpf, .incompatiblePins, .notPredictable, .other,
    ]
    let statuses = kinds.map { SockaffError($0, operation: "x").exitStatus }
    XCTAssertEqual(Set(statuses).count, kinds.count)
    XCTAssertFalse(statuses.contains(0))
    XCTAssertFalse(statuses.contains(64), "64 is the usage error of the argument parser")
  }

  func testMessageNamesOperationErrnoAndHint() {
    let error = SockaffError.fromErrno(
      .notPermitted, operation: "pidfd_getfd(pid 812, fd 9)", hint: "needs CAP_SYS_PTRACE")
    XCTAssertEqual(error.description, "pidfd_getfd(pid 812, fd 9): Operation not permitted (needs CAP_SYS_PTRACE)")
    let noErrno = SockaffError(.notAttached, operation: "query", hint: "tracer not attached")
    XCTAssertEqual(noErrno.description, "query: tracer not attached")
    XCTAssertFalse(error.description.contains("\n"))
  }
}
