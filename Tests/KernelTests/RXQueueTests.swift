import Glibc
import XCTest

/// Ground truth for the RX queue: a veth pair with several queues. XPS puts
/// the packets a CPU sends on a chosen TX queue; veth hands them to the peer
/// with that queue index recorded (the kernel reads TX queue t as RX queue
/// t - 1, and TX queue 0 as "not recorded"); RPS then uses that RX queue's
/// own rps_cpus map. The RPS maps send each RX queue to a different CPU than
/// the sender's, so the receive CPU shows which queue the kernel used.
final class RXQueueTests: KernelTestCase {
  func testReportedRXQueueIsTheQueueWhoseRPSMapSteeredThePackets() throws {
    guard sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 else { throw HarnessError("needs at least 2 online CPUs") }
    try attach()
    let namespaces = try NetworkNamespacePair(queues: 3)
    // Sender on CPU c uses TX queue c + 1, arriving as RX queue c ...
    try namespaces.setQueueMask("tx-0", cpus: [])
    try namespaces.setQueueMask("tx-1", cpus: [0])
    try namespaces.setQueueMask("tx-2", cpus: [1])
    // ... whose RPS map sends it to the other CPU.
    let rpsCPU = [1, 0]
    try namespaces.setQueueMask("rx-0", cpus: [rpsCPU[0]])
    try namespaces.setQueueMask("rx-1", cpus: [rpsCPU[1]])
    try namespaces.setQueueMask("rx-2", cpus: [])
    let server = try Peer(["udp-server", NetworkNamespacePair.receiverAddress], namespace: namespaces.receiver)
    let port = "\(server.hello["port"] as! Int)"
    // Resolve the neighbour first: a packet held for ARP is sent later from
    // the softirq of the ARP reply, on whatever CPU that ran, and its socket
    // keeps that TX queue.
    let warmUp = try Peer(["udp-client", NetworkNamespacePair.receiverAddress, port], namespace: namespaces.sender)
    server.startExchanges(1)
    warmUp.startExchanges(1)
    try warmUp.waitDone()
    try server.waitDone()
    for senderCPU in [0, 1, 0] {
      // A new client each round: a socket keeps the TX queue of its first
      // packet (UDP never re-picks), so XPS applies to new sockets only.
      let client = try Peer(
        ["--cpu", "\(senderCPU)", "udp-client", NetworkNamespacePair.receiverAddress, port],
        namespace: namespaces.sender)
      server.startExchanges(20)
      client.startExchanges(20)
      try client.waitDone()
      try server.waitDone()
      settle()
      let answer = try queryJSON(pid: server.pid, fd: server.fd())
      let queue = senderCPU
      XCTAssertEqual(answer["rx_queue"] as? Int, queue, "sender on CPU \(senderCPU): \(answer)")
      XCTAssertEqual(
        answer["cpu"] as? Int, rpsCPU[queue], "received on RX queue \(queue)'s RPS CPU, not the sender's")
    }
  }
}
