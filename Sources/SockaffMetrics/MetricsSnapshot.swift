import SocketAffinity

/// One reading of the tracer and of the host's traced sockets: what
/// `sockaff export` writes and `sockaff serve` answers a scrape with.
public struct MetricsSnapshot: Sendable {
  public let status: TracerStatus
  /// Every traced socket of the host (empty when the tracer is not attached).
  public let sockets: [SocketAffinity]
  /// Processes whose sockets could not be read (no CAP_SYS_PTRACE over them).
  public let skippedProcesses: Int
  /// The host's NUMA nodes and their CPUs: what a rule needs to tell "all
  /// receive work on one node" from "a host with one node".
  public let topology: Topology

  public init(status: TracerStatus, sockets: [SocketAffinity], skippedProcesses: Int, topology: Topology) {
    self.status = status
    self.sockets = sockets
    self.skippedProcesses = skippedProcesses
    self.topology = topology
  }

  /// A reading with CPUs mapped to nodes by `topology` (the host's, or a
  /// sysfs tree's for tests).
  public static func read(topology: Topology) throws(SockaffError) -> MetricsSnapshot {
    try read(tracer: Tracer(topology: topology), listing: SocketListing(topology: topology))
  }

  /// Reads the tracer's status and lists the host's sockets. A detached
  /// tracer is a reading too (attached 0, no sockets): alerting on it is
  /// what the metrics are for, so it is not an error here.
  public static func read(tracer: Tracer = Tracer(), listing: SocketListing = SocketListing()) throws(SockaffError)
    -> MetricsSnapshot
  {
    let status = try tracer.status()
    guard status.attached else {
      return MetricsSnapshot(status: status, sockets: [], skippedProcesses: 0, topology: tracer.topology)
    }
    do {
      let result = try listing.listReportingSkipped()
      return MetricsSnapshot(
        status: status, sockets: result.sockets, skippedProcesses: result.notPermitted.count,
        topology: tracer.topology)
    } catch  where error.kind == .notAttached {
      return MetricsSnapshot(status: status, sockets: [], skippedProcesses: 0, topology: tracer.topology)
    }
  }
}
