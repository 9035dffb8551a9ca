import ArgumentParser
import SockaffMetrics

/// `--top` and `--sockets-from`, shared by `export` and `serve`: per-socket
/// series only for the busiest sockets, so a host's metric cardinality stays
/// bounded; and how a scrape finds the host's traced sockets.
struct TopOption: ParsableArguments {
  @Option(help: "Per-socket series for at most this many sockets (the busiest).")
  var top = 100

  @Option(
    name: .customLong("sockets-from"),
    help: ArgumentHelp(
      "How a scrape finds the traced sockets: 'iterator' (one pass in the kernel, then only the busiest sockets are opened), 'procfs' (open every socket of every process, as 'list' does), or 'auto' (the iterator where the kernel runs it).",
      valueName: "auto|iterator|procfs"))
  var socketsFrom: MetricsSnapshot.SocketSource = .auto

  func validate() throws {
    guard (0...100_000).contains(top) else { throw ValidationError("--top takes 0 to 100000") }
  }
}

extension MetricsSnapshot.SocketSource: ExpressibleByArgument {}
