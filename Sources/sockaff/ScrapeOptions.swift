import ArgumentParser
import SockaffMetrics
import SocketAffinity

/// What a scrape reads, shared by `export` and `serve`: series that name
/// processes and sockets only when asked for (`--per-socket-series`), and
/// then for the `--top` busiest, so a host's metric cardinality stays
/// bounded by its CPUs, nodes and queues; how it finds the host's traced
/// sockets; and the topology.
struct ScrapeOptions: ParsableArguments {
  @Flag(
    name: .customLong("per-socket-series"),
    help:
      "Also series that name processes and sockets (pid, comm, fd, addresses): the --top busiest sockets, and processes with cross-NUMA sockets."
  )
  var perSocket = false

  @Option(
    parsing: .unconditional,
    help: "Series for at most this many sockets, processes and cgroups (the busiest).")
  var top = 100

  @Option(
    help: ArgumentHelp(
      "'traced' (the tracer's records), 'kernel' (a census of every TCP and UDP socket from the kernel's own fields: no tracer needed; census_ series), or 'auto' (traced while the tracer is attached, else the census; decided per scrape).",
      valueName: "traced|kernel|auto"))
  var source: SocketListing.Source = .traced

  @Option(
    name: .customLong("sockets-from"),
    help: ArgumentHelp(
      "How a scrape finds the traced sockets: 'iterator' (one pass in the kernel, then only the busiest sockets are opened), 'procfs' (open every socket of every process, as 'list' does), or 'auto' (the iterator where the kernel runs it).",
      valueName: "auto|iterator|procfs"))
  var socketsFrom: MetricsSnapshot.SocketSource = .auto

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    guard (0...100_000).contains(top) else { throw ValidationError("--top takes 0 to 100000") }
  }

  /// What makes one reading in the Prometheus text format, each time it is
  /// called; the topology is read once, here, not per scrape.
  func renderer() throws(SockaffError) -> @Sendable () throws(SockaffError) -> String {
    let (top, perSocket, source, topology) = (top, perSocket, socketsFrom, try topologyOptions.topology())
    let listing = self.source
    if listing == .kernel {
      return { () throws(SockaffError) in
        PrometheusExposition.render(try MetricsSnapshot.readCensus(topology: topology), top: top, perSocket: false)
      }
    }
    return { () throws(SockaffError) in
      // `top` also bounds the full answers whose hash checks are counted.
      let snapshot = try MetricsSnapshot.read(top: top, topology: topology, from: source)
      // auto: a tracer that is not attached (never, refused, detached since
      // the last scrape) leaves the census to answer, beside tracer_attached 0.
      if listing == .auto && !snapshot.status.attached && snapshot.status.unreadable == nil {
        return PrometheusExposition.render(
          try MetricsSnapshot.readCensus(topology: topology, status: snapshot.status), top: top, perSocket: false)
      }
      return PrometheusExposition.render(snapshot, top: top, perSocket: perSocket)
    }
  }
}

extension MetricsSnapshot.SocketSource: ExpressibleByArgument {}
extension SocketListing.Source: ExpressibleByArgument {}
