import Foundation
import Glibc
import XCTest

/// One socket received on every CPU at once, as RSS spreads an unconnected
/// UDP socket or a listener over a NIC's queues. On loopback a sender pinned
/// to CPU N is received on CPU N, so each CPU's count is known by
/// construction, and the kernel's own MIB counters (per network namespace,
/// read through /proc/PID/net of a process inside it) give the total.
/// Exactness is tested by equality: two CPUs rarely lose an increment to a
/// race, 16 lose a third (BENCHMARKS.md), so nothing but equality shows it.
final class FanInTests: KernelTestCase {
  static let fanin = Command.packageRoot.appending(path: "Tests/KernelTests/Peers/fanin.py")
    .path(percentEncoded: false)

  var cpus: [Int] { Array(0..<Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

  override func setUpWithError() throws {
    try super.setUpWithError()
    guard cpus.count >= 2 else { throw HarnessError("fan-in tests need at least 2 online CPUs") }
  }

  /// Runs one fanin.py per CPU, pinned there, at once; returns when each
  /// has printed its line (the UDP senders then exit; the TCP clients hold
  /// their connections until the returned peers are released).
  @discardableResult
  func fanIn(namespace: String, _ arguments: [String]) throws -> [Peer] {
    let peers = try cpus.map { cpu in
      try Peer.starting(["--cpu", "\(cpu)"] + arguments, namespace: namespace, script: Self.fanin)
    }
    for peer in peers { _ = try peer.readLine(timeout: 120) }
    return peers
  }

  /// Each CPU's count of packets its backlog dropped before any socket saw
  /// them (/proc/net/softnet_stat: a line per CPU, the second column, hex).
  static func backlogDrops() throws -> [Int] {
    try String(contentsOfFile: "/proc/net/softnet_stat", encoding: .utf8).split(separator: "\n").map { line in
      let columns = line.split(separator: " ")
      guard columns.count > 1, let dropped = Int(columns[1], radix: 16) else {
        throw HarnessError("softnet_stat line \(line)")
      }
      return dropped
    }
  }

  /// Packets per CPU in a query answer.
  func packetsByCPU(_ answer: [String: Any]) -> [Int: Int] {
    let shares = answer["cpus"] as? [[String: Any]] ?? []
    return Dictionary(uniqueKeysWithValues: shares.map { ($0["cpu"] as! Int, $0["packets"] as! Int) })
  }

  func testUDPSocketReceivedOnEveryCPUIsCountedExactly() throws {
    try attach()
    let namespaces = try NetworkNamespacePair()
    let namespace = namespaces.receiver
    let sink = try Peer(["udp-sink", "127.0.0.1"], namespace: namespace, script: Self.fanin)
    let port = sink.hello["port"] as! Int
    let perCPU = 200_000
    var traced = (packets: 0, bytes: 0)
    var expectedByCPU: [Int: Int] = [:]
    for round in 1...3 {
      let before = try SNMP(pid: sink.pid)
      let dropsBefore = try Self.backlogDrops()
      try fanIn(namespace: namespace, ["udp-send", "127.0.0.1", "\(port)", "\(perCPU)"])
      sink.send("drain")
      _ = try sink.readLine(timeout: 60)
      let after = try SNMP(pid: sink.pid)
      // Datagrams a CPU's backlog dropped never reached the socket: the
      // kernel counts them per CPU, and they are not the socket's.
      let dropped = zip(try Self.backlogDrops(), dropsBefore).map { $0 - $1 }
      // Every datagram that reached the socket's receive path: read (after
      // the drain), or dropped there for want of buffer or memory.
      let delivered = try ["InDatagrams", "RcvbufErrors", "MemErrors"].reduce(0) {
        try $0 + after.value("Udp", $1) - before.value("Udp", $1)
      }
      XCTAssertEqual(
        delivered, perCPU * cpus.count - dropped.reduce(0, +),
        "round \(round): the kernel delivered every datagram sent but those its backlogs dropped")
      let answer = try queryJSON(pid: sink.pid, fd: sink.fd())
      let packets = answer["packets"] as! Int
      let bytes = answer["bytes"] as! Int
      XCTAssertEqual(packets - traced.packets, delivered, "round \(round): traced packets equal the UDP MIB's")
      // 64 bytes of payload, 8 of UDP header, 20 of IPv4 header.
      XCTAssertEqual(bytes - traced.bytes, delivered * (64 + 8 + 20), "round \(round): bytes")
      traced = (packets, bytes)
      for cpu in cpus { expectedByCPU[cpu, default: 0] += perCPU - dropped[cpu] }
      XCTAssertEqual(packetsByCPU(answer), expectedByCPU, "round \(round): every CPU's count is what was sent there")
      XCTAssertEqual(answer["other_cpus_packets"] as? Int, 0)
      XCTAssertEqual(answer["cpus_complete"] as? Bool, true)
      XCTAssertTrue(cpus.contains(answer["cpu"] as? Int ?? -1))
    }
  }

  /// A listener gets a SYN and the handshake's last ACK per connection
  /// while the connections stay open; the kernel counts the handshakes
  /// (PassiveOpens) and would count any other segment the listener answers
  /// (OutRsts). Closing every socket gives every pool slot back (sock_release).
  func testTCPListenerUnderConnectionsFromEveryCPUIsCountedExactly() throws {
    try attach()
    let namespaces = try NetworkNamespacePair()
    let namespace = namespaces.receiver
    let listener = try Peer(["tcp-listen", "127.0.0.1"], namespace: namespace, script: Self.fanin)
    let pid = listener.pid
    let fd = listener.fd()
    let port = listener.hello["port"] as! Int
    let perCPU = 2_000
    let before = try SNMP(pid: pid)
    let clients = try fanIn(namespace: namespace, ["tcp-connect", "127.0.0.1", "\(port)", "\(perCPU)"])
    settle()
    let after = try SNMP(pid: pid)
    for (group, field) in [
      ("TcpExt", "ListenDrops"), ("TcpExt", "ListenOverflows"), ("TcpExt", "TCPSynRetrans"), ("Tcp", "OutRsts"),
    ] {
      XCTAssertEqual(try after.value(group, field) - before.value(group, field), 0, "\(field): no handshake repeated")
    }
    let handshakes = try after.value("Tcp", "PassiveOpens") - before.value("Tcp", "PassiveOpens")
    XCTAssertEqual(handshakes, perCPU * cpus.count)
    let answer = try queryJSON(pid: pid, fd: fd)
    XCTAssertEqual(answer["packets"] as? Int, 2 * handshakes, "a SYN and an ACK per handshake")
    XCTAssertEqual(
      packetsByCPU(answer), Dictionary(uniqueKeysWithValues: cpus.map { ($0, 2 * perCPU) }),
      "each CPU received the handshakes of the clients pinned there")
    XCTAssertEqual(answer["cpus_complete"] as? Bool, true)

    // Every socket closed: the listener's slot and its children's are back.
    for peer in clients + [listener] { try peer.finish() }
    settle()
    let status = try Command.sockaff("status", "--json")
    let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["pool_slots_in_use"] as? Int, 0, status.stdout)
    XCTAssertEqual(object?["pool_exhausted_sockets"] as? Int, 0, status.stdout)
  }

  /// Connections left in a listener's accept queue when it closes are
  /// freed by the kernel without close() ever running on them, so the pool
  /// release program never sees them: each child socket that received on
  /// two CPUs took a slot, and only the TCP_CLOSE program gives it back.
  /// Truth: the listener's accept queue (`ss`) holds every connection, the
  /// slots in use grow by at least that many, and after the close they are
  /// back to where they started. With the tracepoint refused, the slots
  /// stay held: the test sees the leak it guards against.
  func testUnacceptedConnectionsGiveTheirPoolSlotsBack() throws {
    let count = 500
    func slotsInUse() throws -> Int {
      let status = try Command.sockaff("status", "--json")
      let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
      return object?["pool_slots_in_use"] as? Int ?? -1
    }
    func eventually(_ done: (Int) -> Bool) throws -> Int {
      var inUse = try slotsInUse()
      for _ in 0..<50 where !done(inUse) {
        usleep(100_000)
        inUse = try slotsInUse()
      }
      return inUse
    }
    for refused in [false, true] {
      if refused {
        let trace = try Command.run(
          ["/usr/bin/env", "SOCKAFF_REFUSE=tp_btf/inet_sock_set_state", Command.sockaffPath, "trace"])
        XCTAssertEqual(trace.status, 0, trace.stderr)
        XCTAssertFalse(KernelListing.pinsLeft().contains("closed_link"))
      } else {
        try attach()
        XCTAssertTrue(KernelListing.pinsLeft().contains("closed_link"), "\(KernelListing.pinsLeft())")
      }
      let baseline = try slotsInUse()
      let peer = try Peer(["unaccepted", "\(count)"], script: Peer.loadScript)
      XCTAssertEqual(peer.hello["connections"] as? Int, count)
      let port = peer.hello["port"] as! Int
      // The kernel's own word that the connections wait unaccepted: the
      // listener's Recv-Q is its accept queue's length.
      let listening = try Command.must(["ss", "-Htln", "sport", "= :\(port)"])
      XCTAssertEqual(
        listening.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first, "\(count)", listening)
      XCTAssertGreaterThanOrEqual(try slotsInUse() - baseline, count, "each child received on two CPUs")
      peer.send("close")
      XCTAssertEqual(try peer.readLine()["closed"] as? Bool, true)
      let after = try eventually { refused ? false : $0 <= baseline }
      if refused {
        XCTAssertGreaterThanOrEqual(after - baseline, count, "without the program the children keep their slots")
      } else {
        XCTAssertEqual(after, baseline, "every slot is back")
      }
      try Command.sockaff("detach")
    }
  }

  /// A pool of one slot: the second socket received on two CPUs finds it
  /// full; its packets are still all counted, marked as not split by CPU.
  func testFullPoolIsSaidNotMiscounted() throws {
    try attach("--pool-slots", "1")
    let namespaces = try NetworkNamespacePair()
    let namespace = namespaces.receiver
    let sinks = try (0..<2).map { _ in
      try Peer(["udp-sink", "127.0.0.1"], namespace: namespace, script: Self.fanin)
    }
    let perCPU = 1_000
    for sink in sinks {
      try fanIn(namespace: namespace, ["udp-send", "127.0.0.1", "\(sink.hello["port"] as! Int)", "\(perCPU)"])
    }
    let answers = try sinks.map { try queryJSON(pid: $0.pid, fd: $0.fd()) }
    for answer in answers { XCTAssertEqual(answer["packets"] as? Int, perCPU * cpus.count, "every packet counted") }
    XCTAssertEqual(answers.map { $0["cpus_complete"] as? Bool }, [true, false], "the second found the pool full")
    let second = answers[1]
    XCTAssertEqual(
      packetsByCPU(second).values.reduce(0, +) + (second["other_cpus_packets"] as! Int), perCPU * cpus.count)
    XCTAssertEqual(second["other_cpus_packets"] as? Int, perCPU * (cpus.count - 1), "all but the first CPU's")
    let status = try Command.sockaff("status", "--json")
    let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["pool_slots"] as? Int, 1)
    XCTAssertEqual(object?["pool_slots_in_use"] as? Int, 1)
    XCTAssertEqual(object?["pool_exhausted_sockets"] as? Int, 1)

    // The first socket closed gives its slot back; the next socket takes it.
    try sinks[0].finish()
    let third = try Peer(["udp-sink", "127.0.0.1"], namespace: namespace, script: Self.fanin)
    try fanIn(namespace: namespace, ["udp-send", "127.0.0.1", "\(third.hello["port"] as! Int)", "\(perCPU)"])
    let reused = try queryJSON(pid: third.pid, fd: third.fd())
    XCTAssertEqual(reused["cpus_complete"] as? Bool, true, "the slot given back was taken again")
    XCTAssertEqual(
      packetsByCPU(reused), Dictionary(uniqueKeysWithValues: cpus.map { ($0, perCPU) }),
      "a reused slot holds only the new socket's counts")
  }
}

/// A process's view of /proc/net/snmp and /proc/net/netstat: the MIB
/// counters of its network namespace, as "Group: names" / "Group: values"
/// line pairs.
struct SNMP {
  private var values: [String: Int] = [:]

  init(pid: Int32) throws {
    for file in ["snmp", "netstat"] {
      let lines = try String(contentsOfFile: "/proc/\(pid)/net/\(file)", encoding: .utf8).split(separator: "\n")
      for index in stride(from: 0, to: lines.count - 1, by: 2) {
        let names = lines[index].split(separator: " ")
        let numbers = lines[index + 1].split(separator: " ")
        guard let group = names.first, names.count == numbers.count else { continue }
        for (name, number) in zip(names.dropFirst(), numbers.dropFirst()) {
          values["\(group.dropLast()).\(name)"] = Int(number)
        }
      }
    }
  }

  /// A counter this kernel must have: a missing one fails, never reads as 0.
  func value(_ group: String, _ name: String) throws -> Int {
    guard let value = values["\(group).\(name)"] else { throw HarnessError("no \(group) \(name) in /proc/net") }
    return value
  }
}
