import Foundation
import Glibc
import XCTest

/// `query --wait`: blocks until the socket's first traced packet.
final class WaitTests: KernelTestCase {
  func testWaitReturnsWhenTheFirstPacketArrives() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    let waiting = try Child([
      Command.sockaffPath, "query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)", "--wait", "20", "--json",
    ])
    usleep(700_000)
    XCTAssertTrue(waiting.isRunning, "nothing was sent yet: the query must still wait")
    let sent = Date()
    try pair.exchange(1)
    let output = waiting.output.readDataToEndOfFile()
    XCTAssertEqual(try waiting.wait(), 0)
    let elapsed = Date().timeIntervalSince(sent)
    XCTAssertLessThan(elapsed, 2, "answered soon after the packet, not at the time-out")
    let answer = try JSONSerialization.jsonObject(with: output) as? [String: Any]
    XCTAssertEqual(answer?["source"] as? String, "bpf")
    XCTAssertGreaterThanOrEqual(answer?["packets"] as? Int ?? 0, 1)
  }

  func testWaitTimesOutWithItsOwnStatus() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    let started = Date()
    let result = try Command.sockaff(
      "query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)", "--wait", "0.5")
    XCTAssertEqual(result.status, 10, result.stderr)
    XCTAssertEqual(result.stdout, "")
    XCTAssertTrue(result.stderr.contains("no packet received within 0.5 s"), result.stderr)
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.5)
  }

  func testWaitRejectsNegativeAndHugeValues() throws {
    for value in ["-1", "100000", "abc"] {
      let result = try Command.sockaff("query", "--pid", "1", "--fd", "0", "--wait", value)
      XCTAssertEqual(result.status, 64, "--wait \(value): \(result.stderr)")
    }
  }
}
