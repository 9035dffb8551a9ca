import XCTest

@testable import SocketAffinity

/// A SO_REUSEPORT group's verdicts from its members' evidence: how the
/// kernel picks a member, and which members are received off their
/// threads' node (the kernel tests check the same against real groups).
final class ReuseportGroupTests: XCTestCase {
  let topology = Topology(cpusByNode: [0: [0, 1], 1: [2, 3]])

  func member(
    threadCPUs: [Int], received: [(cpu: Int, packets: UInt64)] = [], incomingCPU: Int? = nil,
    slots: [ReuseportSteeringObjects.MapSlot] = [], pid: Int32 = 100
  ) -> ReuseportGroup.Member {
    let total = Double(max(received.reduce(0) { $0 + $1.packets }, 1))
    let threadNodes = topology.nodes(ofCPUs: threadCPUs)
    return ReuseportGroup.Member(
      cookie: 1, holders: [.init(pid: pid, fd: 3, command: "server")], threadCPUs: threadCPUs,
      threadNodes: threadNodes, threads: .holders, incomingCPU: incomingCPU,
      packets: received.reduce(0) { $0 + $1.packets },
      cpus: received.map {
        .init(
          cpu: $0.cpu, numaNode: topology.node(ofCPU: $0.cpu), packets: $0.packets, share: Double($0.packets) / total)
      },
      readerCPU: nil,
      locality: received.isEmpty
        ? nil
        : SocketInspection.sampledSameNode(
          packetsByCPU: received, otherPackets: 0, threadNodes: threadNodes, topology: topology
        ).map { .init(sameCPU: nil, sameNode: $0, source: .threadSampling) },
      slots: slots)
  }

  func slot(_ map: UInt32, type: String, key: UInt64) -> ReuseportSteeringObjects.MapSlot {
    .init(mapID: map, mapName: "m", mapType: type, key: key)
  }

  func testOffNodeIsMostPacketsOnANodeNoHolderThreadRanOn() {
    let local = member(threadCPUs: [0], received: [(1, 90), (2, 10)])
    let remote = member(threadCPUs: [0, 1], received: [(2, 60), (0, 40)])
    let silent = member(threadCPUs: [3])
    XCTAssertEqual(local.offNode, false)
    XCTAssertEqual(remote.offNode, true)
    XCTAssertNil(silent.offNode, "nothing received: nothing to judge")
    XCTAssertEqual(remote.receivedNodes, [0, 1])
    let group = ReuseportGroup(
      networkNamespace: 1, family: .inet, transport: .udp, local: "0.0.0.0:53", boundInterface: nil,
      members: [local, remote, silent], steering: .judge(members: [], hostPrograms: []))
    XCTAssertEqual(group.offNodeMembers.count, 1)

    let findings = HostCheck(topology: topology).findings(reuseportGroups: [group])
    XCTAssertEqual(findings.map(\.id), ["reuseport_member_off_node"])
    XCTAssertTrue(findings[0].message.hasPrefix("1 of 3 members of the SO_REUSEPORT group udp 0.0.0.0:53"))
    XCTAssertEqual(
      findings[0].evidence,
      [
        "pid 100 fd 3 (server): its holders' threads on node 0, 100 packets received on node 0,1, 40% of its packets on the same node"
      ])
  }

  func testSteeringFromTheMembersEvidence() {
    let program = ReuseportSteeringObjects.Program(id: 7, name: "select", mapIDs: [12])
    // A REUSEPORT_SOCKARRAY holds members: a program steers, named by the map it uses.
    let steered = ReuseportGroup.Steering.judge(
      members: [
        member(threadCPUs: [0], slots: [slot(12, type: "reuseport_sockarray", key: 0)]), member(threadCPUs: [1]),
      ],
      hostPrograms: [program])
    XCTAssertEqual(steered.kind, .program)
    XCTAssertTrue(steered.detail.contains("1 of 2 members"), steered.detail)
    XCTAssertTrue(steered.detail.contains("program id 7 select"), steered.detail)

    // A SOCKMAP alone is no evidence (sk_msg programs use them too) unless
    // an sk_reuseport program uses that map.
    let inSockmap = [member(threadCPUs: [0], slots: [slot(30, type: "sockmap", key: 1)])]
    XCTAssertEqual(ReuseportGroup.Steering.judge(members: inSockmap, hostPrograms: [program]).kind, .hash)
    let used = ReuseportSteeringObjects.Program(id: 8, name: "mesh", mapIDs: [30])
    XCTAssertEqual(ReuseportGroup.Steering.judge(members: inSockmap, hostPrograms: [used]).kind, .program)

    // SO_INCOMING_CPU set on members, no map.
    let pinned = ReuseportGroup.Steering.judge(
      members: [member(threadCPUs: [0], incomingCPU: 0), member(threadCPUs: [2])], hostPrograms: [])
    XCTAssertEqual(pinned.kind, .incomingCPU)
    XCTAssertTrue(pinned.detail.contains("1 of 2 members set SO_INCOMING_CPU"), pinned.detail)

    // Nothing seen: the hash, saying what userspace cannot see, and naming
    // the host's sk_reuseport programs that might serve the group.
    let hash = ReuseportGroup.Steering.judge(members: [member(threadCPUs: [0])], hostPrograms: [program])
    XCTAssertEqual(hash.kind, .hash)
    XCTAssertTrue(hash.detail.contains("SO_ATTACH_REUSEPORT_CBPF"), hash.detail)
    XCTAssertTrue(hash.detail.contains("id 7 select"), hash.detail)
    XCTAssertFalse(ReuseportGroup.Steering.judge(members: [], hostPrograms: []).detail.contains("loaded"))
  }

  func testCPUListsAreWrittenAsTheKernelWritesThem() {
    XCTAssertEqual(CPUList.format([3, 0, 1, 2, 8, 10, 11]), "0-3,8,10-11")
    XCTAssertEqual(CPUList.format([5, 5]), "5")
    XCTAssertEqual(CPUList.format([]), "")
    XCTAssertEqual(try CPUList.parse(CPUList.format([0, 2, 3, 4, 9])), [0, 2, 3, 4, 9])
  }
}
