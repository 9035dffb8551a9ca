import ArgumentParser
import SockaffMetrics
import SocketAffinity

/// What a scrape reads, shared by `export` and `serve`: per-socket series
/// only for the `--top` busiest sockets, so a host's metric cardinality stays
/// bounded; how it finds the host's traced sockets; and the topology.
struct ScrapeOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: "Per-socket series for at most this many sockets (the busiest).")
  var top = 100

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
    let (top, source, topology) = (top, socketsFrom, try topologyOptions.topology())
    return { () throws(SockaffError) in
      PrometheusExposition.render(try MetricsSnapshot.read(top: top, topology: topology, from: source), top: top)
    }
  }
}

extension MetricsSnapshot.SocketSource: ExpressibleByArgument {}
