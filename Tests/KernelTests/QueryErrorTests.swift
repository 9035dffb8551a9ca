import Foundation
import Glibc
import XCTest

/// Query errors beyond the bad-input table (BadInputTests): no tracer, and
/// the --json error object.
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

  /// Without the tracer a connected socket is answered from what the kernel
  /// keeps (SO_INCOMING_CPU), saying what that lacks; a socket the kernel
  /// knows nothing about (unconnected UDP) still needs the tracer: exit 8.
  func testQueryWithTracerDetached() throws {
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    // A delayed ACK landing between the answer and the kernel's own read
    // moves SO_INCOMING_CPU (seen once in CI): compare on the last packet.
    settle()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(answer["source"] as? String, "kernel")
    XCTAssertEqual(answer["cpu"] as? Int, Int(try kernelIncomingCPU(pid: pair.server.pid, fd: pair.serverFD)))
    XCTAssertTrue(answer["packets"] is NSNull, "no history without the tracer")
    XCTAssertTrue((answer["limits"] as? String ?? "").contains("sockaff trace"), "\(answer)")
    XCTAssertEqual(answer["interface"] as? String, "lo", "the interface holding the socket's address")
    let udp = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try udp.exchange(5)
    try assertQueryFails(pid: udp.server.pid, fd: udp.serverFD, status: 8, mentioning: ["sockaff trace"])
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

}
