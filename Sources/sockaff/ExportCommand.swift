import ArgumentParser
import Glibc
import SockaffMetrics
import SocketAffinity
import SystemPackage

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

  @OptionGroup var scrape: ScrapeOptions

  func run() throws {
    try reporting {
      let text = try scrape.renderer()()
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
    do {
      _ = try FileDescriptor(rawValue: fd).writeAll(text.utf8)
    } catch {
      close(fd)
      unlink(temporary)
      throw SockaffError.fromErrno(error as? Errno ?? .ioError, operation: "write \(temporary)")
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
