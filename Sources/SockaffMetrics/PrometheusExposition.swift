import Prometheus
import SocketAffinity

/// Renders a snapshot in the Prometheus text exposition format through
/// swift-prometheus. A fresh registry per snapshot: every value is read
/// from the kernel as an absolute count, so a counter is made and
/// incremented by its current value (a socket's packets only grow while it
/// is open; when it closes, its series goes away).
///
/// Cardinality is bounded by the host, not by its sockets: per CPU, node,
/// RX queue, interface and verdict, and the `top` cgroups. Series that name
/// processes and sockets (pid, comm, fd, addresses) only with `perSocket`,
/// an operator's opt-in: for the `top` sockets by packets (each with at
/// most 5 CPU series: 4 slots and "other") and the `top` processes with
/// cross-NUMA sockets; `socket_series_omitted_sockets` says how many
/// sockets have no series of their own.
public enum PrometheusExposition {
  public static func render(_ snapshot: MetricsSnapshot, top: Int, perSocket: Bool) -> String {
    let registry = PrometheusCollectorRegistry()
    func describe(_ name: String, _ help: String) -> MetricNameDescriptor {
      MetricNameDescriptor(namespace: "sockaff", metricName: name, unitName: "", helpText: help)
    }
    func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
      registry.makeGauge(descriptor: describe(name, help), labels: labels)
    }
    func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
      registry.makeCounter(descriptor: describe(name, help), labels: labels)
    }
    let status = snapshot.status
    // Unknown to a process that may not ask is no series, not a false 0.
    if status.unreadable == nil {
      gauge("tracer_attached", "1 if the receive tracer is attached to the cgroup v2 root")
        .set(Int64(status.attached ? 1 : 0))
    }
    if let live = status.liveRecords {
      gauge("live_records", "Records in the map now: open sockets that received a traced packet")
        .set(Int64(live))
    }
    if let created = status.recordsCreated {
      counter("records_created_total", "Sockets that received their first traced packet since attach")
        .increment(by: Int64(clamping: created))
    }
    if let untracked = status.untrackedPackets {
      counter("untracked_packets_total", "Packets no record could be made for (not a full socket, or no memory)")
        .increment(by: Int64(clamping: untracked))
    }
    if let slots = status.poolSlots {
      gauge("pool_slots", "Sockets that can have every receiving CPU counted apart at once").set(Int64(slots))
    }
    if let inUse = status.poolSlotsInUse {
      gauge("pool_slots_in_use", "Pool slots held by open sockets received on more than one CPU")
        .set(Int64(clamping: inUse))
    }
    if let full = status.poolExhaustedSockets {
      counter(
        "pool_exhausted_sockets_total",
        "Sockets that found the per-CPU pool full: their other CPUs' packets are counted, not split by CPU"
      )
      .increment(by: Int64(clamping: full))
    }
    // In the base unit, seconds, as Prometheus's conventions (and promtool) ask.
    if let cost = status.nanosecondsPerPacket {
      gauge("ingress_seconds_per_packet", "Mean cost of the receive program per packet (kernel.bpf_stats_enabled=1)")
        .set(cost / 1e9)
    }
    // What the kernel lets sockaff use: a refused or missing feature is a
    // series, so that what a scrape lacks is alertable, not only absent.
    for feature in status.features {
      gauge(
        "capability",
        "Kernel features sockaff probes, each with its state (yes, no, refused, not_permitted); 1 per feature",
        [("name", feature.name), ("state", feature.state.rawValue)]
      ).set(Int64(1))
    }
    if let source = snapshot.summarySource {
      gauge(
        "scrape_sockets_source",
        "How this scrape found the traced sockets: iterator (one kernel pass) or procfs (every process's fds)",
        [("source", source.rawValue)]
      ).set(Int64(1))
    }
    for node in snapshot.topology.nodes {
      gauge(
        "node_cpus", "CPUs of each NUMA node of the host (its topology, tracer or not)", [("node", "\(node)")]
      ).set(Int64(snapshot.topology.cpusByNode[node]?.count ?? 0))
    }
    // What changed in the NICs' steering since the tracer attached: by
    // interface and kind, so at most NICs x 7 series.
    if let changes = status.steeringChanges {
      var counts: [String: (interface: String, what: String, count: Int)] = [:]
      for change in changes {
        counts["\(change.interface)/\(change.what)", default: (change.interface, change.what, 0)].count += 1
      }
      for key in counts.keys.sorted() {
        let count = counts[key]!
        gauge(
          "steering_changes",
          "Changes to a NIC's steering since the tracer attached, by kind (rss_key, rss_table, hash_function, "
            + "input_transform, rx_queues, irq_cpus: queues whose IRQ moved, interface)",
          [("interface", count.interface), ("what", count.what)]
        ).set(Int64(count.count))
      }
      if let since = status.steeringSince {
        gauge(
          "steering_snapshot_timestamp_seconds",
          "When the NICs' steering that sockaff_steering_changes compares with was read: the tracer's attach"
        ).set(since)
      }
    }
    // Each NIC's receive steering as `status` reads it: sysfs and one
    // ioctl per interface, no BPF.
    for nic in status.interfaces {
      gauge(
        "interface_rss_enabled", "1 if RSS spreads the interface's packets over several RX queues",
        [("interface", nic.interface)]
      ).set(Int64(nic.rss ? 1 : 0))
      for queue in nic.rxQueues {
        for cpu in queue.cpus {
          gauge(
            "rx_queue_irq_cpu", "1 for each CPU an RX queue's interrupt is delivered to (effective affinity)",
            [
              ("interface", nic.interface), ("queue", "\(queue.queue)"), ("irq", queue.irq.map(String.init) ?? ""),
              ("cpu", "\(cpu)"), ("node", label(queue.nodes.count == 1 ? queue.nodes[0] : nil)),
            ]
          ).set(Int64(1))
        }
      }
    }
    if let census = snapshot.census {
      renderCensus(census, topology: snapshot.topology, gauge: gauge)
      return sorted(registry.emitToString())
    }
    guard status.attached else { return sorted(registry.emitToString()) }

    let summary = snapshot.summary
    gauge("sockets", "Traced sockets of the host's processes (one per holder)")
      .set(Int64(summary.sockets))
    gauge("cross_numa_sockets", "Traced sockets consumed mostly on a NUMA node other than where they are received")
      .set(Int64(summary.crossNUMASockets))
    gauge(
      "skipped_processes",
      "Processes whose sockets could not be read (no CAP_SYS_PTRACE, or refused by the kernel), left out"
    )
    .set(Int64(summary.skippedProcesses))

    for (cpu, packets) in summary.packetsByCPU.sorted(by: { $0.key < $1.key }) {
      gauge(
        "cpu_receive_packets",
        "Packets received by the open traced sockets (each once, however many processes hold it), by the CPU that processed them",
        [("cpu", "\(cpu)"), ("node", label(snapshot.topology.node(ofCPU: cpu)))]
      ).set(Int64(clamping: packets))
    }
    for (node, packets) in summary.packetsByNode.sorted(by: { $0.key < $1.key }) {
      gauge(
        "node_receive_packets",
        "Packets received by the open traced sockets (each once), by the NUMA node that processed them",
        [("node", node < 0 ? "unknown" : "\(node)")]
      ).set(Int64(clamping: packets))
    }
    for queue in summary.rxQueues {
      gauge(
        "rx_queue_sockets", "Open traced sockets (each once) whose latest packet came from this RX queue",
        [("interface", queue.interface), ("queue", "\(queue.queue)"), ("irq", queue.irq.map(String.init) ?? "")]
      ).set(Int64(queue.sockets))
    }
    for count in summary.hashChecks {
      gauge(
        "rss_hash_checks",
        "Traced sockets answered in full (every one from a listing, the busiest from the kernel's pass) by the "
          + "verdict of their NIC hash against RSS's prediction",
        [("interface", count.interface), ("verdict", count.verdict.rawValue)]
      ).set(Int64(count.sockets))
    }
    // The busiest cgroups (by sockets), `top` at most: bounded however
    // many containers the host runs.
    for cgroup in summary.cgroups.prefix(top) {
      gauge(
        "cgroup_sockets", "Traced sockets per holder cgroup (one per holder), the cgroups with the most",
        [("cgroup", cgroup.cgroup)]
      ).set(Int64(cgroup.sockets))
      gauge(
        "cgroup_cross_numa_sockets", "Cross-NUMA traced sockets per holder cgroup, the cgroups with the most sockets",
        [("cgroup", cgroup.cgroup)]
      ).set(Int64(cgroup.crossNUMASockets))
    }
    let shown = perSocket ? min(top, summary.busiest.count) : 0
    gauge(
      "socket_series_omitted_sockets",
      "Traced sockets (each once) with no series of their own: beyond --top, or all without --per-socket-series"
    )
    .set(Int64(max(0, summary.distinctSockets - shown)))
    guard perSocket else { return sorted(registry.emitToString()) }
    for process in summary.crossNUMAProcesses.prefix(top) {
      gauge(
        "process_cross_numa_sockets", "Cross-NUMA sockets per process (processes with at least one)",
        [("pid", "\(process.pid)"), ("comm", process.command ?? "")]
      ).set(Int64(process.sockets))
    }

    for socket in summary.busiest.prefix(top) {
      let labels = [
        ("pid", "\(socket.pid)"), ("comm", socket.command ?? ""), ("fd", "\(socket.fd)"),
        ("protocol", socket.transport.rawValue), ("local", socket.local ?? ""), ("remote", socket.remote ?? ""),
      ]
      var shares = socket.cpus.map { (cpu: "\($0.cpu)", node: label($0.numaNode), packets: $0.packets) }
      if let other = socket.otherCPUsPackets, other > 0 { shares.append(("other", "unknown", other)) }
      for share in shares {
        counter(
          "socket_receive_packets_total",
          "Packets a socket received, by the CPU that processed them (the busiest sockets only)",
          labels + [("cpu", share.cpu), ("node", share.node)]
        ).increment(by: Int64(clamping: share.packets))
      }
    }
    return sorted(registry.emitToString())
  }

  /// The census's series (`--source kernel`): the `census_` prefix says
  /// their source, the kernel's own fields, and keeps them apart from the
  /// traced series they resemble (a socket's latest packet, not its packets).
  static func renderCensus(
    _ census: KernelCensus, topology: Topology, gauge: (String, String, [(String, String)]) -> Gauge
  ) {
    gauge(
      "census_sockets",
      "TCP and UDP sockets (each once) with a receive CPU in the kernel (SO_INCOMING_CPU), no tracer needed", []
    ).set(Int64(census.sockets))
    gauge(
      "census_sockets_without_receive_cpu",
      "TCP and UDP sockets the kernel keeps no receive CPU for: TCP listeners, unconnected UDP, nothing received", []
    ).set(Int64(census.withoutReceiveCPU))
    gauge(
      "census_cross_numa_sockets",
      "Sockets (one per holder) whose latest packet was processed on a node where none of the holder's threads last ran",
      []
    ).set(Int64(census.crossNUMASockets))
    gauge("census_skipped_processes", "Processes whose sockets could not be read, left out of the census", [])
      .set(Int64(census.skippedProcesses))
    if let reader = census.reader {
      gauge(
        "census_reader",
        "How this census read the sockets: iterator (one kernel pass per protocol and namespace), procfs (one by one), or mixed",
        [("reader", reader)]
      ).set(Int64(1))
    }
    for (cpu, sockets) in census.socketsByCPU.sorted(by: { $0.key < $1.key }) {
      gauge(
        "census_cpu_sockets", "Sockets (each once) whose latest packet was processed on this CPU (SO_INCOMING_CPU)",
        [("cpu", "\(cpu)"), ("node", label(topology.node(ofCPU: cpu)))]
      ).set(Int64(sockets))
    }
    for (node, sockets) in census.socketsByNode.sorted(by: { $0.key < $1.key }) {
      gauge(
        "census_node_sockets", "Sockets (each once) whose latest packet was processed on this NUMA node",
        [("node", node < 0 ? "unknown" : "\(node)")]
      ).set(Int64(sockets))
    }
    for (queue, sockets) in census.socketsByQueue.sorted(by: { $0.key < $1.key }) {
      gauge(
        "census_rx_queue_sockets",
        "Sockets (each once) whose latest packet's NAPI (SO_INCOMING_NAPI_ID) serves this RX queue",
        [("interface", queue.interface), ("queue", "\(queue.queue)")]
      ).set(Int64(sockets))
    }
  }

  /// The exposition with its families in name order, and each family's
  /// samples in text order: the registry keeps them in dictionaries, whose
  /// order changes from run to run, and textfiles should diff cleanly.
  public static func sorted(_ exposition: String) -> String {
    joined(families(of: exposition).map { ($0.name, $0.header + $0.samples.sorted()) })
  }

  /// `families` (an exposition of their own, such as `serve`'s self
  /// series) placed among those of `exposition`, already `sorted`, in name
  /// order; no family's samples are sorted again.
  public static func merging(_ families: String, into exposition: String) -> String {
    joined((Self.families(of: exposition) + Self.families(of: families)).map { ($0.name, $0.header + $0.samples) })
  }

  private typealias Family = (name: String, header: [Substring], samples: [Substring])

  /// The families of an exposition, in its order.
  private static func families(of exposition: String) -> [Family] {
    var families: [Family] = []
    for line in exposition.split(separator: "\n", omittingEmptySubsequences: true) {
      let words = line.split(separator: " ", maxSplits: 3)
      if line.hasPrefix("# "), words.count >= 3 {
        let name = String(words[2])
        // A family begins at its HELP line, or at a TYPE line with no HELP before it.
        if families.last?.name != name || !(families.last?.samples.isEmpty ?? false) {
          families.append((name, [], []))
        }
        families[families.count - 1].header.append(line)
      } else if !families.isEmpty {
        families[families.count - 1].samples.append(line)
      } else {
        families.append(("", [], [line]))
      }
    }
    return families
  }

  /// Families in name order, as text.
  private static func joined(_ families: [(name: String, lines: [Substring])]) -> String {
    families.sorted { $0.name < $1.name }.map { $0.lines.joined(separator: "\n") + "\n" }.joined()
  }

  static func label(_ node: Int?) -> String { node.map(String.init) ?? "unknown" }
}
