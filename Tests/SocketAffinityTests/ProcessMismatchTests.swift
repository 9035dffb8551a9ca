import CSockaffABI
import XCTest

@testable import SocketAffinity

final class ProcessMismatchTests: XCTestCase {
  let topology = Topology(cpusByNode: [0: [0, 1], 1: [2, 3]])

  func record(_ packetsByCPU: [(cpu: Int, packets: UInt64)]) -> [SocketAffinity.CPUShare] {
    let total = Double(packetsByCPU.reduce(0) { $0 + $1.packets })
    return packetsByCPU.map {
      .init(cpu: $0.cpu, numaNode: topology.node(ofCPU: $0.cpu), packets: $0.packets, share: Double($0.packets) / total)
    }
  }

  func socket(pid: Int32, fd: Int32, cpus: [SocketAffinity.CPUShare], threadNodes: [Int]) -> SocketAffinity {
    let local = cpus.filter { threadNodes.contains($0.numaNode ?? -1) }.reduce(0) { $0 + $1.share }
    return SocketAffinity(
      pid: pid, fd: fd, command: "nginx", networkNamespace: nil, cookie: UInt64(fd), family: .inet, transport: .tcp,
      local: nil, remote: nil, connected: true, cpu: cpus[0].cpu, processor: nil, numaNode: cpus[0].numaNode,
      rxQueue: nil, napiID: nil, ifindex: nil, interface: nil, packets: cpus.reduce(0) { $0 + $1.packets },
      bytes: nil, cpuChanges: nil, cpus: cpus, otherCPUsPackets: 0, firstSeen: nil, lastSeen: nil,
      kernelIncomingCPU: -1, source: .bpf, consumerCPU: nil, reads: 0, threadNodes: threadNodes,
      locality: .init(sameCPU: nil, sameNode: local, source: .threadSampling), crossNUMA: local < 0.5)
  }

  func testSummaryNamesTheDominantReceiveNodeAndThreadNodes() throws {
    let sockets = [
      socket(pid: 812, fd: 5, cpus: record([(cpu: 2, packets: 62), (cpu: 0, packets: 8)]), threadNodes: [0]),
      socket(pid: 812, fd: 6, cpus: record([(cpu: 1, packets: 30)]), threadNodes: [0]),
    ]
    let summaries = ProcessMismatch.summarize(sockets)
    XCTAssertEqual(summaries.count, 1)
    XCTAssertEqual(summaries[0].crossNUMASockets, 1)
    XCTAssertEqual(summaries[0].receiveNodeShares[1] ?? 0, 0.62, accuracy: 1e-9)
    XCTAssertEqual(
      summaries[0].summary,
      "62% of nginx's (pid 812) received packets are processed on node 1; its threads ran on node 0 (1 of 2 sockets cross-NUMA)"
    )
  }

  func testProcessWithoutCrossNUMASocketsHasNoSummary() {
    let sockets = [socket(pid: 9, fd: 3, cpus: record([(cpu: 0, packets: 10)]), threadNodes: [0])]
    XCTAssertTrue(ProcessMismatch.summarize(sockets).isEmpty)
  }

  func testThreadSamplingLocalityCountsPacketsOnThreadNodes() {
    let inspection = SocketInspection(topology: topology)
    let shares = record([(cpu: 0, packets: 25), (cpu: 3, packets: 75)])
    let raw = sockaff_record_for_test(packets: 100)
    let locality = inspection.locality(record: ReceiveRecord(raw), cpus: shares, threadNodes: [1])
    XCTAssertEqual(locality?.source, .threadSampling)
    XCTAssertEqual(locality?.sameNode ?? 0, 0.75, accuracy: 1e-9)
  }
}

/// An empty record with `packets` set, as the BPF program would start it.
func sockaff_record_for_test(packets: UInt64) -> sockaff_record {
  var raw = sockaff_record()
  raw.owner_cpu = 1
  raw.owner.packets = packets
  return raw
}
