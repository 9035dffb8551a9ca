import Foundation
import Glibc
import XCTest

/// `list --reuseport`: each member of a SO_REUSEPORT group, as the kernel
/// delivered to it. The members are separate peers, each pinned to a CPU;
/// what each one read or accepted (the kernel's own delivery) is the truth
/// its traced packets are compared with. The sender is pinned to CPU 1, and
/// loopback processes a packet on the sending CPU, so with the two-node
/// fixture a member pinned to CPU 0 is received off its node.
final class ReuseportTests: KernelTestCase {
  /// Members of one new group on 127.0.0.1, member i pinned to `cpus[i]`.
  func startGroup(_ transport: String, cpus: [Int]) throws -> [Peer] {
    var members: [Peer] = []
    var port = 0
    for cpu in cpus {
      let member = try Peer(["--cpu", "\(cpu)", "reuseport", transport, "127.0.0.1", "\(port)"])
      port = member.hello["port"] as! Int
      members.append(member)
    }
    return members
  }

  /// Each member's datagrams read (or connections accepted), drained until
  /// they add up to `total` (the kernel queues them asynchronously).
  func drain(_ members: [Peer], total: Int) throws -> [Int] {
    var counts: [Int] = []
    for _ in 0..<50 {
      counts = try members.map { member in
        member.send("drain")
        return try member.readLine()["received"] as! Int
      }
      if counts.reduce(0, +) >= total { break }
      usleep(100_000)
    }
    XCTAssertEqual(counts.reduce(0, +), total, "every datagram or connection reached a member")
    return counts
  }

  func groups(_ arguments: String...) throws -> [[String: Any]] {
    try jsonArray(["list", "--reuseport", "--json", "--sysfs-root", Self.twoNodeSysfs] + arguments)
  }

  /// The group on `port`, its members in the peers' order.
  func group(port: Int, of members: [Peer], in groups: [[String: Any]]) throws -> (
    group: [String: Any], members: [[String: Any]]
  ) {
    let matching = groups.filter { ($0["local"] as? String)?.hasSuffix(":\(port)") == true }
    XCTAssertEqual(matching.count, 1, "one group on port \(port): \(groups)")
    let group = try XCTUnwrap(matching.first)
    let listed = group["members"] as? [[String: Any]] ?? []
    XCTAssertEqual(listed.count, members.count, "\(listed)")
    let byHolder = Dictionary(
      listed.map { member -> (String, [String: Any]) in
        let holders = member["holders"] as? [[String: Any]] ?? []
        return (holders.map { "\($0["pid"] ?? "")/\($0["fd"] ?? "")" }.joined(separator: ","), member)
      }, uniquingKeysWith: { first, _ in first })
    let ordered = try members.map { peer in
      try XCTUnwrap(byHolder["\(peer.pid)/\(peer.fd())"], "member \(peer.pid)/\(peer.fd()) in \(byHolder.keys)")
    }
    return (group, ordered)
  }

  func testUDPMembersCountWhatTheKernelDeliveredToEach() throws {
    try attach("--sysfs-root", Self.twoNodeSysfs)
    let members = try startGroup("udp", cpus: [0, 1])
    defer { members.forEach { try? $0.finish() } }
    let port = members[0].hello["port"] as! Int
    // 64 flows: the reuseport hash gives each member some (all to one: 2^-63).
    let sender = try Peer(["--cpu", "1", "udp-spray", "127.0.0.1", "\(port)", "64", "3"])
    try sender.finish()
    let delivered = try drain(members, total: 192)
    XCTAssertTrue(delivered.allSatisfy { $0 > 0 }, "the hash spread the flows: \(delivered)")

    let (group, listed) = try group(port: port, of: members, in: try groups())
    XCTAssertEqual(group["protocol"] as? String, "udp")
    XCTAssertEqual((group["steering"] as? [String: Any])?["kind"] as? String, "hash")
    for (index, member) in listed.enumerated() {
      XCTAssertEqual(member["packets"] as? Int, delivered[index], "member \(index): the datagrams it read")
      XCTAssertEqual(member["thread_cpus"] as? [Int], [index], "pinned to CPU \(index)")
      XCTAssertEqual((member["cpus"] as? [[String: Any]])?.compactMap { $0["cpu"] as? Int }, [1], "the sender's CPU")
      XCTAssertEqual(member["received_nodes"] as? [Int], [1])
    }
    XCTAssertEqual(listed[0]["off_node"] as? Bool, true, "read on node 0, received on node 1")
    XCTAssertEqual(listed[1]["off_node"] as? Bool, false)
    XCTAssertEqual(group["off_node_members"] as? Int, 1)

    // --mismatch keeps the group; the table flags the one member.
    XCTAssertEqual(try groups("--mismatch", "--port", "\(port)").count, 1)
    let text = try Command.sockaff("list", "--reuseport", "--port", "\(port)", "--sysfs-root", Self.twoNodeSysfs)
    XCTAssertEqual(text.status, 0, text.stderr)
    XCTAssertTrue(text.stdout.contains("udp 127.0.0.1:\(port)"), text.stdout)
    XCTAssertEqual(text.stdout.split(separator: "\n").filter { $0.hasSuffix("yes !") }.count, 1, text.stdout)

    // check names the group and the one member, by its holder.
    let check = try Command.run([Command.sockaffPath, "check", "--json", "--sysfs-root", Self.twoNodeSysfs])
    XCTAssertEqual(check.status, 21, check.stderr)
    let report = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any] ?? [:]
    let findings = (report["findings"] as? [[String: Any]] ?? []).filter {
      $0["id"] as? String == "reuseport_member_off_node" && ($0["message"] as? String)?.contains(":\(port) ") == true
    }
    XCTAssertEqual(findings.count, 1, "\(report)")
    let evidence = findings.first?["evidence"] as? [String] ?? []
    XCTAssertEqual(evidence.count, 1, "\(evidence)")
    XCTAssertTrue(evidence.first?.hasPrefix("pid \(members[0].pid) fd \(members[0].fd())") == true, "\(evidence)")
  }

  /// One process, a member per thread (the Envoy shape): the process's
  /// threads say nothing of a member, the thread blocked in epoll_wait on
  /// an epoll holding it does. Each member's threads are its own pinned
  /// thread's CPU, and its reads (traced, exact) decide the off-node flag.
  func testAThreadPerMemberIsToldApartByTheThreadWaitingOnIt() throws {
    try attach("--sysfs-root", Self.twoNodeSysfs)
    let server = try Peer(["reuseport-threads", "127.0.0.1", "0", "1"])
    defer { try? server.finish() }
    let port = server.hello["port"] as! Int
    let fds = server.hello["fds"] as! [Int]
    let sender = try Peer(["--cpu", "1", "udp-spray", "127.0.0.1", "\(port)", "64", "3"])
    try sender.finish()
    var delivered: [Int] = []
    for _ in 0..<50 {
      server.send("count")
      delivered = try server.readLine()["received"] as! [Int]
      if delivered.reduce(0, +) >= 192 { break }
      usleep(100_000)
    }
    XCTAssertEqual(delivered.reduce(0, +), 192)
    XCTAssertTrue(delivered.allSatisfy { $0 > 0 }, "the hash spread the flows: \(delivered)")
    let listed = try groups("--port", "\(port)").first?["members"] as? [[String: Any]] ?? []
    XCTAssertEqual(listed.count, 2, "\(listed)")
    for (index, fd) in fds.enumerated() {
      let member = try XCTUnwrap(
        listed.first { ($0["holders"] as? [[String: Any]])?.first?["fd"] as? Int == fd }, "fd \(fd): \(listed)")
      XCTAssertEqual(member["threads"] as? String, "waiting", "member \(index)")
      XCTAssertEqual(member["thread_cpus"] as? [Int], [index], "its own thread, pinned to CPU \(index)")
      XCTAssertEqual(member["packets"] as? Int, delivered[index])
      XCTAssertEqual(member["consumer_cpu"] as? Int, index, "read by its thread")
      XCTAssertEqual((member["locality"] as? [String: Any])?["source"] as? String, "recvmsg")
      XCTAssertEqual(member["off_node"] as? Bool, index == 0, "read on node \(index), received on node 1")
    }
  }

  /// A listener's traced packets are the SYN and the handshake-completing
  /// ACK of each connection the kernel gave it: twice what it accepted.
  func testTCPListenersCountTheHandshakesThatChoseThem() throws {
    try attach("--sysfs-root", Self.twoNodeSysfs)
    let members = try startGroup("tcp", cpus: [0, 1])
    defer { members.forEach { try? $0.finish() } }
    let port = members[0].hello["port"] as! Int
    let client = try Peer(["--cpu", "1", "tcp-connect", "127.0.0.1", "\(port)", "24"], script: FanInTests.fanin)
    defer { try? client.finish() }
    let accepted = try drain(members, total: 24)
    settle()
    let (group, listed) = try group(port: port, of: members, in: try groups("--port", "\(port)", "--proto", "tcp"))
    XCTAssertEqual(group["protocol"] as? String, "tcp")
    for (index, member) in listed.enumerated() {
      XCTAssertEqual(member["packets"] as? Int, 2 * accepted[index], "member \(index) accepted \(accepted[index])")
    }
  }

  /// A steering program that selects slot 0 of its REUSEPORT_SOCKARRAY:
  /// the kernel gives member 0 everything, and sockaff names the map (as
  /// bpftool shows it), each member's slot, and the program that uses it.
  func testAProgramsMapNamesEachMembersSlot() throws {
    try attach("--sysfs-root", Self.twoNodeSysfs)
    let members = try startGroup("udp", cpus: [0, 1])
    defer { members.forEach { try? $0.finish() } }
    let port = members[0].hello["port"] as! Int
    let steer = try Peer(["reuseport-steer"] + members.map { "\($0.pid):\($0.fd())" })
    defer { try? steer.finish() }
    let sender = try Peer(["--cpu", "1", "udp-spray", "127.0.0.1", "\(port)", "20", "2"])
    try sender.finish()
    let delivered = try drain(members, total: 40)
    let (group, listed) = try group(port: port, of: members, in: try groups())
    let steering = group["steering"] as? [String: Any] ?? [:]
    if let refused = steer.hello["refused"] as? String {
      // The kernel refused the test's own program (a refusal, not a
      // malformed request): the group is as unsteered.
      let refusals = ["Errno 1]", "Errno 13]", "Errno 95]", "Errno 524]"]
      XCTAssertTrue(refusals.contains { refused.contains($0) }, "the test's program failed: \(refused)")
      XCTAssertEqual(steering["kind"] as? String, "hash", "with no steering program (\(refused))")
      XCTAssertTrue(listed.allSatisfy { ($0["map_slots"] as? [Any])?.isEmpty == true })
      return
    }
    XCTAssertEqual(delivered, [40, 0], "the program selects slot 0")
    let mapID = steer.hello["map_id"] as! Int
    let programID = steer.hello["prog_id"] as! Int
    let map = try KernelListing.jsonList(["bpftool", "-j", "map", "show"]).first { $0["id"] as? Int == mapID }
    XCTAssertEqual(map?["type"] as? String, "reuseport_sockarray", "bpftool's own view of map \(mapID)")
    XCTAssertEqual(steering["kind"] as? String, "program")
    XCTAssertTrue((steering["detail"] as? String ?? "").contains("program id \(programID)"), "\(steering)")
    let programs = steering["host_programs"] as? [[String: Any]] ?? []
    XCTAssertEqual(programs.first { $0["id"] as? Int == programID }?["map_ids"] as? [Int], [mapID])
    for (index, member) in listed.enumerated() {
      let slots = member["map_slots"] as? [[String: Any]] ?? []
      XCTAssertEqual(slots.map { $0["map_id"] as? Int }, [mapID], "member \(index)")
      XCTAssertEqual(slots.map { $0["key"] as? Int }, [index], "member \(index) is in slot \(index)")
      XCTAssertEqual(member["packets"] as? Int, delivered[index])
    }
  }

  /// Without the tracer the groups are still found, and where their packets
  /// went is said to be unknown, not zero.
  func testWithoutTheTracerGroupsAreListedAndReceptionIsUnknown() throws {
    let members = try startGroup("udp", cpus: [0, 1])
    defer { members.forEach { try? $0.finish() } }
    let port = members[0].hello["port"] as! Int
    let result = try Command.sockaff("list", "--reuseport", "--json", "--port", "\(port)")
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stderr.contains("tracer is not attached"), result.stderr)
    let groups = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
    let (_, listed) = try group(port: port, of: members, in: groups)
    XCTAssertTrue(listed.allSatisfy { $0["packets"] is NSNull && $0["off_node"] is NSNull }, "\(listed)")

    // Narrowed to nothing: said on stderr, exit 0; JSON is an empty array.
    let none = try Command.sockaff("list", "--reuseport", "--port", "\(port)", "--proto", "tcp")
    XCTAssertEqual(none.status, 0, none.stderr)
    XCTAssertEqual(none.stdout, "")
    XCTAssertTrue(none.stderr.contains("no SO_REUSEPORT group matches"), none.stderr)
    XCTAssertEqual(try jsonArray(["list", "--reuseport", "--json", "--pid", "1"]).count, 0)
  }

  func testOptionsThatDoNotApplyAreUsageErrors() throws {
    for extra in [["--wide"], ["--source", "kernel"], ["--by", "cgroup"], ["--remote", "127.0.0.1"]] {
      let result = try Command.run([Command.sockaffPath, "list", "--reuseport"] + extra)
      XCTAssertEqual(result.status, 64, "\(extra): \(result.stderr)")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(extra): \(result.stderr)")
      XCTAssertEqual(result.stdout, "")
    }
  }
}
