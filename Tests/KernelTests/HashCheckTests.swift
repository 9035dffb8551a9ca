import Foundation
import XCTest

/// The hash the tracer keeps for a connected socket is the one its packets
/// carried, as the kernel's own tracepoint (net:netif_rx_entry, read through
/// a tracefs instance of this test's own) shows for every packet that came
/// over loopback. Loopback has no NIC: the verdict is unverifiable, and says so.
final class HashCheckTests: KernelTestCase {
  /// A tracefs instance that records net:netif_rx_entry for loopback packets
  /// of one length; removed when the test ends, also when it fails.
  final class RxTrace {
    let directory: String
    static let tracefs = "/sys/kernel/tracing"

    init(length: Int) throws {
      if !FileManager.default.fileExists(atPath: "\(Self.tracefs)/instances") {
        let mounted = try Command.run(["/bin/mount", "-t", "tracefs", "nodev", Self.tracefs])
        XCTAssertEqual(mounted.status, 0, "tracefs: \(mounted.stderr)")
      }
      directory = "\(Self.tracefs)/instances/sockaff-test-\(getpid())"
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
      let event = "\(directory)/events/net/netif_rx_entry"
      try "len == \(length)".write(toFile: "\(event)/filter", atomically: false, encoding: .utf8)
      try "1".write(toFile: "\(event)/enable", atomically: false, encoding: .utf8)
    }

    /// Each traced packet's (device, hash, l4_hash).
    func packets() throws -> [(device: String, hash: UInt32, l4: Bool)] {
      // tracefs files say size 0: read to the end, not one page.
      let handle = try XCTUnwrap(FileHandle(forReadingAtPath: "\(directory)/trace"))
      defer { try? handle.close() }
      let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
      return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
        func value(_ key: String) -> String? {
          line.split(separator: " ").first { $0.hasPrefix("\(key)=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        guard let device = value("dev"), let hash = value("hash").flatMap({ UInt32($0.dropFirst(2), radix: 16) }),
          let l4 = value("l4_hash")
        else { return nil }
        return (device, hash, l4 == "1")
      }
    }

    deinit {
      try? "0".write(toFile: "\(directory)/events/net/netif_rx_entry/enable", atomically: false, encoding: .utf8)
      rmdir(directory)
    }
  }

  func testTCPKeptHashIsThePacketsHash() throws {
    // IPv4 + TCP with timestamps + the peers' 64-byte messages.
    try assertKeptHashIsThePacketsHash(transport: "tcp", length: 20 + 32 + 64)
  }

  func testConnectedUDPKeptHashIsThePacketsHash() throws {
    try assertKeptHashIsThePacketsHash(transport: "udp", length: 20 + 8 + 64, connectOnFirst: true)
  }

  func assertKeptHashIsThePacketsHash(transport: String, length: Int, connectOnFirst: Bool = false) throws {
    try attach()
    let pair = try PeerPair.start(transport: transport, serverHost: "127.0.0.1", connectOnFirst: connectOnFirst)
    let trace = try RxTrace(length: length)
    try pair.exchange(30)
    settle()
    let packets = try trace.packets().filter { $0.device == "lo" }
    XCTAssertGreaterThanOrEqual(packets.count, 60, "both directions' packets traced by the kernel")
    // Each direction is one flow with one hash (over loopback: the sender's).
    let kernelHashes = Set(packets.map(\.hash))
    var kept: Set<UInt32> = []
    for (peer, fd) in [(pair.server, pair.serverFD), (pair.client, pair.client.fd())] {
      let answer = try queryJSON(pid: peer.pid, fd: fd)
      let check = try XCTUnwrap(answer["hash_check"] as? [String: Any], "\(answer)")
      let observed = try XCTUnwrap(check["observed_hash"] as? Int, "\(check)")
      kept.insert(UInt32(observed))
      XCTAssertEqual(check["verdict"] as? String, "unverifiable")
      XCTAssertEqual(check["from_nic"] as? Bool, false)
      XCTAssertTrue(check["predicted_hash"] is NSNull)
      XCTAssertTrue((check["reason"] as? String ?? "").contains("lo has no NIC"), "\(check)")
    }
    XCTAssertEqual(kept, kernelHashes, "the kept hashes are the two directions' hashes the kernel traced")
    XCTAssertEqual(kept.count, 2, "the two directions carry different hashes")
  }

  /// An unconnected socket's packets are many flows: no hash kept, said why.
  func testUnconnectedSocketKeepsNoHash() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(10)
    settle()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    let check = try XCTUnwrap(answer["hash_check"] as? [String: Any], "\(answer)")
    XCTAssertTrue(check["observed_hash"] is NSNull, "\(check)")
    XCTAssertEqual(check["verdict"] as? String, "unverifiable")
    XCTAssertTrue((check["reason"] as? String ?? "").hasPrefix("not connected"), "\(check)")
  }
}
