/// Per process: where its received packets are processed compared with
/// where its threads (or reads) are, for `list --mismatch`.
public struct ProcessMismatch: Sendable, Encodable {
  public let pid: Int32
  public let command: String?
  /// Share of the process's received packets per NUMA node.
  public let receiveNodeShares: [Int: Double]
  public let threadNodes: [Int]
  public let crossNUMASockets: Int
  public let sockets: Int

  enum CodingKeys: String, CodingKey {
    case pid, command, sockets
    case receiveNodeShares = "receive_node_shares"
    case threadNodes = "thread_nodes"
    case crossNUMASockets = "cross_numa_sockets"
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(pid, forKey: .pid)
    try c.encode(command, forKey: .command)
    // JSON object keys are strings; an [Int: Double] would encode as an array.
    try c.encode(
      Dictionary(uniqueKeysWithValues: receiveNodeShares.map { ("\($0.key)", $0.value) }), forKey: .receiveNodeShares)
    try c.encode(threadNodes, forKey: .threadNodes)
    try c.encode(crossNUMASockets, forKey: .crossNUMASockets)
    try c.encode(sockets, forKey: .sockets)
  }

  /// One line, e.g. "62% of nginx's (pid 812) received packets are processed
  /// on node 1; its threads ran on node 0".
  public var summary: String {
    let (node, share) = receiveNodeShares.max { $0.value < $1.value } ?? (-1, 0)
    let name = command.map { "\($0)'s (pid \(pid))" } ?? "pid \(pid)'s"
    let threads = threadNodes.map(String.init).joined(separator: ",")
    return
      "\(Int((share * 100).rounded()))% of \(name) received packets are processed on node \(node); its threads ran on node \(threads.isEmpty ? "-" : threads) (\(crossNUMASockets) of \(sockets) sockets cross-NUMA)"
  }

  public static func summarize(_ answers: [SocketAffinity]) -> [ProcessMismatch] {
    // Counted by index, not grouped: grouping copied every answer (a large
    // value) into its process's array, for a host of them.
    struct Tally {
      let first: Int
      var sockets = 0
      var crossing = 0
      var packets: [Int: UInt64] = [:]
    }
    var byPID: [Int32: Tally] = [:]
    for index in answers.indices {
      byPID[answers[index].pid, default: Tally(first: index)].sockets += 1
      if answers[index].crossNUMA == true { byPID[answers[index].pid]?.crossing += 1 }
    }
    for index in answers.indices where byPID[answers[index].pid]?.crossing ?? 0 > 0 {
      for (node, count) in answers[index].packetsByNode {
        byPID[answers[index].pid]?.packets[node, default: 0] += count
      }
    }
    return byPID.compactMap { pid, tally in
      guard tally.crossing > 0 else { return nil }
      let total = Double(max(tally.packets.values.reduce(0, +), 1))
      return ProcessMismatch(
        pid: pid, command: answers[tally.first].command,
        receiveNodeShares: tally.packets.mapValues { Double($0) / total },
        threadNodes: answers[tally.first].threadNodes, crossNUMASockets: tally.crossing,
        sockets: tally.sockets)
    }.sorted { $0.pid < $1.pid }
  }
}
