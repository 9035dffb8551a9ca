import Foundation
import Glibc
import XCTest

/// Bad input: one line on stderr, a distinct exit status, nothing on stdout.
final class QueryErrorTests: KernelTestCase {
  func assertQueryFails(
    pid: Int32, fd: Int32, status: Int32, mentioning words: [String],
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let result = try Command.sockaff("query", "--pid", "\(pid)", "--fd", "\(fd)")
    XCTAssertEqual(result.status, status, "exit status; stderr: \(result.stderr)", file: file, line: line)
    XCTAssertEqual(result.stdout, "", "nothing on stdout", file: file, line: line)
    let lines = result.stderr.split(separator: "\n")
    XCTAssertEqual(lines.count, 1, "one line on stderr: \(result.stderr)", file: file, line: line)
    for word in words {
      XCTAssertTrue(result.stderr.contains(word), "stderr mentions \(word): \(result.stderr)", file: file, line: line)
    }
  }

  func testRegularFileIsNotASocket() throws {
    try attach()
    let holder = try Peer(["hold"])
    try assertQueryFails(
      pid: holder.pid, fd: holder.fd("file_fd"), status: 5,
      mentioning: ["pid \(holder.pid) fd \(holder.fd("file_fd"))", "non-socket", "/etc/"])
  }

  func testPipeIsNotASocket() throws {
    try attach()
    let holder = try Peer(["hold"])
    try assertQueryFails(pid: holder.pid, fd: holder.fd("pipe_fd"), status: 5, mentioning: ["pipe:"])
  }

  func testUnixSocketIsNotSupported() throws {
    try attach()
    let holder = try Peer(["hold"])
    try assertQueryFails(
      pid: holder.pid, fd: holder.fd("unix_fd"), status: 6, mentioning: ["not supported", "unix stream socket"])
  }

  func testNetlinkSocketIsNotSupported() throws {
    try attach()
    let holder = try Peer(["hold"])
    try assertQueryFails(pid: holder.pid, fd: holder.fd("netlink_fd"), status: 6, mentioning: ["netlink"])
  }

  func testProcessThatDoesNotExist() throws {
    try attach()
    // A child that has exited and been reaped: its pid names no process.
    let child = try Command.run(["sh", "-c", "echo $$"])
    let pid = Int32(child.stdout.trimmingCharacters(in: .whitespacesAndNewlines))!
    try assertQueryFails(pid: pid, fd: 0, status: 3, mentioning: ["pidfd_open(pid \(pid))", "No such process"])
  }

  func testFileDescriptorThatDoesNotExist() throws {
    try attach()
    let holder = try Peer(["hold"])
    try assertQueryFails(pid: holder.pid, fd: 999, status: 4, mentioning: ["fd 999", "Bad file descriptor"])
  }

  func testQueryWithTracerDetached() throws {
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    try assertQueryFails(pid: pair.server.pid, fd: pair.serverFD, status: 8, mentioning: ["sockaff trace"])
  }

  func testJSONErrorIsOneObjectWithTheExitStatus() throws {
    try attach()
    let holder = try Peer(["hold"])
    let result = try Command.sockaff("query", "--pid", "\(holder.pid)", "--fd", "\(holder.fd("unix_fd"))", "--json")
    XCTAssertEqual(result.status, 6)
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["kind"] as? String, "unsupported_socket")
    XCTAssertEqual(object?["exit_status"] as? Int, 6)
    XCTAssertEqual(object?["errno"] as? Int, Int(EOPNOTSUPP))
  }

  func testUsageErrorsExitWith64() throws {
    let missing = try Command.sockaff("query", "--pid", "1")
    XCTAssertEqual(missing.status, 64, missing.stderr)
    let nonNumeric = try Command.sockaff("query", "--pid", "abc", "--fd", "1")
    XCTAssertEqual(nonNumeric.status, 64, nonNumeric.stderr)
    XCTAssertEqual(nonNumeric.stdout, "")
  }
}
