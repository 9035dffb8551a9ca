import ArgumentParser
import Glibc
import SockaffMetrics
import SocketAffinity

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write Prometheus metrics once: for node_exporter's textfile collector, or to stdout.",
    discussion: """
      With --textfile DIR, writes DIR/sockaff.prom atomically (a temporary file renamed
      over it), so node_exporter never reads half a file; run it from a timer. Metrics:
      tracer health, per-CPU and per-node receive totals, cross-NUMA counts, and the
      busiest sockets' packets by CPU (--top bounds their number).
      """)

  @Option(help: ArgumentHelp("node_exporter's textfile directory.", valueName: "directory"))
  var textfile: String?

  @OptionGroup var top: TopOption

  func run() throws {
    try reporting {
      let text = PrometheusExposition.render(try MetricsSnapshot.read(), top: top.top)
      guard let textfile else { return print(text, terminator: "") }
      try TextfileWriter.write(text, to: textfile + "/sockaff.prom")
    }
  }
}

/// Atomic replacement of a file: write a temporary file beside it, fsync,
/// rename over the old one.
enum TextfileWriter {
  static func write(_ text: String, to path: String) throws(SockaffError) {
    let temporary = path + ".tmp.\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
    guard fd >= 0 else { throw SockaffError.fromErrno(.init(rawValue: errno), operation: "open \(temporary)") }
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if written < 0 && errno == EINTR { continue }
      guard written > 0 else {
        let error = SockaffError.fromErrno(.init(rawValue: errno), operation: "write \(temporary)")
        close(fd)
        unlink(temporary)
        throw error
      }
      bytes = bytes.dropFirst(written)
    }
    fchmod(fd, 0o644)
    let synced = fsync(fd) == 0
    close(fd)
    guard synced, rename(temporary, path) == 0 else {
      let error = SockaffError.fromErrno(.init(rawValue: errno), operation: "replace \(path)")
      unlink(temporary)
      throw error
    }
  }
}
