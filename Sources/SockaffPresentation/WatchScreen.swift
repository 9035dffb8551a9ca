import SocketAffinity

/// `watch`'s table and full-screen frame.
public enum WatchScreen {
  public static func table(_ entries: [ReceiveRates.Entry]) -> String {
    let rows = entries.map { entry -> [String] in
      var row = SocketTable.row(entry.socket, rate: entry.packetRate)
      if let previous = entry.previousCPU { row[6] = "\(previous)>\(entry.socket.cpu)" }
      return row
    }
    return SocketTable.format([SocketTable.header] + rows)
  }

  public static func frame(_ entries: [ReceiveRates.Entry], interval: Double, rows: Int) -> String {
    let title = "sockaff watch: \(entries.count) sockets, every \(interval) s, sorted by packet rate; q to quit"
    let lines = table(entries).split(separator: "\n", omittingEmptySubsequences: false).prefix(max(rows - 2, 1))
    return ([title, ""] + lines.map(String.init)).joined(separator: "\n")
  }
}
