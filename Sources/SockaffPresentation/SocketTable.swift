import SocketAffinity

/// The table `list` and `watch` print: by default the columns that fit 80
/// terminal columns for IPv4 sockets (who holds it, its local address,
/// where it is received and read), `wide` for everything. Numbers are
/// right-aligned.
public enum SocketTable {
  public enum Column: String, CaseIterable, Sendable {
    case pid = "PID", command = "COMMAND", fd = "FD", proto = "PROTO", local = "LOCAL", remote = "REMOTE"
    case cpu = "CPU", node = "NODE", rxQueue = "RXQ", irq = "IRQ", interface = "IFACE", packets = "PACKETS"
    case share = "CPU SHARE", locality = "LOCAL%"

    var isNumber: Bool { [.pid, .fd, .cpu, .node, .rxQueue, .irq].contains(self) }
  }

  /// The default columns, and `--wide`'s (every column).
  public static let narrow: [Column] = [.pid, .command, .fd, .proto, .local, .cpu, .node, .packets, .locality]
  public static let wide = Column.allCases

  public static func header(_ columns: [Column] = narrow) -> [String] { columns.map(\.rawValue) }

  public static func row(_ s: SocketAffinity, rate: Double? = nil, columns: [Column] = narrow) -> [String] {
    columns.map { column in
      switch column {
      case .pid: "\(s.pid)"
      case .command: s.command ?? "-"
      case .fd: "\(s.fd)"
      case .proto: s.transport.rawValue
      case .local: s.local ?? "-"
      case .remote: s.remote ?? "*"
      case .cpu: "\(s.cpu)"
      case .node: s.numaNode.map(String.init) ?? "-"
      case .rxQueue: s.rxQueue.map(String.init) ?? "-"
      case .irq: s.irq.map(String.init) ?? "-"
      case .interface: s.interface ?? "-"
      case .packets:
        (s.packets.map(String.init) ?? "-") + (s.packets == nil ? "" : rate.map { " (\(Int($0.rounded()))/s)" } ?? "")
      case .share: s.cpus.prefix(3).map { "\($0.cpu):\(Int(($0.share * 100).rounded()))%" }.joined(separator: " ")
      case .locality:
        (s.locality.map { "\(Int(($0.sameNode * 100).rounded()))% \($0.source == .recvmsg ? "rx" : "thr")" } ?? "-")
          + (s.crossNUMA == true ? " !" : "")
      }
    }
  }

  public static func render(_ sockets: [SocketAffinity], rates: [Double?]? = nil, columns: [Column] = narrow)
    -> String
  {
    let rows = inSlices(sockets.count) { range in range.map { row(sockets[$0], rate: rates?[$0], columns: columns) } }
    return format([header(columns)] + rows, rightAligned: rightAligned(columns))
  }

  /// The indexes of the numeric columns among `columns`.
  public static func rightAligned(_ columns: [Column]) -> Set<Int> {
    Set(columns.enumerated().filter { $0.element.isNumber }.map(\.offset))
  }

  /// Columns separated by two spaces, those in `rightAligned` flush right
  /// (their header too), the others left, no trailing blanks. At 100k rows
  /// the character counts are the costly part: each cell is counted once,
  /// and rows are counted and built on every CPU.
  public static func format(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
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
          let padding = String(repeating: " ", count: max(columnWidths[column] - counts[index][column], 0))
          line += rightAligned.contains(column) ? padding + cell : cell + padding
          if column < columns - 1 { line += "  " }
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
