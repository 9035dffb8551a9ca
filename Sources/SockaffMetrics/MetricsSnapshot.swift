import SocketAffinity

/// One reading of the tracer and of the host's traced sockets: what
/// `sockaff export` writes and `sockaff serve` answers a scrape with.
public struct MetricsSnapshot: Sendable {
  public let status: TracerStatus
  /// Every traced socket of the host (empty when the tracer is not attached).
  public let sockets: [SocketAffinity]
  /// Processes whose sockets could not be read (no CAP_SYS_PTRACE over them).
  public let skippedProcesses: Int

  public init(status: TracerStatus, sockets: [SocketAffinity], skippedProcesses: Int) {
    self.status = status
    self.sockets = sockets
    self.skippedProcesses = skippedProcesses
  }

  /// Reads the tracer's status and lists the host's sockets. A detached
  /// tracer is a reading too (attached 0, no sockets): alerting on it is
  /// what the metrics are for, so it is not an error here.
  public static func read(tracer: Tracer = Tracer(), listing: SocketListing = SocketListing()) throws(SockaffError)
    -> MetricsSnapshot
  {
    let status = try tracer.status()
    guard status.attached else { return MetricsSnapshot(status: status, sockets: [], skippedProcesses: 0) }
    do {
      let result = try listing.listReportingSkipped()
      return MetricsSnapshot(status: status, sockets: result.sockets, skippedProcesses: result.notPermitted.count)
    } catch  where error.kind == .notAttached {
      return MetricsSnapshot(status: status, sockets: [], skippedProcesses: 0)
    }
  }
}
