import SocketAffinity

/// One reading of the tracer and of the host's traced sockets: what
/// `sockaff export` writes and `sockaff serve` answers a scrape with.
public struct MetricsSnapshot: Sendable {
  public let status: TracerStatus
  /// The host's traced sockets summed up, with the busiest ones in full
  /// (empty when the tracer is not attached).
  public let summary: HostReceiveSummary
  /// The host's NUMA nodes and their CPUs: what a rule needs to tell "all
  /// receive work on one node" from "a host with one node".
  public let topology: Topology
  /// Where the summary's sockets came from (`iterator` or `procfs`); nil
  /// when the tracer is not attached.
  public let summarySource: SocketSource?
  /// The census of the kernel's own fields (`--source kernel`), in place
  /// of the traced summary; nil for a traced scrape.
  public let census: KernelCensus?

  public init(
    status: TracerStatus, summary: HostReceiveSummary, topology: Topology, summarySource: SocketSource? = nil,
    census: KernelCensus? = nil
  ) {
    self.status = status
    self.summary = summary
    self.topology = topology
    self.summarySource = summarySource
    self.census = census
  }

  /// The tracer's status and a census of every TCP and UDP socket from the
  /// kernel's own fields: no packet-path program needed, and none read.
  /// `status`: the one this scrape already read (`--source auto`).
  public static func readCensus(
    topology: Topology, pins: PinLayout = PinLayout(), status known: TracerStatus? = nil
  ) throws(SockaffError) -> MetricsSnapshot {
    let steering = SteeringInspection(topology: topology)
    let status: TracerStatus
    if let known {
      status = known
    } else {
      status = try Tracer(pins: pins, topology: topology).status(
        reading: try? PinnedMaps(pins: pins), steering: steering)
    }
    let listing = try SocketListing(pins: pins, topology: topology).listReportingSkipped(
      source: .kernel, steering: steering)
    return MetricsSnapshot(
      status: status, summary: HostReceiveSummary(), topology: topology,
      census: KernelCensus(listing: listing, topology: topology))
  }

  /// Reads the tracer's status and sums up the host's traced sockets, with
  /// full answers for the `top` busiest. CPUs map to nodes by `topology`
  /// (the host's, or a sysfs tree's for tests). A detached tracer is a
  /// reading too (attached 0, no sockets): alerting on it is what the
  /// metrics are for, so it is not an error here.
  public static func read(
    top: Int, topology: Topology, from source: SocketSource = .auto, pins: PinLayout = PinLayout()
  ) throws(SockaffError) -> MetricsSnapshot {
    // One reader per scrape: the pins opened and their layout checked once,
    // for the status and the summary both. None where they cannot be read
    // (not attached, another layout): status then says why on its own.
    let reader = try? PinnedMaps(pins: pins)
    // And each NIC read once, for the status's interfaces and the sockets' paths.
    let steering = SteeringInspection(topology: topology)
    let status = try Tracer(pins: pins, topology: topology).status(reading: reader, steering: steering)
    let none = HostReceiveSummary()
    guard status.attached else { return MetricsSnapshot(status: status, summary: none, topology: topology) }
    do {
      let (summary, used) = try summarize(
        top: top, topology: topology, from: source, pins: pins, reader: reader, steering: steering)
      return MetricsSnapshot(status: status, summary: summary, topology: topology, summarySource: used)
    } catch  where error.kind == .notAttached {
      return MetricsSnapshot(status: status, summary: none, topology: topology)
    }
  }

  /// How a scrape finds the host's traced sockets.
  public enum SocketSource: String, Sendable, CaseIterable {
    /// The iterator where the kernel loads and runs it (the
    /// `iter/task_file` feature), else procfs.
    case auto
    /// HeldSockets: one pass in the kernel; only the busiest are opened.
    case iterator
    /// SocketListing: every socket of every process opened from userspace.
    case procfs
  }

  /// The summary, and the source it came from. `auto` takes the iterator
  /// only where the kernel runs it, and procfs when it fails to run (a
  /// refusal, a verifier's rejection): what is lost is the iterator's
  /// speed, never the answer. `iterator` asked for by name fails instead,
  /// with the refusal's own status.
  static func summarize(
    top: Int, topology: Topology, from source: SocketSource, pins: PinLayout, reader: PinnedMaps?,
    steering: SteeringInspection
  ) throws(SockaffError) -> (HostReceiveSummary, SocketSource) {
    func list() throws(SockaffError) -> (HostReceiveSummary, SocketSource) {
      let listing = try SocketListing(pins: pins, topology: topology).listReportingSkipped(
        reading: reader, steering: steering)
      return (HostReceiveSummary(listing: listing, top: top), .procfs)
    }
    func pass() throws(SockaffError) -> (HostReceiveSummary, SocketSource) {
      (
        try HostReceiveSummary.read(top: top, pins: pins, reading: reader, steering: steering, topology: topology),
        .iterator
      )
    }
    switch source {
    case .procfs: return try list()
    case .iterator: return try pass()
    case .auto:
      guard KernelFeatures.has(KernelFeatures.heldSocketsIterator) else { return try list() }
      do {
        return try pass()
      } catch  where [.bpf, .kernelUnsupported, .refused, .notPermitted].contains(error.kind) {
        return try list()
      }
    }
  }
}
