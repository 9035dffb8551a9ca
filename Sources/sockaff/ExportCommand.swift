import ArgumentParser
import Glibc
import SockaffMetrics
import SocketAffinity
import SystemPackage

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write Prometheus metrics once: for node_exporter's textfile collector, or to stdout.",
    discussion: paragraphs(
      """
      With --textfile DIR, writes DIR/sockaff.prom atomically (a temporary file renamed
      over it), so node_exporter never reads half a file; run it from a timer. DIR must
      be root's (or this user's) and writable by no one else (exit 17 otherwise). Metrics:
      tracer health, per-CPU, per-node and per-queue receive totals, cross-NUMA counts;
      with --per-socket-series also the busiest sockets' packets by CPU and the processes
      with cross-NUMA sockets (--top bounds their number). Those name processes and
      their sockets: the file is then as readable as its directory lets it be.
      """))

  @Option(help: ArgumentHelp("node_exporter's textfile directory.", valueName: "directory"))
  var textfile: String?

  @OptionGroup var scrape: ScrapeOptions

  func run() throws {
    try reporting {
      let text = try scrape.renderer()()
      guard let textfile else { return print(text, terminator: "") }
      try TextfileWriter.write(text, into: textfile)
    }
  }
}

/// Atomic replacement of DIR/sockaff.prom, safe in a directory that
/// others might plant files in: the directory is opened once and checked
/// (owned by root or this user, writable by no one else), the temporary file
/// beside the target has an unpredictable name and is created exclusively
/// (nothing planted is ever written into or followed), and every step is
/// relative to the directory checked, so renaming the path meanwhile
/// changes nothing. The temporary is fsynced, then renamed over the target.
enum TextfileWriter {
  static let name = "sockaff.prom"

  static func write(_ text: String, into directory: String) throws(SockaffError) {
    let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard directoryFD >= 0 else {
      throw SockaffError.fromErrno(Errno(rawValue: errno), operation: "open textfile directory \(directory)")
    }
    defer { close(directoryFD) }
    try checkSafe(directoryFD, directory)

    var temporary = ""
    var fd: Int32 = -1
    for _ in 0..<8 where fd < 0 {
      temporary = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
      fd = openat(directoryFD, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
      if fd < 0 && errno != EEXIST {
        throw SockaffError.fromErrno(Errno(rawValue: errno), operation: "create a file in \(directory)")
      }
    }
    guard fd >= 0 else {
      throw SockaffError(.other, errno: .fileExists, operation: "create a file in \(directory)")
    }
    func fail(_ error: SockaffError) -> SockaffError {
      unlinkat(directoryFD, temporary, 0)
      return error
    }
    do {
      _ = try FileDescriptor(rawValue: fd).writeAll(text.utf8)
    } catch {
      close(fd)
      throw fail(SockaffError.fromErrno(error as? Errno ?? .ioError, operation: "write \(directory)/\(temporary)"))
    }
    fchmod(fd, 0o644)
    let synced = fsync(fd) == 0
    close(fd)
    guard synced, renameat(directoryFD, temporary, directoryFD, name) == 0 else {
      throw fail(SockaffError.fromErrno(Errno(rawValue: errno), operation: "replace \(directory)/\(name)"))
    }
  }

  /// Refuses a directory that someone else could replace files in: one
  /// owned by another user than root or this one, or writable by its group
  /// or others (node_exporter's own is root's, 0755).
  private static func checkSafe(_ directoryFD: Int32, _ directory: String) throws(SockaffError) {
    var info = stat()
    guard fstat(directoryFD, &info) == 0 else {
      throw SockaffError.fromErrno(Errno(rawValue: errno), operation: "stat \(directory)")
    }
    if info.st_uid != 0 && info.st_uid != geteuid() {
      throw SockaffError(
        .unsafeDirectory, operation: "export --textfile \(directory)",
        hint: "owned by uid \(info.st_uid), neither root nor this user: its owner could replace \(name)")
    }
    if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
      throw SockaffError(
        .unsafeDirectory, operation: "export --textfile \(directory)",
        hint:
          "writable by its group or others (mode \(String(info.st_mode & 0o7777, radix: 8))): they could replace \(name)"
      )
    }
  }
}
