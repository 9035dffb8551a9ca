import ArgumentParser
import FoundationEssentials
import Glibc
import SocketAffinity

struct ListCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list",
    abstract: "List traced sockets of one process or of the whole host.",
    discussion: """
      Lists every socket that received a traced packet, under each process that holds
      it, including processes in other network namespaces. LOCAL% is the share of the
      socket's data consumed on the receiving NUMA node: exact where reads are traced
      (kernel 6.3+, 'rx' source), else sampled from where the threads last ran ('thr').
      """)

  @Option(help: "Only this process.")
  var pid: Int32?

  @Flag(help: "Only sockets whose packets are processed on a NUMA node other than their consumers'.")
  var mismatch = false

  @Flag(help: "Print one JSON array (with --mismatch: an object with sockets and per-process summaries).")
  var json = false

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    if let pid, pid <= 0 { throw ValidationError("--pid must be a positive process id") }
  }

  func run() throws {
    try reporting(json: json) {
      let progress = ProgressLine()
      let result = try SocketListing(topology: try topologyOptions.topology())
        .listReportingSkipped(pid: pid, progress: progress.update)
      progress.finish()
      if !result.notPermitted.isEmpty {
        let pids = result.notPermitted.prefix(10).map(String.init).joined(separator: ", ")
        Output.standardError(
          "sockaff: warning: skipped \(result.notPermitted.count) \(result.notPermitted.count == 1 ? "process" : "processes") not readable without CAP_SYS_PTRACE (pids \(pids)\(result.notPermitted.count > 10 ? ", ..." : ""))"
        )
      }
      var sockets = result.sockets
      if mismatch { sockets = sockets.filter { $0.crossNUMA == true } }
      let summaries = ProcessMismatch.summarize(sockets)
      if json {
        if mismatch { return try Output.json(MismatchDocument(sockets: sockets, processes: summaries)) }
        return try Output.jsonLines(sockets)
      }
      print(SocketTable.render(sockets))
      for summary in summaries where mismatch { print(summary.summary) }
    }
  }

  struct MismatchDocument: Encodable {
    let sockets: [SocketAffinity]
    let processes: [ProcessMismatch]
  }
}

/// The table `list` and `watch` print.
enum SocketTable {
  static let header = [
    "PID", "COMMAND", "FD", "PROTO", "LOCAL", "REMOTE", "CPU", "NODE", "RXQ", "IFACE", "PACKETS", "CPU SHARE",
    "LOCAL%",
  ]

  static func row(_ s: SocketAffinity, rate: Double? = nil) -> [String] {
    let share = s.cpus.prefix(3).map { "\($0.cpu):\(Int(($0.share * 100).rounded()))%" }.joined(separator: " ")
    let locality = s.locality.map { "\(Int(($0.sameNode * 100).rounded()))% \($0.source == .recvmsg ? "rx" : "thr")" }
    var packets = s.packets.map(String.init) ?? "-"
    if let rate { packets += " (\(Int(rate.rounded()))/s)" }
    return [
      "\(s.pid)", s.command ?? "-", "\(s.fd)", s.transport.rawValue, s.local ?? "-", s.remote ?? "*",
      "\(s.cpu)", s.numaNode.map(String.init) ?? "-", s.rxQueue.map(String.init) ?? "-", s.interface ?? "-",
      packets, share, (locality ?? "-") + (s.crossNUMA == true ? " !" : ""),
    ]
  }

  static func render(_ sockets: [SocketAffinity], rates: [Double?]? = nil) -> String {
    let rows = inSlices(sockets.count) { range in range.map { row(sockets[$0], rate: rates?[$0]) } }
    return format([header] + rows)
  }

  /// Left-aligned columns separated by two spaces, no trailing blanks.
  /// At 100k rows the character counts are the costly part: each cell is
  /// counted once, and rows are counted and built on every CPU.
  static func format(_ rows: [[String]]) -> String {
    guard let columns = rows.first?.count else { return "" }
    let counts = inSlices(rows.count) { range in range.map { rows[$0].map(\.count) } }
    var widths = [Int](repeating: 0, count: columns)
    for row in counts {
      for (column, count) in row.enumerated() { widths[column] = max(widths[column], count) }
    }
    let columnWidths = widths
    let lines = inSlices(rows.count) { range in
      range.map { index in
        var line = ""
        for (column, cell) in rows[index].enumerated() {
          line += cell
          if column < columns - 1 {
            line += String(repeating: " ", count: max(columnWidths[column] - counts[index][column], 0) + 2)
          }
        }
        return line.trimmingTrailingSpaces()
      }
    }
    return lines.joined(separator: "\n")
  }

  /// `body` over 0..<count in slices on every CPU, results in order.
  static func inSlices<T: Sendable>(_ count: Int, _ body: @Sendable (Range<Int>) -> [T]) -> [T] {
    concurrentSlices(count, size: 2048, body).flatMap { $0 }
  }
}

extension String {
  func trimmingTrailingSpaces() -> String {
    String(self[..<(lastIndex(where: { $0 != " " }).map(index(after:)) ?? startIndex)])
  }
}

/// "reading processes 812/3000" on stderr, only when stderr is a terminal
/// and the work has already taken a second; erased when done. Nothing on
/// stdout, so piping the output is unaffected.
final class ProgressLine: @unchecked Sendable {  // called one at a time (the listing's lock)
  private let enabled = isatty(STDERR_FILENO) == 1
  private let started = ClockReference.clockNanoseconds(CLOCK_MONOTONIC)
  private var lastDrawn: Int64 = 0
  private var drawn = false

  func update(done: Int, total: Int) {
    guard enabled else { return }
    let now = ClockReference.clockNanoseconds(CLOCK_MONOTONIC)
    guard now - started > 1_000_000_000, now - lastDrawn > 100_000_000 else { return }
    lastDrawn = now
    drawn = true
    Output.standardError("\rsockaff: reading processes \(done)/\(total)\u{1B}[K", newline: false)
  }

  func finish() {
    if drawn { Output.standardError("\r\u{1B}[K", newline: false) }
  }
}
