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
      let path = answer["path"] as? [String: Any]
      XCTAssertEqual(path?["software_interface"] as? Bool, true, "loopback has no device")
      XCTAssertEqual(path?["receive_cpu"] as? Int, Int(kernel))
      XCTAssertTrue(path?["irq"] is NSNull, "no queue interrupt on loopback")
      XCTAssertTrue(answer["irq"] is NSNull)
    }
  }

  /// RSS decides nothing on loopback, nor for a socket without a peer:
  /// `--predict` says why, with its own exit status, and prints nothing else.
  func testPredictionSaysWhyNotOnLoopbackAndUnconnected() throws {
    let tcp = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    let connected = try Command.sockaff(
      "query", "--pid", "\(tcp.server.pid)", "--fd", "\(tcp.serverFD)", "--predict")
    XCTAssertEqual(connected.status, 15, connected.stderr)
    XCTAssertTrue(connected.stderr.contains("lo has no RSS"), connected.stderr)
    XCTAssertEqual(connected.stdout, "")
    let udp = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    let unconnected = try Command.sockaff(
      "query", "--pid", "\(udp.server.pid)", "--fd", "\(udp.serverFD)", "--predict", "--json")
    XCTAssertEqual(unconnected.status, 15, unconnected.stderr)
    XCTAssertTrue(unconnected.stdout.contains("\"kind\" : \"not_predictable\""), unconnected.stdout)
    XCTAssertTrue(unconnected.stderr.contains("not connected"), unconnected.stderr)
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
