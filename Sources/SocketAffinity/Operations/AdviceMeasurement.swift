/// `advise --apply`'s before and after: per traced socket, the packets the
/// tracer counted in a window (the difference of two listings' per-CPU
/// counts), the nodes they were received on, the node the socket is read
/// on (its holders' threads' node), and the share received elsewhere.
public struct AdviceMeasurement: Sendable {
  public struct Window: Sendable, Equatable, Encodable {
    public let packets: UInt64
    /// Node to its share of the window's packets ("-1": CPU unknown).
    public let receiveNodes: [String: Double]
    public let readNode: Int?
    /// The share received on other nodes than `readNode`; nil without
    /// packets or a read node.
    public let crossNUMAShare: Double?

    enum CodingKeys: String, CodingKey {
      case packets
      case receiveNodes = "receive_nodes"
      case readNode = "read_node"
      case crossNUMAShare = "cross_numa_share"
    }
  }

  public struct Row: Sendable, Equatable, Encodable {
    public let pid: Int32
    public let fd: Int32
    public let command: String?
    public let local: String?
    public let remote: String?
    public let before: Window
    public let after: Window
  }

  public let topology: Topology

  public init(topology: Topology) { self.topology = topology }

  /// Per socket cookie: the window from listing `start` to listing `end`.
  /// A socket absent from `start` counts from zero (it is new).
  public func windows(from start: [SocketAffinity], to end: [SocketAffinity], readers: [UInt64: [Int]]) -> [UInt64:
    Window]
  {
    var earlier: [UInt64: [Int: UInt64]] = [:]
    for socket in start where earlier[socket.cookie] == nil {
      earlier[socket.cookie] = Dictionary(socket.cpus.map { ($0.cpu, $0.packets) }, uniquingKeysWith: +)
    }
    var windows: [UInt64: Window] = [:]
    for socket in end where windows[socket.cookie] == nil {
      let before = earlier[socket.cookie] ?? [:]
      var byNode: [Int: UInt64] = [:]
      for share in socket.cpus {
        let grown = share.packets &- min(share.packets, before[share.cpu] ?? 0)
        if grown > 0 { byNode[share.numaNode ?? -1, default: 0] += grown }
      }
      let total = byNode.values.reduce(0, +)
      let readNodes = Set((readers[socket.cookie] ?? []).compactMap(topology.node(ofCPU:)))
      let readNode = readNodes.count == 1 ? readNodes.first : nil
      let elsewhere = byNode.filter { $0.key != readNode }.values.reduce(0, +)
      windows[socket.cookie] = Window(
        packets: total,
        receiveNodes: Dictionary(
          uniqueKeysWithValues: byNode.map { ("\($0.key)", Double($0.value) / Double(max(total, 1))) }),
        readNode: readNode,
        crossNUMAShare: total > 0 && readNode != nil ? Double(elsewhere) / Double(total) : nil)
    }
    return windows
  }

  /// The rows for `sockets` (in their order, one per cookie) that received
  /// something in either window.
  public func rows(
    _ sockets: [SocketAffinity], before: [UInt64: Window], after: [UInt64: Window]
  ) -> [Row] {
    var seen = Set<UInt64>()
    return sockets.compactMap { socket in
      guard seen.insert(socket.cookie).inserted, let b = before[socket.cookie], let a = after[socket.cookie],
        b.packets > 0 || a.packets > 0
      else { return nil }
      return Row(
        pid: socket.pid, fd: socket.fd, command: socket.command, local: socket.local, remote: socket.remote,
        before: b, after: a)
    }
  }
}
