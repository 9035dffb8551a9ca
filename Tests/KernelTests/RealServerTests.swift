import Foundation
import Glibc
import XCTest

/// An unmodified server from Debian's packages as the target, not a test
/// helper: socat's TCP echo (PIPE) in its own network namespace, its
/// receive steered by RPS. sockaff finds the accepted socket by listing the
/// process and must agree with the steering and with SO_INCOMING_CPU.
final class RealServerTests: KernelTestCase {
  func testSocatEchoServerFollowsRPSSteering() throws {
    guard (try? Command.run(["which", "socat"]).status) == 0 else { throw HarnessError("needs socat") }
    try attach()
    let namespaces = try NetworkNamespacePair()
    let address = NetworkNamespacePair.receiverAddress
    let socat = try Child([
      "ip", "netns", "exec", namespaces.receiver, "socat", "TCP-LISTEN:7777,bind=\(address),reuseaddr", "PIPE",
    ])
    let client = try connectWhenListening { try Peer(["tcp-client", address, "7777"], namespace: namespaces.sender) }

    for cpu in [1, 0, 1] {
      try namespaces.steerReceive(toCPU: cpu)
      client.startExchanges(30)
      try client.waitDone()
      settle()
      let sockets = try listJSON("--pid", "\(socat.pid)")
      let accepted = sockets.filter { ($0["remote"] as? String)?.hasPrefix(NetworkNamespacePair.senderAddress) == true }
      XCTAssertEqual(accepted.count, 1, "socat's accepted connection is listed once: \(sockets)")
      guard let socket = accepted.first, let fd = socket["fd"] as? Int else { continue }
      XCTAssertEqual(socket["command"] as? String, "socat")
      XCTAssertEqual(socket["cpu"] as? Int, cpu, "RPS steered socat's receive to CPU \(cpu)")
      XCTAssertEqual(try kernelIncomingCPU(pid: socat.pid, fd: Int32(fd)), Int32(cpu), "the kernel agrees")
    }
  }

  /// Retries `connect` while the server is still starting to listen.
  func connectWhenListening(_ connect: () throws -> Peer) throws -> Peer {
    for _ in 0..<50 {
      if let peer = try? connect() { return peer }
      usleep(100_000)
    }
    return try connect()
  }
}
