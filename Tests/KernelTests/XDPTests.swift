import Foundation
import Glibc
import XCTest

/// XDP before the stack, against the kernel's own answers: a veth pair made
/// by the test, its receiving end in sockaff's namespace running a
/// generic-mode XDP program that redirects every frame through a cpumap to
/// one CPU (the test's own program, `peer.py xdp-cpumap`, held by a BPF
/// link for as long as its process lives).
final class XDPTests: KernelTestCase {
  static let device = "sockaff-xdp"
  static let peerDevice = "sockaff-xdpp"
  static let address = "192.0.2.10"  // TEST-NET-1, on the test's own veth only
  static let peerAddress = "192.0.2.9"

  override func setUpWithError() throws {
    try super.setUpWithError()
    guard sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 else {
      throw HarnessError("the cpumap test moves packets to another CPU: it needs 2 online CPUs")
    }
  }

  /// The program the kernel reports on the interface (`ip -d -j link show`).
  func kernelXDPProgram() throws -> Int? {
    let output = try Command.must(["ip", "-d", "-j", "link", "show", "dev", Self.device])
    let links = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]]
    let xdp = links?.first?["xdp"] as? [String: Any]
    if let program = xdp?["prog"] as? [String: Any] { return program["id"] as? Int }
    let attached = xdp?["attached"] as? [[String: Any]]
    return (attached?.first?["prog"] as? [String: Any])?["id"] as? Int
  }

  func testThePathNamesTheCPUMapThatMovedTheStackAndThePredictionRefuses() throws {
    let namespace = "sockaff-xdp-\(getpid())"
    _ = try? Command.run(["ip", "link", "del", Self.device])
    try Command.must(["ip", "netns", "add", namespace])
    // Deleting the namespace deletes its veth end, and so the pair.
    defer {
      _ = try? Command.run(["ip", "netns", "del", namespace])
      _ = try? Command.run(["ip", "link", "del", Self.device])
    }
    try Command.must([
      "ip", "link", "add", Self.device, "type", "veth", "peer", "name", Self.peerDevice, "netns", namespace,
    ])
    try Command.must(["ip", "addr", "add", "\(Self.address)/30", "dev", Self.device])
    try Command.must(["ip", "link", "set", Self.device, "up"])
    try Command.must(["ip", "-n", namespace, "addr", "add", "\(Self.peerAddress)/30", "dev", Self.peerDevice])
    try Command.must(["ip", "-n", namespace, "link", "set", Self.peerDevice, "up"])
    try attach()
    // Sender and receiver on CPU 0; the cpumap sends every frame to CPU 1.
    let target = 1
    let pair = try PeerPair.start(
      transport: "udp", serverHost: Self.address, clientNamespace: namespace, connectOnFirst: true, serverCPU: 0,
      clientCPU: 0)
    let xdp = try Peer(["xdp-cpumap", Self.device, "\(target)"])
    try pair.exchange(40)
    settle()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    let path = answer["path"] as? [String: Any]
    if let refused = xdp.hello["refused"] as? String {
      // The kernel refused the test's own XDP program (a refusal, not a
      // malformed request): none is attached, and sockaff must say none,
      // as the kernel does.
      let refusals = ["Errno 1]", "Errno 13]", "Errno 95]", "Errno 524]"]
      XCTAssertTrue(refusals.contains { refused.contains($0) }, "the test's XDP program failed: \(refused)")
      XCTAssertNil(try kernelXDPProgram(), "refused (\(refused)), yet the kernel shows a program")
      XCTAssertTrue(path?["xdp"] is NSNull, "no XDP on \(Self.device): \(path ?? [:])")
      return
    }
    let programID = try XCTUnwrap(xdp.hello["prog_id"] as? Int)
    let mapID = try XCTUnwrap(xdp.hello["map_id"] as? Int)
    XCTAssertEqual(try kernelXDPProgram(), programID, "the kernel's program on \(Self.device)")
    // The kernel's answer for where the stack ran: the cpumap's CPU.
    XCTAssertEqual(try kernelIncomingCPU(pid: pair.server.pid, fd: pair.serverFD), Int32(target))
    XCTAssertEqual(answer["cpu"] as? Int, target)
    let shares = (answer["cpus"] as? [[String: Any]] ?? []).compactMap { $0["cpu"] as? Int }
    XCTAssertEqual(shares, [target], "every datagram processed on the cpumap's CPU, none on the senders'")
    let programs = (path?["xdp"] as? [String: Any])?["programs"] as? [[String: Any]] ?? []
    XCTAssertEqual(programs.count, 1, "\(path ?? [:])")
    XCTAssertEqual(programs.first?["id"] as? Int, programID)
    XCTAssertEqual(programs.first?["mode"] as? String, "generic")
    let cpumaps = programs.first?["cpumaps"] as? [[String: Any]] ?? []
    XCTAssertEqual(cpumaps.first?["id"] as? Int, mapID)
    XCTAssertEqual(cpumaps.first?["cpus"] as? [Int], [target], "the one entry the test wrote")
    let text = try Command.sockaff("query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)")
    XCTAssertTrue(
      text.stdout.contains("xdp program \(programID) sockaff_xdp (generic) -> cpumap \(mapID) cpus \(target)"),
      text.stdout)
    let predicted = try Command.sockaff("query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)", "--predict")
    XCTAssertEqual(predicted.status, 15, "\(predicted.stdout) \(predicted.stderr)")
    XCTAssertTrue(
      predicted.stderr.contains(
        "XDP program \(programID) (generic) redirects through cpumap \(mapID) (cpus \(target))"),
      predicted.stderr)
    try xdp.finish()
    settle()
    XCTAssertNil(try kernelXDPProgram(), "the link went with its process")
  }
}
