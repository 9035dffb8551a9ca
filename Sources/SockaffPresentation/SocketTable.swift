import SocketAffinity

/// The table `list` and `watch` print.
public enum SocketTable {
  public static let header = [
    "PID", "COMMAND", "FD", "PROTO", "LOCAL", "REMOTE", "CPU", "NODE", "RXQ", "IRQ", "IFACE", "PACKETS", "CPU SHARE",
    "LOCAL%",
  ]

  public static func row(_ s: SocketAffinity, rate: Double? = nil) -> [String] {
    let share = s.cpus.prefix(3).map { "\($0.cpu):\(Int(($0.share * 100).rounded()))%" }.joined(separator: " ")
    let locality = s.locality.map { "\(Int(($0.sameNode * 100).rounded()))% \($0.source == .recvmsg ? "rx" : "thr")" }
    var packets = s.packets.map(String.init) ?? "-"
    if let rate { packets += " (\(Int(rate.rounded()))/s)" }
    return [
      "\(s.pid)", s.command ?? "-", "\(s.fd)", s.transport.rawValue, s.local ?? "-", s.remote ?? "*",
      "\(s.cpu)", s.numaNode.map(String.init) ?? "-", s.rxQueue.map(String.init) ?? "-",
      s.irq.map(String.init) ?? "-", s.interface ?? "-",
      packets, share, (locality ?? "-") + (s.crossNUMA == true ? " !" : ""),
    ]
  }

  public static func render(_ sockets: [SocketAffinity], rates: [Double?]? = nil) -> String {
    let rows = inSlices(sockets.count) { range in range.map { row(sockets[$0], rate: rates?[$0]) } }
    return format([header] + rows)
  }

  /// Left-aligned columns separated by two spaces, no trailing blanks.
  /// At 100k rows the character counts are the costly part: each cell is
  /// counted once, and rows are counted and built on every CPU.
  public static func format(_ rows: [[String]]) -> String {
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
  public static func inSlices<T: Sendable>(_ count: Int, _ body: @Sendable (Range<Int>) -> [T]) -> [T] {
    concurrentSlices(count, size: 2048, body).flatMap { $0 }
  }
}

extension String {
  public func trimmingTrailingSpaces() -> String {
    String(self[..<(lastIndex(where: { $0 != " " }).map(index(after:)) ?? startIndex)])
  }
}
