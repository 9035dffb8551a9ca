import Glibc
import SocketAffinity
import XCTest

/// Ground truth by RPS: in a veth namespace pair, the receiver's rps_cpus mask
/// moves its receive processing to a chosen CPU; sockaff must follow it.
final class RPSSteeringTests: KernelTestCase {
  override func setUpWithError() throws {
    try super.setUpWithError()
    guard sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2 else {
      throw HarnessError("RPS steering tests need at least 2 online CPUs")
    }
  }

  func testQueryFollowsRPSSteeringForTCP() throws {
    try assertFollowsSteering(transport: "tcp", checkKernel: true)
  }

  /// A connected UDP socket: the kernel's SO_INCOMING_CPU is updated too.
  func testQueryFollowsRPSSteeringForConnectedUDP() throws {
    try assertFollowsSteering(transport: "udp", connectOnFirst: true, checkKernel: true)
  }

  /// Unconnected UDP: the kernel keeps SO_INCOMING_CPU at -1, sockaff still knows.
  func testQueryFollowsRPSSteeringForUnconnectedUDP() throws {
    try assertFollowsSteering(transport: "udp", checkKernel: false)
  }

  func assertFollowsSteering(transport: String, connectOnFirst: Bool = false, checkKernel: Bool) throws {
    try attach()
    let namespaces = try NetworkNamespacePair()
    let pair = try PeerPair.start(
      transport: transport, serverHost: NetworkNamespacePair.receiverAddress,
      clientNamespace: namespaces.sender, serverNamespace: namespaces.receiver, connectOnFirst: connectOnFirst)
    var changes = 0
    for (round, cpu) in [0, 1, 0].enumerated() {
      try namespaces.steerReceive(toCPU: cpu)
      try pair.exchange(30)
      settle()
      let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
      XCTAssertEqual(answer["cpu"] as? Int, cpu, "\(transport) round \(round): RPS steered receive to CPU \(cpu)")
      XCTAssertEqual(answer["interface"] as? String, NetworkNamespacePair.receiverDevice, "named in its namespace")
      XCTAssertEqual(
        answer["local"] as? String, "\(NetworkNamespacePair.receiverAddress):\(pair.server.hello["port"]!)")
      if checkKernel {
        XCTAssertEqual(try kernelIncomingCPU(pid: pair.server.pid, fd: pair.serverFD), Int32(cpu))
      }
      let changesNow = answer["cpu_changes"] as? Int ?? -1
      if round > 0 { XCTAssertGreaterThan(changesNow, changes, "a CPU change is counted") }
      changes = changesNow
      let shares = (answer["cpus"] as? [[String: Any]] ?? []).compactMap { $0["cpu"] as? Int }
      XCTAssertTrue(shares.contains(cpu), "CPU \(cpu) has a share: \(shares)")
      // The receiver's veth is in a namespace whose sysfs is not ours: the
      // path follows the CPU and says what it could not read.
      let path = answer["path"] as? [String: Any]
      XCTAssertEqual(path?["receive_cpu"] as? Int, cpu)
      XCTAssertEqual(path?["interface"] as? String, NetworkNamespacePair.receiverDevice)
      XCTAssertTrue((path?["unresolved"] as? String ?? "").contains("network namespace"), "\(path ?? [:])")
    }
  }

  /// The NUMA half of the answer through real traffic, with a two-node
  /// topology that is not this host's: CPU 0 on node 0, CPU 1 on node 1.
  func testNUMANodeFollowsSteeringWithTwoNodeTopology() throws {
    try attach()
    let namespaces = try NetworkNamespacePair()
    let pair = try PeerPair.start(
      transport: "tcp", serverHost: NetworkNamespacePair.receiverAddress,
      clientNamespace: namespaces.sender, serverNamespace: namespaces.receiver)
    let query = AffinityQuery(topology: Topology(cpusByNode: [0: [0], 1: [1]]))
    for cpu in [1, 0] {
      try namespaces.steerReceive(toCPU: cpu)
      try pair.exchange(30)
      settle()
      let answer = try query.query(pid: pair.server.pid, fd: pair.serverFD)
      XCTAssertEqual(answer.cpu, cpu)
      XCTAssertEqual(answer.numaNode, cpu)
      XCTAssertEqual(answer.processor, ProcessorNumber(group: 0, number: cpu))
      XCTAssertEqual(answer.cpus.first(where: { $0.cpu == cpu })?.numaNode, cpu)
    }
  }
}
