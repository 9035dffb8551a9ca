import XCTest

/// Loopback traffic between two peer processes (not this test): the CPU that
/// sockaff reports for each side equals the kernel's SO_INCOMING_CPU.
final class QueryLoopbackTests: KernelTestCase {
  func testTCPv4BothSidesMatchIncomingCPU() throws {
    try assertBothSidesMatchKernel(transport: "tcp", host: "127.0.0.1", family: "inet")
  }

  func testTCPv6BothSidesMatchIncomingCPU() throws {
    try assertBothSidesMatchKernel(transport: "tcp", host: "::1", family: "inet6")
  }

  func testConnectedUDPv4BothSidesMatchIncomingCPU() throws {
    try assertBothSidesMatchKernel(transport: "udp", host: "127.0.0.1", family: "inet", connectOnFirst: true)
  }

  func testConnectedUDPv6BothSidesMatchIncomingCPU() throws {
    try assertBothSidesMatchKernel(transport: "udp", host: "::1", family: "inet6", connectOnFirst: true)
  }

  func assertBothSidesMatchKernel(
    transport: String, host: String, family: String, connectOnFirst: Bool = false
  ) throws {
    try attach()
    let pair = try PeerPair.start(transport: transport, serverHost: host, connectOnFirst: connectOnFirst)
    try pair.exchange(50)
    settle()
    for (peer, fd) in [(pair.server, pair.serverFD), (pair.client, pair.client.fd())] {
      let answer = try queryJSON(pid: peer.pid, fd: fd)
      let kernel = try kernelIncomingCPU(pid: peer.pid, fd: fd)
      XCTAssertGreaterThanOrEqual(kernel, 0, "the kernel must know the CPU of a connected socket")
      XCTAssertEqual(answer["cpu"] as? Int, Int(kernel), "\(transport) \(host) pid \(peer.pid) fd \(fd)")
      XCTAssertEqual(answer["source"] as? String, "bpf")
      XCTAssertEqual(answer["protocol"] as? String, transport)
      XCTAssertEqual(answer["family"] as? String, family)
      XCTAssertEqual(answer["connected"] as? Bool, true)
      XCTAssertEqual(answer["interface"] as? String, "lo")
      XCTAssertGreaterThanOrEqual(answer["packets"] as? Int ?? 0, 50)
      XCTAssertNotNil(answer["numa_node"] as? Int)
      XCTAssertEqual(answer["kernel_incoming_cpu"] as? Int, Int(kernel))
      let shares = answer["cpus"] as? [[String: Any]] ?? []
      let total = shares.compactMap { $0["packets"] as? Int }.reduce(0, +) + (answer["other_cpus_packets"] as? Int ?? 0)
      XCTAssertEqual(total, answer["packets"] as? Int, "per-CPU packets add up to the socket's packets")
    }
  }

  /// Windows refuses an unconnected UDP socket (WSAENOTCONN); sockaff answers
  /// with the receive CPUs and says it is unconnected, even though the
  /// kernel's SO_INCOMING_CPU stays -1 for such sockets.
  func testUnconnectedUDPIsAnsweredAndSaysSo() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(20)
    settle()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(answer["connected"] as? Bool, false)
    XCTAssertTrue(answer["remote"] is NSNull)
    XCTAssertEqual(answer["source"] as? String, "bpf")
    XCTAssertGreaterThanOrEqual(answer["packets"] as? Int ?? 0, 20)
    let cpus = (answer["cpus"] as? [[String: Any]] ?? []).compactMap { $0["cpu"] as? Int }
    XCTAssertTrue(cpus.contains(answer["cpu"] as? Int ?? -1))
    let text = try Command.sockaff("query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)")
    XCTAssertTrue(text.stdout.contains("(unconnected)"), text.stdout)
  }
}
