import Foundation
import Glibc
import XCTest

/// `sockaff list`: a process's sockets, shared sockets, other namespaces.
final class ListTests: KernelTestCase {
  func testListShowsEachSocketOfAProcessOnce() throws {
    try attach()
    let peer = try Peer(["multi", "127.0.0.1"])
    peer.startExchanges(20)
    try peer.waitDone()
    settle()
    let listed = try listJSON("--pid", "\(peer.pid)")
    let byFD = Dictionary(grouping: listed, by: { $0["fd"] as? Int ?? -1 })
    let expected: [(key: String, proto: String, local: String, connected: Bool)] = [
      ("listen_fd", "tcp", "127.0.0.1:\(peer.hello["tcp_port"]!)", false),
      ("accepted_fd", "tcp", "127.0.0.1:\(peer.hello["tcp_port"]!)", true),
      ("client_fd", "tcp", "", true),
      ("udp_connected_fd", "udp", "127.0.0.1:\(peer.hello["udp_connected_port"]!)", true),
      ("udp_unconnected_fd", "udp", "127.0.0.1:\(peer.hello["udp_unconnected_port"]!)", false),
    ]
    for socket in expected {
      let fd = peer.fd(socket.key)
      guard let entries = byFD[Int(fd)] else {
        XCTFail("\(socket.key) (fd \(fd)) not listed: \(listed.map { $0["fd"]! })")
        continue
      }
      XCTAssertEqual(entries.count, 1, "\(socket.key) listed once")
      let entry = entries[0]
      XCTAssertEqual(entry["protocol"] as? String, socket.proto, socket.key)
      XCTAssertEqual(entry["pid"] as? Int, Int(peer.pid))
      XCTAssertEqual(entry["command"] as? String, "python3")
      XCTAssertEqual(entry["connected"] as? Bool, socket.connected, socket.key)
      if !socket.local.isEmpty { XCTAssertEqual(entry["local"] as? String, socket.local, socket.key) }
      let kernel = try kernelIncomingCPU(pid: peer.pid, fd: fd)
      if kernel >= 0 { XCTAssertEqual(entry["cpu"] as? Int, Int(kernel), socket.key) }
    }
    XCTAssertEqual(listed.count, expected.count, "nothing else: \(listed.map { $0["fd"]! })")
  }

  func testSocketSharedAfterForkIsListedUnderBothHolders() throws {
    try attach()
    let parent = try Peer(["fork-share", "127.0.0.1"])
    let child = Int32(parent.hello["child_pid"] as! Int)
    let client = try Peer(["udp-client", "127.0.0.1", "\(parent.hello["port"]!)"])
    parent.startExchanges(10)
    client.startExchanges(10)
    try client.waitDone()
    try parent.waitDone()
    let listed = try listJSON()
    let holders = listed.filter { $0["local"] as? String == "127.0.0.1:\(parent.hello["port"]!)" }
    XCTAssertEqual(Set(holders.compactMap { $0["pid"] as? Int }), [Int(parent.pid), Int(child)])
    XCTAssertEqual(Set(holders.compactMap { $0["cookie"] as? Int }).count, 1, "one socket, one cookie")
  }

  func testProcessInAnotherNetworkNamespaceIsListedWithItsAddresses() throws {
    try attach()
    let namespaces = try NetworkNamespacePair()
    let pair = try PeerPair.start(
      transport: "tcp", serverHost: NetworkNamespacePair.receiverAddress, clientNamespace: namespaces.sender,
      serverNamespace: namespaces.receiver)
    try pair.exchange(10)
    let listed = try listJSON()
    let server = listed.filter { $0["pid"] as? Int == Int(pair.server.pid) && $0["fd"] as? Int == Int(pair.serverFD) }
    XCTAssertEqual(server.count, 1)
    XCTAssertEqual(
      server.first?["local"] as? String, "\(NetworkNamespacePair.receiverAddress):\(pair.server.hello["port"]!)")
    XCTAssertTrue((server.first?["remote"] as? String ?? "").hasPrefix("\(NetworkNamespacePair.senderAddress):"))
    XCTAssertEqual(server.first?["interface"] as? String, NetworkNamespacePair.receiverDevice)
    let namespaceLink = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pair.server.pid)/ns/net")
    XCTAssertEqual(namespaceLink, "net:[\(server.first?["netns"] as? Int ?? -1)]")
    let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
    XCTAssertNotEqual(namespaceLink, own)
  }

  func testListOfAMissingProcessIsAnError() throws {
    try attach()
    let child = try Command.run(["sh", "-c", "echo $$"])
    let pid = child.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let result = try Command.sockaff("list", "--pid", pid)
    XCTAssertEqual(result.status, 3, result.stderr)
    XCTAssertEqual(result.stdout, "")
  }
}
