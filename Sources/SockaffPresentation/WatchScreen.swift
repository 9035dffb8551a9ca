import SocketAffinity

/// `watch`'s table and full-screen frame.
public enum WatchScreen {
  public static func table(_ entries: [ReceiveRates.Entry], columns: [SocketTable.Column] = SocketTable.narrow)
    -> String
  {
    let cpuColumn = columns.firstIndex(of: .cpu)
    let rows = entries.map { entry -> [String] in
      var row = SocketTable.row(entry.socket, rate: entry.packetRate, columns: columns)
      if let previous = entry.previousCPU, let cpuColumn { row[cpuColumn] = "\(previous)>\(entry.socket.cpu)" }
      return row
    }
    return SocketTable.format([SocketTable.header(columns)] + rows, rightAligned: SocketTable.rightAligned(columns))
  }

  public static func frame(
    _ entries: [ReceiveRates.Entry], interval: Double, rows: Int, columns: [SocketTable.Column] = SocketTable.narrow
  ) -> String {
    let title = "sockaff watch: \(entries.count) sockets, every \(interval) s, sorted by packet rate; q to quit"
    let lines = table(entries, columns: columns).split(separator: "\n", omittingEmptySubsequences: false)
      .prefix(max(rows - 2, 1))
    return ([title, ""] + lines.map(String.init)).joined(separator: "\n")
  }
}
