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

  public init(status: TracerStatus, summary: HostReceiveSummary, topology: Topology) {
    self.status = status
    self.summary = summary
    self.topology = topology
  }

  /// Reads the tracer's status and sums up the host's traced sockets, with
  /// full answers for the `top` busiest. CPUs map to nodes by `topology`
  /// (the host's, or a sysfs tree's for tests). A detached tracer is a
  /// reading too (attached 0, no sockets): alerting on it is what the
  /// metrics are for, so it is not an error here.
  public static func read(
    top: Int, topology: Topology, from source: SocketSource = .auto, pins: PinLayout = PinLayout()
  ) throws(SockaffError) -> MetricsSnapshot {
    let status = try Tracer(pins: pins, topology: topology).status()
    let none = HostReceiveSummary()
    guard status.attached else { return MetricsSnapshot(status: status, summary: none, topology: topology) }
    do {
      return MetricsSnapshot(
        status: status, summary: try summarize(top: top, topology: topology, from: source, pins: pins),
        topology: topology)
    } catch  where error.kind == .notAttached {
      return MetricsSnapshot(status: status, summary: none, topology: topology)
    }
  }

  /// How a scrape finds the host's traced sockets.
  public enum SocketSource: String, Sendable, CaseIterable {
    /// The iterator where the kernel loads and runs it, else procfs.
    case auto
    /// HeldSockets: one pass in the kernel; only the busiest are opened.
    case iterator
    /// SocketListing: every socket of every process opened from userspace.
    case procfs
  }

  static func summarize(top: Int, topology: Topology, from source: SocketSource, pins: PinLayout)
    throws(SockaffError) -> HostReceiveSummary
  {
    func list() throws(SockaffError) -> HostReceiveSummary {
      HostReceiveSummary(listing: try SocketListing(pins: pins, topology: topology).listReportingSkipped(), top: top)
    }
    switch source {
    case .procfs: return try list()
    case .iterator: return try HostReceiveSummary.read(top: top, pins: pins, topology: topology)
    case .auto:
      do {
        return try HostReceiveSummary.read(top: top, pins: pins, topology: topology)
      } catch  where error.kind == .bpf || error.kind == .kernelUnsupported {
        return try list()
      }
    }
  }
}
