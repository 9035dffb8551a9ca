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
    let kinds = SockaffError.Kind.allCases
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

  /// The exit statuses live in one place (`Kind.exitStatus`): docs/USAGE.md's
  /// table and the man page (generated from `--help`, which prints
  /// `exitStatusTable`) must list exactly those, with 0 and 64.
  func testUsageDocumentsExactlyTheExitStatuses() throws {
    let usage = URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appending(path: "docs/USAGE.md")
    let text = try String(contentsOf: usage, encoding: .utf8)
    guard let start = text.range(of: "## Errors and exit statuses"),
      let end = text.range(of: "\n## ", range: start.upperBound..<text.endIndex)
    else { return XCTFail("docs/USAGE.md has no 'Errors and exit statuses' section") }
    let documented = text[start.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line -> Int32? in
      let cells = line.split(separator: "|", omittingEmptySubsequences: false)
      return cells.count > 2 ? Int32(cells[1].trimmingCharacters(in: .whitespaces)) : nil
    }
    XCTAssertEqual(documented, SockaffError.exitStatusTable.map(\.status), "docs/USAGE.md's exit statuses, in order")
    XCTAssertEqual(Set(SockaffError.exitStatusTable.map(\.status)).count, SockaffError.Kind.allCases.count + 2)
  }
}
