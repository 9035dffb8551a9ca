import Foundation
import Glibc
import XCTest

/// The census (`--source kernel`): every TCP and UDP socket's receive CPU
/// and NAPI from the kernel's own fields, no tracer attached. The truth is
/// what each peer reads of its own socket (SO_INCOMING_CPU,
/// SO_INCOMING_NAPI_ID), before and after the census, with no traffic
/// between: the census must name the same CPU and NAPI for every socket.
final class CensusTests: KernelTestCase {
  /// The peer's own SO_INCOMING_CPU and SO_INCOMING_NAPI_ID.
  func incoming(_ peer: Peer) throws -> (cpu: Int, napi: Int) {
    peer.send("incoming")
    let reply = try peer.readLine()
    return (reply["incoming_cpu"] as? Int ?? -2, reply["napi_id"] as? Int ?? -2)
  }

  /// The census row of (pid, fd), which must be there once.
  func row(_ rows: [[String: Any]], pid: Int32, fd: Int32) -> [String: Any]? {
    let matching = rows.filter { ($0["pid"] as? Int) == Int(pid) && ($0["fd"] as? Int) == Int(fd) }
    XCTAssertEqual(matching.count, 1, "pid \(pid) fd \(fd) listed once")
    return matching.first
  }

  /// Each end's census row names the CPU and NAPI the end itself reads.
  /// `environment`: how the census is made to read (`SOCKAFF_CENSUS`,
  /// `SOCKAFF_REFUSE`).
  func checkCensus(_ ends: [(peer: Peer, fd: Int32, what: String)], environment: [String] = []) throws {
    let before = try ends.map { try incoming($0.peer) }
    let rows = try jsonArray(["list", "--json", "--source", "kernel"], environment: environment)
    let after = try ends.map { try incoming($0.peer) }
    XCTAssertEqual(before.map(\.cpu), after.map(\.cpu), "no packet moved a socket during the census")
    for (index, end) in ends.enumerated() {
      let truth = after[index]
      XCTAssertGreaterThanOrEqual(truth.cpu, 0, "\(end.what): the kernel keeps its receive CPU")
      guard let row = row(rows, pid: end.peer.pid, fd: end.fd) else { continue }
      XCTAssertEqual(row["source"] as? String, "kernel", "\(end.what) \(environment)")
      XCTAssertEqual(row["cpu"] as? Int, truth.cpu, "\(end.what): the CPU its own SO_INCOMING_CPU names")
      XCTAssertEqual(row["napi_id"] as? Int ?? 0, truth.napi, "\(end.what): the NAPI its own SO_INCOMING_NAPI_ID names")
      XCTAssertNil(row["packets"] as? Int, "\(end.what): a census counts no packets")
    }
  }

  func testTheCensusNamesEachSocketsOwnReceiveCPUWithoutTheTracer() throws {
    XCTAssertEqual(try Command.sockaff("list").status, 8, "no tracer: the traced listing has nothing")
    // Pinned ends on loopback: each end's packets are processed on the
    // sender's CPU, so the two ends of one connection differ.
    let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    let tcp = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1", serverCPU: 0)
    let udp = try PeerPair.start(
      transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true, serverCPU: cpus > 1 ? 1 : 0)
    try tcp.exchange(20)
    try udp.exchange(20)
    // An unconnected UDP socket: the kernel keeps no CPU for it.
    let quiet = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try quiet.exchange(5)
    usleep(300_000)  // delayed ACKs delivered
    try checkCensus([
      (tcp.server, tcp.serverFD, "TCP server end"), (tcp.client, tcp.client.fd(), "TCP client end"),
      (udp.server, udp.serverFD, "connected UDP server"), (udp.client, udp.client.fd(), "UDP client"),
    ])
    let census = try Command.sockaff("list", "--source", "kernel")
    XCTAssertEqual(census.status, 0, census.stderr)
    XCTAssertTrue(census.stderr.contains("no receive CPU in the kernel"), census.stderr)
    let rows = try listJSON("--source", "kernel")
    XCTAssertTrue(
      rows.allSatisfy { !(($0["pid"] as? Int) == Int(quiet.server.pid) && ($0["fd"] as? Int) == Int(quiet.serverFD)) },
      "the unconnected UDP socket is not listed with a CPU it does not have")
    XCTAssertEqual(try incoming(quiet.server).cpu, -1, "its own SO_INCOMING_CPU says so too")
  }

  /// The reader the kernel lets the census use: one pass per protocol
  /// (iter/tcp, iter/udp) where it runs both, socket by socket where it
  /// refuses them; `census_reader` says which.
  func expectedReader(environment: [String] = []) throws -> String {
    let states = try ["iter/tcp", "iter/udp"].map { try feature($0, environment: environment).state }
    return states.allSatisfy { $0 == "yes" } ? "iterator" : states.contains("yes") ? "mixed" : "procfs"
  }

  func reader(environment: [String] = []) throws -> String? {
    try exported("--source", "kernel", environment: environment).samples
      .first { $0.name == "sockaff_census_reader" }?.labels["reader"]
  }

  /// Both readers, and the one-pass reader with one protocol refused,
  /// answer as every socket itself does, addresses and all: the one pass
  /// reads the kernel's fields in the kernel, the other through each
  /// socket's options, and neither is compared with the other alone.
  func testEveryCensusReaderAnswersAsEachSocketDoes() throws {
    let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    let tcp = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1", serverCPU: 0)
    let udp = try PeerPair.start(
      transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true, serverCPU: cpus > 1 ? 1 : 0)
    try tcp.exchange(20)
    try udp.exchange(20)
    usleep(300_000)
    let ends = [
      (tcp.server, tcp.serverFD, "TCP server end"), (tcp.client, tcp.client.fd(), "TCP client end"),
      (udp.server, udp.serverFD, "connected UDP server"), (udp.client, udp.client.fd(), "UDP client"),
    ]
    let modes: [[String]] = [
      [], ["SOCKAFF_CENSUS=per-socket"], ["SOCKAFF_REFUSE=iter/tcp"], ["SOCKAFF_REFUSE=iter/udp"],
    ]
    for environment in modes {
      try checkCensus(ends, environment: environment)
    }
    // Which reader ran, and what the others lost.
    XCTAssertEqual(try reader(), try expectedReader(), "the reader this kernel allows")
    XCTAssertEqual(try reader(environment: ["SOCKAFF_CENSUS=per-socket"]), "procfs")
    let refused = ["SOCKAFF_REFUSE=iter/tcp,iter/udp"]
    XCTAssertEqual(try reader(environment: refused), "procfs", "both refused: socket by socket")
    let listed = try Command.run(["/usr/bin/env"] + refused + [Command.sockaffPath, "list", "--source", "kernel"])
    XCTAssertEqual(listed.status, 0, listed.stderr)
    XCTAssertTrue(
      listed.stderr.contains("one by one, not in one pass: iter/tcp refused (SOCKAFF_REFUSE); iter/udp refused"),
      listed.stderr)
    if try expectedReader() == "iterator" {
      XCTAssertEqual(
        try reader(environment: ["SOCKAFF_REFUSE=iter/udp"]), "mixed", "TCP in one pass, UDP socket by socket")
    }
    // Each socket once, the same ones by either reader.
    let one = try listJSON("--source", "kernel").map { "\($0["pid"] ?? "")/\($0["fd"] ?? "")/\($0["local"] ?? "")" }
    let other = try jsonArray(
      ["list", "--json", "--source", "kernel"], environment: ["SOCKAFF_CENSUS=per-socket"]
    ).map { "\($0["pid"] ?? "")/\($0["fd"] ?? "")/\($0["local"] ?? "")" }
    for end in ends {
      XCTAssertEqual(
        one.filter { $0.hasPrefix("\(end.0.pid)/\(end.1)/") }, other.filter { $0.hasPrefix("\(end.0.pid)/\(end.1)/") },
        end.2)
    }
  }

  /// A server in another network namespace, its receive processing moved
  /// by RPS to another CPU than the sender's: the census still names the
  /// CPU the server's socket itself names, with its namespace.
  func testTheCensusReachesOtherNamespacesAndFollowsRPS() throws {
    let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let namespaces = try NetworkNamespacePair()
    // GRO on the veth: its packets then come through a NAPI of its own.
    _ = try? Command.run([
      "ip", "netns", "exec", namespaces.receiver, "ethtool", "-K", NetworkNamespacePair.receiverDevice, "gro", "on",
    ])
    let steered = cpus > 1 ? 1 : 0
    try namespaces.steerReceive(toCPU: steered)
    let pair = try PeerPair.start(
      transport: "tcp", serverHost: NetworkNamespacePair.receiverAddress, clientNamespace: namespaces.sender,
      serverNamespace: namespaces.receiver)
    try pair.exchange(30)
    usleep(300_000)
    try checkCensus([(pair.server, pair.serverFD, "TCP server in \(namespaces.receiver)")])
    try checkCensus(
      [(pair.server, pair.serverFD, "TCP server in \(namespaces.receiver), socket by socket")],
      environment: ["SOCKAFF_CENSUS=per-socket"])
    // The one pass entered the server's namespace: nothing was read on its own.
    XCTAssertEqual(try reader(), try expectedReader(), "every namespace in one pass where the kernel allows it")
    let truth = try incoming(pair.server)
    XCTAssertEqual(truth.cpu, steered, "RPS moved the server's receive processing")
    let row = row(try listJSON("--source", "kernel"), pid: pair.server.pid, fd: pair.serverFD)
    let namespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pair.server.pid)/ns/net")
    XCTAssertEqual(row.map { "net:[\($0["netns"] as? Int ?? 0)]" }, namespace, "listed with its own namespace")
  }

  /// The census as metrics: `export --source kernel` counts the sockets by
  /// their receive CPU, as the peers' own SO_INCOMING_CPU does.
  func testTheCensusExportCountsSocketsByTheirReceiveCPU() throws {
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1", serverCPU: 0)
    try pair.exchange(10)
    usleep(300_000)
    let rows = try listJSON("--source", "kernel")
    let metrics = try exported("--source", "kernel")
    var byCPU: [Int: Int] = [:]
    var seen = Set<Int>()
    for row in rows where seen.insert(row["cookie"] as? Int ?? -1).inserted {
      byCPU[row["cpu"] as? Int ?? -1, default: 0] += 1
    }
    let server = try incoming(pair.server)
    XCTAssertGreaterThanOrEqual(
      metrics.values("sockaff_census_cpu_sockets", where: ["cpu": "\(server.cpu)"]).first ?? 0, 1,
      "the server's receive CPU has its socket")
    // Sockets come and go on a live host (the test runner's own): the
    // export and the listing are two readings, so only the peers' sockets
    // are checked exactly above; the totals agree within what moved.
    let total = metrics.values("sockaff_census_sockets").first ?? -1
    XCTAssertEqual(total, Double(seen.count), accuracy: 4, "sockets counted once each, as the listing's cookies")
    XCTAssertTrue(metrics.samples.allSatisfy { $0.labels["pid"] == nil }, "no series names a process")
    XCTAssertNotNil(metrics.values("sockaff_census_sockets_without_receive_cpu").first)

    // `watch --source kernel` samples the same census twice.
    let watched = try jsonArray(["watch", "--source", "kernel", "--once", "--json", "--interval", "0.2"])
    let entry = row(watched, pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(entry?["cpu"] as? Int, try incoming(pair.server).cpu, "watch: the server's own SO_INCOMING_CPU")
  }

  /// `--source auto`: the census while no tracer is attached (a host that
  /// refuses it), the tracer's records once it is.
  func testAutoIsTheCensusWithoutTheTracerAndTracedWithIt() throws {
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1", serverCPU: 0)
    try pair.exchange(10)
    usleep(300_000)
    let untraced = try Command.sockaff("list", "--source", "auto", "--json")
    XCTAssertEqual(untraced.status, 0, untraced.stderr)
    XCTAssertTrue(untraced.stderr.contains("the tracer is not attached: the census"), untraced.stderr)
    let census = row(try listJSON("--source", "auto"), pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(census?["source"] as? String, "kernel")
    XCTAssertEqual(census?["cpu"] as? Int, try incoming(pair.server).cpu, "the server's own SO_INCOMING_CPU")
    let before = try exported("--source", "auto")
    XCTAssertEqual(before.values("sockaff_tracer_attached"), [0], "the missing tracer is said")
    XCTAssertGreaterThanOrEqual(before.values("sockaff_census_sockets").first ?? 0, 2, "and the census answers")

    try attach()
    try pair.exchange(10)
    settle()
    let traced = row(try listJSON("--source", "auto"), pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(traced?["source"] as? String, "bpf", "attached: the tracer's records")
    XCTAssertGreaterThanOrEqual(traced?["packets"] as? Int ?? 0, 10)
    let after = try exported("--source", "auto")
    XCTAssertEqual(after.values("sockaff_tracer_attached"), [1])
    XCTAssertTrue(after.values("sockaff_census_sockets").isEmpty, "no census beside the tracer")
    XCTAssertFalse(after.values("sockaff_cpu_receive_packets").isEmpty, "the traced series instead")
  }
}
