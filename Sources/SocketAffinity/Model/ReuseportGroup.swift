/// One SO_REUSEPORT group: the TCP listeners, or the unconnected UDP
/// sockets, that share one local address and port in one network namespace
/// (and one family, bound device and owner, as the kernel requires of a
/// group). The kernel gives each new connection or datagram to one member:
/// by the flow hash, by a steering program, or (6.2+) to the member that
/// set SO_INCOMING_CPU to the receiving CPU. `sockaff list --reuseport`.
public struct ReuseportGroup: Sendable, JSONFields {
  public let networkNamespace: UInt64?
  public let family: SocketKind.Family
  public let transport: SocketKind.TransportProtocol
  /// "127.0.0.1:53", "[::]:443".
  public let local: String
  /// SO_BINDTODEVICE's interface; nil when bound to none.
  public let boundInterface: String?
  public var members: [Member]
  public var steering: Steering

  /// One socket of the group, with every process that holds it.
  public struct Member: Sendable, JSONFields {
    /// Where `threadCPUs` come from.
    public enum Threads: String, Sendable {
      /// The threads blocked on this socket now (in accept or recv on it,
      /// or in epoll_wait on an epoll instance that holds it): its workers.
      case waiting
      /// Every thread of its holders: none was found waiting on it alone.
      case holders
    }

    public let cookie: UInt64?
    public let holders: [Holder]
    /// The CPUs its threads last ran on, and their nodes.
    public let threadCPUs: [Int]
    public let threadNodes: [Int]
    public let threads: Threads
    /// SO_INCOMING_CPU as the member set it (a listener's or an unconnected
    /// UDP socket's is only ever set by setsockopt); nil when unset.
    public let incomingCPU: Int?
    /// The packets traced on this socket: a UDP member's datagrams; a TCP
    /// listener's SYNs and handshake-completing ACKs (two per accepted
    /// connection), the packets that choose the member. nil without the tracer.
    public let packets: UInt64?
    public let cpus: [SocketAffinity.CPUShare]
    /// The CPU of its latest traced read (a UDP member's recvmsg), when traced.
    public let readerCPU: Int?
    /// Where its packets are read compared with where they are received:
    /// exact from traced reads (a UDP member's), else the share of its
    /// packets received on its threads' nodes. nil without packets.
    public let locality: SocketAffinity.Locality?
    /// Map slots that hold this socket (`ReuseportSteeringObjects`).
    public let slots: [ReuseportSteeringObjects.MapSlot]

    /// Most of its packets are read (or, untraced reads, received) off the
    /// node they were received on: the kernel hands them to a thread on
    /// another node.
    public var offNode: Bool? { locality.map { SocketInspection.isCrossNUMA(sameNode: $0.sameNode) } }

    public var receivedNodes: [Int] { Set(cpus.compactMap(\.numaNode)).sorted() }

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("cookie", cookie)
      try visitor.field("holders", holders)
      try visitor.field("thread_cpus", threadCPUs)
      try visitor.field("thread_nodes", threadNodes)
      try visitor.field("threads", threads.rawValue)
      try visitor.field("incoming_cpu", incomingCPU)
      try visitor.field("packets", packets)
      try visitor.field("cpus", cpus)
      try visitor.field("received_nodes", receivedNodes)
      try visitor.field("consumer_cpu", readerCPU)
      try visitor.field("locality", locality)
      try visitor.field("off_node", offNode)
      try visitor.field("map_slots", slots)
    }
  }

  public struct Holder: Sendable, Equatable, JSONFields {
    public let pid: Int32
    public let fd: Int32
    public let command: String?

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("pid", pid)
      try visitor.field("fd", fd)
      try visitor.field("command", command)
    }
  }

  /// How the kernel picks a member, as far as userspace can see it.
  public struct Steering: Sendable, JSONFields {
    public enum Kind: String, Sendable {
      /// Members are held in a map a reuseport program selects from.
      case program
      /// Members set SO_INCOMING_CPU: each packet goes to the member set to
      /// the CPU that received it (6.2+), else by the hash.
      case incomingCPU = "incoming_cpu"
      /// No evidence of either: the flow hash, unless a program that
      /// userspace cannot see is attached.
      case hash
    }
    public let kind: Kind
    public let detail: String
    /// Every loaded sk_reuseport program on the host: one of them may serve
    /// this group, which the kernel does not tell.
    public let hostPrograms: [ReuseportSteeringObjects.Program]

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("kind", kind.rawValue)
      try visitor.field("detail", detail)
      try visitor.field("host_programs", hostPrograms)
    }

    /// The verdict from the members' evidence.
    static func judge(members: [Member], hostPrograms: [ReuseportSteeringObjects.Program]) -> Steering {
      // A REUSEPORT_SOCKARRAY exists for reuseport programs alone; a
      // SOCKMAP or SOCKHASH also serves sk_msg and sk_skb programs, so it
      // counts only where a loaded sk_reuseport program uses it.
      let selectingMaps = Set(hostPrograms.flatMap(\.mapIDs))
      func steers(_ slot: ReuseportSteeringObjects.MapSlot) -> Bool {
        slot.mapType == "reuseport_sockarray" || selectingMaps.contains(slot.mapID)
      }
      let inMaps = members.filter { $0.slots.contains(where: steers) }
      if !inMaps.isEmpty {
        let slots = inMaps.flatMap { $0.slots.filter(steers) }
        let mapIDs = Set(slots.map(\.mapID))
        let maps = Set(slots.map { "\($0.mapType) map \($0.mapID)" }).sorted()
        let users = hostPrograms.filter { !mapIDs.isDisjoint(with: $0.mapIDs) }
        let selector =
          users.isEmpty
          ? "a reuseport program selects members from it (no loaded sk_reuseport program references it now)"
          : "sk_reuseport program \(users.map { "id \($0.id) \($0.name)" }.joined(separator: ", ")) selects members from it"
        return Steering(
          kind: .program,
          detail:
            "\(inMaps.count) of \(members.count) members are held in \(maps.joined(separator: ", ")): \(selector)",
          hostPrograms: hostPrograms)
      }
      let pinned = members.filter { $0.incomingCPU != nil }
      if !pinned.isEmpty {
        return Steering(
          kind: .incomingCPU,
          detail:
            "\(pinned.count) of \(members.count) members set SO_INCOMING_CPU: the kernel (6.2+) gives each packet to the member set to the CPU that received it, the others by the flow hash",
          hostPrograms: hostPrograms)
      }
      var detail =
        "no map holds a member: the kernel picks one by the flow hash, unless a program attached with SO_ATTACH_REUSEPORT_CBPF or _EBPF steers the group (the kernel shows no socket's program)"
      if !hostPrograms.isEmpty {
        detail +=
          "; sk_reuseport programs loaded on this host: "
          + hostPrograms.map { "id \($0.id) \($0.name.isEmpty ? "(no name)" : $0.name)" }.joined(separator: ", ")
      }
      return Steering(kind: .hash, detail: detail, hostPrograms: hostPrograms)
    }
  }

  /// Members whose packets were received mostly on a node none of their
  /// holders' threads ran on.
  public var offNodeMembers: [Member] { members.filter { $0.offNode == true } }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("netns", networkNamespace)
    try visitor.field("family", family.rawValue)
    try visitor.field("protocol", transport.rawValue)
    try visitor.field("local", local)
    try visitor.field("bound_interface", boundInterface)
    try visitor.field("steering", steering)
    try visitor.field("members", members)
    try visitor.field("off_node_members", offNodeMembers.count)
  }
}
