/// Traced sockets summed per holder cgroup (v2): which container or service
/// receives what, and how much of it crosses NUMA nodes. `list --by cgroup`
/// shows it; the metrics keep the busiest cgroups of it.
public struct CgroupSummary: Sendable, Equatable, Encodable {
  /// Relative to the cgroup2 root; "unknown" for holders without one.
  public let cgroup: String
  public let processes: Int
  /// Sockets per holder (process and fd), as `list` rows.
  public let sockets: Int
  public let crossNUMASockets: Int
  /// Packets of the cgroup's sockets, each socket once, and by the node
  /// that processed them (-1: unknown CPU).
  public let packets: UInt64
  public let packetsByNode: [Int: UInt64]

  enum CodingKeys: String, CodingKey {
    case cgroup, processes, sockets, packets
    case crossNUMASockets = "cross_numa_sockets"
    case packetsByNode = "packets_by_node"
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(cgroup, forKey: .cgroup)
    try c.encode(processes, forKey: .processes)
    try c.encode(sockets, forKey: .sockets)
    try c.encode(crossNUMASockets, forKey: .crossNUMASockets)
    try c.encode(packets, forKey: .packets)
    // JSON object keys are strings.
    try c.encode(
      Dictionary(uniqueKeysWithValues: packetsByNode.map { ("\($0.key)", $0.value) }), forKey: .packetsByNode)
  }

  /// Most sockets first, then by cgroup.
  public static func summarize(_ sockets: [SocketAffinity]) -> [CgroupSummary] {
    var tally = Tally()
    // By index: each answer's fields read in place, not the answer copied.
    for index in sockets.indices {
      tally.add(
        cgroup: sockets[index].cgroup, pid: sockets[index].pid, cookie: sockets[index].cookie,
        crossNUMA: sockets[index].crossNUMA == true, packets: sockets[index].packets ?? 0,
        byNode: sockets[index].packetsByNode)
    }
    return tally.summaries
  }

  /// Sums holders one by one (a listing's answers, or a kernel pass's entries).
  struct Tally {
    private struct Group {
      var processes = Set<Int32>()
      var sockets = 0
      var crossNUMA = 0
      var counted = Set<UInt64>()
      var packets: UInt64 = 0
      var byNode: [Int: UInt64] = [:]

      mutating func add(
        pid: Int32, cookie: UInt64, crossNUMA: Bool, packets: UInt64, byNode: @autoclosure () -> [Int: UInt64]
      ) {
        processes.insert(pid)
        sockets += 1
        if crossNUMA { self.crossNUMA += 1 }
        if counted.insert(cookie).inserted {
          self.packets += packets
          for (node, count) in byNode() { self.byNode[node, default: 0] += count }
        }
      }
    }
    private var groups: [String: Group] = [:]

    /// One holder's socket; its packets count once per cgroup, however
    /// many of the cgroup's processes hold it. `byNode` is asked for only then.
    mutating func add(
      cgroup: String?, pid: Int32, cookie: UInt64, crossNUMA: Bool, packets: UInt64,
      byNode: @autoclosure () -> [Int: UInt64]
    ) {
      // Mutated in place, through the dictionary's own accessor: a copy
      // taken out and written back would copy the group's sets, once per
      // socket (quadratic: 8 s of a 100,000-socket scrape in one cgroup).
      groups[cgroup ?? "unknown", default: Group()].add(
        pid: pid, cookie: cookie, crossNUMA: crossNUMA, packets: packets, byNode: byNode())
    }

    var summaries: [CgroupSummary] {
      groups.map { name, group in
        CgroupSummary(
          cgroup: name, processes: group.processes.count, sockets: group.sockets, crossNUMASockets: group.crossNUMA,
          packets: group.packets, packetsByNode: group.byNode)
      }.sorted { $0.sockets != $1.sockets ? $0.sockets > $1.sockets : $0.cgroup < $1.cgroup }
    }
  }

  /// `0:60% 1:40%`: the share of its packets per node.
  public var nodeShares: String {
    let total = Double(max(packets, 1))
    return packetsByNode.sorted { $0.key < $1.key }.map { node, packets in
      "\(node < 0 ? "?" : "\(node)"):\(Int((Double(packets) / total * 100).rounded()))%"
    }.joined(separator: " ")
  }
}
