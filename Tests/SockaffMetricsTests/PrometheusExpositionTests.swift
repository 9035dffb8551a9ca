import XCTest

@testable import SockaffMetrics
@testable import SocketAffinity

/// The exposition of a reading made by hand: what each series says, that a
/// refused capability is a series, that a tracer this user may not read is
/// no false 0, and that the text is in a stable order.
final class PrometheusExpositionTests: XCTestCase {
  let topology = Topology(cpusByNode: [0: [0, 1], 1: [2, 3]])

  func status(attached: Bool, unreadable: String? = nil, live: Int? = nil) -> TracerStatus {
    TracerStatus(
      attached: attached, unreadable: unreadable, mode: attached ? "pinned" : nil, cgroup: "/sys/fs/cgroup",
      pinDirectory: "/sys/fs/bpf/sockaff", bpffsMounted: true, programs: [], recordsCreated: attached ? 12 : nil,
      untrackedPackets: attached ? 0 : nil, liveRecords: live,
      liveRecordsError: live == nil ? "the kernel refused iter/bpf_sk_storage_map (EPERM as root)" : nil,
      recordValueSize: nil, poolSlots: nil, poolSlotsInUse: nil, poolBytes: nil, poolExhaustedSockets: nil,
      kernelHZ: 250, bpfStatsEnabled: false, nanosecondsPerPacket: nil, kernel: "6.18",
      features: [
        KernelFeature(name: "cgroup_skb", state: .yes, neededFor: "tracing", required: true),
        KernelFeature(name: "iter/bpf_sk_storage_map", state: .refused, neededFor: "count", detail: "EPERM as root"),
        KernelFeature(name: "iter/task_file", state: .no, neededFor: "one pass"),
      ],
      interfaces: [])
  }

  func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

  func testAReadingsSeriesAndItsRefusedCapabilities() {
    var summary = HostReceiveSummary()
    summary.sockets = 3
    summary.packetsByCPU = [0: 40, 3: 18]
    summary.packetsByNode = [0: 40, 1: 18]
    let snapshot = MetricsSnapshot(
      status: status(attached: true), summary: summary, topology: topology, summarySource: .procfs)
    let text = PrometheusExposition.render(snapshot, top: 10, perSocket: false)
    let all = lines(text)
    XCTAssertTrue(all.contains("sockaff_tracer_attached 1.0"), text)
    XCTAssertTrue(all.contains(#"sockaff_capability{name="iter/bpf_sk_storage_map",state="refused"} 1.0"#), text)
    XCTAssertTrue(all.contains(#"sockaff_capability{name="iter/task_file",state="no"} 1.0"#), text)
    XCTAssertTrue(all.contains(#"sockaff_scrape_sockets_source{source="procfs"} 1.0"#), text)
    XCTAssertTrue(all.contains(#"sockaff_cpu_receive_packets{cpu="3",node="1"} 18.0"#), text)
    XCTAssertTrue(all.contains(#"sockaff_node_receive_packets{node="0"} 40.0"#), text)
    XCTAssertTrue(all.contains("sockaff_sockets 3.0"), text)
    XCTAssertFalse(text.contains("sockaff_live_records"), "no count rather than a wrong one")
    // Families in name order, each family's series in text order.
    let families = all.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
    XCTAssertEqual(families, families.sorted())
    XCTAssertEqual(
      text, PrometheusExposition.render(snapshot, top: 10, perSocket: false), "the same reading, the same text")
  }

  func socket(pid: Int32, fd: Int32, cookie: UInt64, packets: UInt64) -> SocketAffinity {
    SocketAffinity(
      pid: pid, fd: fd, command: "nginx", networkNamespace: nil, cookie: cookie, family: .inet, transport: .udp,
      local: "10.0.0.1:53", remote: nil, connected: false, cpu: 2, processor: nil, numaNode: 1, rxQueue: nil,
      napiID: nil, ifindex: nil, interface: nil, packets: packets, bytes: nil, cpuChanges: nil,
      cpus: [.init(cpu: 2, numaNode: 1, packets: packets, share: 1)], otherCPUsPackets: 0, firstSeen: nil,
      lastSeen: nil, kernelIncomingCPU: -1, source: .bpf, consumerCPU: nil, reads: nil, threadNodes: [],
      locality: nil, crossNUMA: true)
  }

  /// Series that name processes and sockets only when asked for, and then
  /// for the `top` busiest; how many sockets have none is said either way.
  func testSeriesNamingProcessesAndSocketsAreOptIn() {
    var summary = HostReceiveSummary()
    summary.sockets = 3
    summary.distinctSockets = 3
    summary.busiest = [socket(pid: 812, fd: 5, cookie: 1, packets: 90), socket(pid: 813, fd: 6, cookie: 2, packets: 9)]
    summary.crossNUMAProcesses = [.init(pid: 812, command: "nginx", sockets: 1)]
    let snapshot = MetricsSnapshot(status: status(attached: true), summary: summary, topology: topology)

    let plain = PrometheusExposition.render(snapshot, top: 1, perSocket: false)
    XCTAssertFalse(plain.contains("pid="), plain)
    XCTAssertFalse(plain.contains("10.0.0.1"), plain)
    XCTAssertTrue(lines(plain).contains("sockaff_socket_series_omitted_sockets 3.0"), plain)

    let opted = PrometheusExposition.render(snapshot, top: 1, perSocket: true)
    let sockets = lines(opted).filter { $0.hasPrefix("sockaff_socket_receive_packets_total{") }
    XCTAssertEqual(sockets.count, 1, "the one busiest: \(opted)")
    XCTAssertTrue(sockets.first?.contains(#"pid="812",comm="nginx",fd="5""#) ?? false, opted)
    XCTAssertTrue(lines(opted).contains(#"sockaff_process_cross_numa_sockets{pid="812",comm="nginx"} 1.0"#), opted)
    XCTAssertTrue(lines(opted).contains("sockaff_socket_series_omitted_sockets 2.0"), opted)
  }

  /// A census's series carry its totals, by CPU with the CPU's node, and
  /// nothing of the traced scrape's.
  func testACensusIsItsOwnSeries() {
    var census = KernelCensus()
    census.sockets = 3
    census.socketsByCPU = [0: 1, 3: 2]
    census.socketsByNode = [0: 1, 1: 2]
    census.socketsByQueue = [.init(interface: "eth0", queue: 2): 2]
    census.withoutReceiveCPU = 4
    census.reader = "mixed"
    let snapshot = MetricsSnapshot(
      status: status(attached: false), summary: HostReceiveSummary(), topology: topology, census: census)
    let all = lines(PrometheusExposition.render(snapshot, top: 10, perSocket: true))
    for line in [
      "sockaff_census_sockets 3.0", #"sockaff_census_cpu_sockets{cpu="3",node="1"} 2.0"#,
      #"sockaff_census_node_sockets{node="0"} 1.0"#,
      #"sockaff_census_rx_queue_sockets{interface="eth0",queue="2"} 2.0"#,
      "sockaff_census_sockets_without_receive_cpu 4.0", "sockaff_census_cross_numa_sockets 0.0",
      #"sockaff_census_reader{reader="mixed"} 1.0"#,
    ] {
      XCTAssertTrue(all.contains(line), "\(line) in \(all)")
    }
    XCTAssertFalse(all.contains { $0.hasPrefix("sockaff_socket_") || $0.hasPrefix("sockaff_cpu_receive") }, "\(all)")
  }

  func testATracerThisUserMayNotReadIsNoFalseZero() {
    let snapshot = MetricsSnapshot(
      status: status(attached: false, unreadable: "bpf_prog_query: Operation not permitted"),
      summary: HostReceiveSummary(), topology: topology)
    let text = PrometheusExposition.render(snapshot, top: 10, perSocket: false)
    XCTAssertFalse(text.contains("sockaff_tracer_attached"), text)
    XCTAssertTrue(text.contains("sockaff_capability"), "what can be shown is")
  }

  func testSortedKeepsEachFamilyWhole() {
    let text = """
      # HELP b_total two
      # TYPE b_total counter
      b_total{x="2"} 2.0
      b_total{x="1"} 1.0
      # HELP a one
      # TYPE a gauge
      a 1.0

      """
    XCTAssertEqual(
      PrometheusExposition.sorted(text),
      "# HELP a one\n# TYPE a gauge\na 1.0\n# HELP b_total two\n# TYPE b_total counter\nb_total{x=\"1\"} 1.0\nb_total{x=\"2\"} 2.0\n"
    )
  }

  func testMergingPlacesFamiliesByNameWithoutResortingSamples() {
    let exposition = "# TYPE a gauge\na{x=\"2\"} 2.0\na{x=\"1\"} 1.0\n# TYPE c gauge\nc 3.0\n"
    XCTAssertEqual(
      PrometheusExposition.merging("# TYPE b gauge\nb 1.0\n", into: exposition),
      "# TYPE a gauge\na{x=\"2\"} 2.0\na{x=\"1\"} 1.0\n# TYPE b gauge\nb 1.0\n# TYPE c gauge\nc 3.0\n")
  }
}
