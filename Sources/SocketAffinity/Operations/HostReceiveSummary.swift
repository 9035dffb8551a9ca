import CSockaffABI
import Glibc

/// The host's traced sockets summed up, for metrics: totals over every
/// socket of every process, and full answers for the `top` busiest only.
///
/// Read in one pass in the kernel (`HeldSockets`: every process's traced
/// sockets with their records), then only the busiest `top` sockets, and one
/// socket per RX queue (for its interface's name and IRQ), are opened from
/// userspace: a scrape costs the kernel's walk of the open files plus `top`
/// sockets, not ten syscalls for each socket of the host. Where the kernel
/// cannot run the iterator, the same summary comes from a full listing.
public struct HostReceiveSummary: Sendable {
  public struct RXQueue: Sendable, Equatable {
    public let interface: String
    public let queue: UInt32
    public let irq: Int?
    /// Open traced sockets whose latest packet came from this queue.
    public var sockets: Int
  }

  public struct CrossNUMAProcess: Sendable, Equatable {
    public let pid: Int32
    public let command: String?
    public let sockets: Int
  }

  /// Traced TCP and UDP sockets, one per holder (process and fd), as `list`.
  public var sockets = 0
  public var crossNUMASockets = 0
  /// Packets of those sockets by the CPU that processed them.
  public var packetsByCPU: [Int: UInt64] = [:]
  /// ... and by that CPU's node (-1: a CPU the topology does not know).
  public var packetsByNode: [Int: UInt64] = [:]
  /// By interface and queue, in that order.
  public var rxQueues: [RXQueue] = []
  /// Processes with at least one cross-NUMA socket, by pid.
  public var crossNUMAProcesses: [CrossNUMAProcess] = []
  /// The `top` sockets with the most packets, most first (ties by pid, fd).
  public var busiest: [SocketAffinity] = []
  /// Processes whose sockets could not be opened (no CAP_SYS_PTRACE).
  public var skippedProcesses = 0

  /// Nothing yet: the tracer is not attached.
  public init() {}

  /// From a full listing: what every socket's answer says.
  public init(listing: SocketListing.Result, top: Int) {
    let sockets = listing.sockets
    self.sockets = sockets.count
    crossNUMASockets = sockets.filter { $0.crossNUMA == true }.count
    for socket in sockets {
      for share in socket.cpus {
        packetsByCPU[share.cpu, default: 0] += share.packets
        packetsByNode[share.numaNode ?? -1, default: 0] += share.packets
      }
    }
    var queues: [String: RXQueue] = [:]
    for socket in sockets {
      guard let interface = socket.interface, let queue = socket.rxQueue else { continue }
      queues["\(interface)/\(queue)", default: RXQueue(interface: interface, queue: queue, irq: socket.irq, sockets: 0)]
        .sockets += 1
    }
    rxQueues = Self.ordered(queues)
    crossNUMAProcesses = ProcessMismatch.summarize(sockets).map {
      CrossNUMAProcess(pid: $0.pid, command: $0.command, sockets: $0.crossNUMASockets)
    }
    busiest = Array(sockets.sorted(by: Self.busier).prefix(top))
    skippedProcesses = listing.notPermitted.count
  }

  static func busier(_ a: SocketAffinity, _ b: SocketAffinity) -> Bool {
    let (x, y) = (a.packets ?? 0, b.packets ?? 0)
    return x != y ? x > y : (a.pid, a.fd) < (b.pid, b.fd)
  }

  static func ordered(_ queues: [String: RXQueue]) -> [RXQueue] {
    queues.values.sorted { ($0.interface, $0.queue) < ($1.interface, $1.queue) }
  }

  /// Through the held-sockets iterator; throws `.bpf` where the kernel cannot
  /// load or run it (the caller then lists instead).
  public static func read(top: Int, pins: PinLayout = PinLayout(), topology: Topology) throws(SockaffError)
    -> HostReceiveSummary
  {
    let maps = try PinnedMaps(pins: pins)
    try maps.requireAttached()
    let entries = try HeldSockets.read(records: maps.records)
    return try summarize(entries, top: top, maps: maps, topology: topology)
  }

  /// One holder's socket, counted: its packets by CPU from the record's
  /// owner CPU, plus, only for a socket that holds a pool slot, every other
  /// CPU's share of it (as `ReceiveRecord` sums them for `query`).
  private struct Counted {
    let entry: HeldSockets.Entry
    let packets: UInt64
    let owner: (cpu: Int, packets: UInt64)
    let pooled: [(cpu: Int, packets: UInt64)]
    let rxQueue: UInt32?
    let ifindex: UInt32

    func forEachCPU(_ body: (Int, UInt64) -> Void) {
      if owner.packets > 0 { body(owner.cpu, owner.packets) }
      for share in pooled { body(share.cpu, share.packets) }
    }
  }

  private static func count(_ entry: HeldSockets.Entry, maps: PinnedMaps) throws(SockaffError) -> Counted {
    var packets = entry.owner_packets &+ entry.unpooled_packets
    var pooled: [(cpu: Int, packets: UInt64)] = []
    // What the latest packet said about its queue and interface is kept by
    // the CPU that received it.
    var (queue, ifindex) = (entry.owner_rx_queue, entry.owner_ifindex)
    if entry.pool_slot != 0 && entry.pool_slot != SOCKAFF_POOL_NONE {
      for (cpu, share) in try maps.shares(slot: entry.pool_slot).enumerated()
      where share.cookie == entry.cookie && share.rx.packets > 0 {
        pooled.append((cpu, share.rx.packets))
        packets &+= share.rx.packets
        if cpu == Int(entry.latest_cpu) { (queue, ifindex) = (share.rx.rx_queue, share.rx.ifindex) }
      }
    }
    return Counted(
      entry: entry, packets: packets, owner: (Int(entry.owner_cpu) - 1, entry.owner_packets), pooled: pooled,
      rxQueue: queue > 0 ? queue - 1 : nil, ifindex: ifindex)
  }

  /// Cross-NUMA by `SocketInspection`'s rule: from traced reads when there
  /// are any, else from where the process's threads last ran.
  private static func isCrossNUMA(_ counted: Counted, threadNodes: () -> [Int], topology: Topology) -> Bool {
    let entry = counted.entry
    let reads = entry.reads & SOCKAFF_READS_COUNT_MASK
    if reads > 0 { return SocketInspection.isCrossNUMA(sameNode: Double(entry.reads_same_node) / Double(reads)) }
    guard counted.packets > 0 else { return false }
    var byCPU: [(cpu: Int, packets: UInt64)] = []
    counted.forEachCPU { byCPU.append(($0, $1)) }
    return SocketInspection.sampledSameNode(
      packetsByCPU: byCPU, otherPackets: entry.unpooled_packets, threadNodes: threadNodes(), topology: topology
    ).map(SocketInspection.isCrossNUMA) ?? false
  }

  static func summarize(_ entries: [HeldSockets.Entry], top: Int, maps: PinnedMaps, topology: Topology)
    throws(SockaffError) -> HostReceiveSummary
  {
    var summary = HostReceiveSummary()
    let inspection = SocketInspection(topology: topology)
    var facts: [Int32: SocketInspection.ProcessFacts] = [:]
    func factsOf(_ pid: Int32) -> SocketInspection.ProcessFacts {
      if let known = facts[pid] { return known }
      let read = inspection.facts(pid: pid)
      facts[pid] = read
      return read
    }

    var counted: [Counted] = []
    counted.reserveCapacity(entries.count)
    var crossing: [Int32: Int] = [:]
    // Sockets (indexes into `counted`) per (holder's namespace, ifindex,
    // queue): any of them can name the interface and its IRQ.
    var queueMembers: [String: [Int]] = [:]
    for entry in entries where entry.owner_cpu > 0 {
      let kind = SocketKind.classify(
        domain: Int32(entry.family), type: Int32(entry.type), protocol: Int32(entry.protocol))
      guard case .success = kind else { continue }
      let socket = try count(entry, maps: maps)
      counted.append(socket)
      summary.sockets += 1
      socket.forEachCPU { cpu, packets in
        summary.packetsByCPU[cpu, default: 0] += packets
        summary.packetsByNode[topology.node(ofCPU: cpu) ?? -1, default: 0] += packets
      }
      let pid = Int32(bitPattern: entry.tgid)
      if isCrossNUMA(socket, threadNodes: { factsOf(pid).threadNodes }, topology: topology) {
        summary.crossNUMASockets += 1
        crossing[pid, default: 0] += 1
      }
      if let queue = socket.rxQueue {
        let namespace = factsOf(pid).networkNamespace ?? 0
        queueMembers["\(namespace)/\(socket.ifindex)/\(queue)", default: []].append(counted.count - 1)
      }
    }
    summary.crossNUMAProcesses = crossing.keys.sorted().map {
      CrossNUMAProcess(pid: $0, command: factsOf($0).command, sockets: crossing[$0] ?? 0)
    }

    // Full answers, from userspace, for the few sockets that need them.
    let interfaceNames = SocketInspection.InterfaceNames()
    var skipped: Set<Int32> = []
    func answer(_ socket: Counted) -> SocketAffinity? {
      let (pid, fd) = (Int32(bitPattern: socket.entry.tgid), Int32(bitPattern: socket.entry.fd))
      do {
        let target = try TargetSocket(pid: pid, fd: fd)
        // The fd may have been closed and reused since the kernel's pass.
        guard let record = try maps.record(socketFD: target.descriptor.rawValue), record.cookie == socket.entry.cookie
        else { return nil }
        let kind = try inspection.kind(of: target)
        return try inspection.answer(
          socket: target, kind: kind, record: record, clock: maps.clock, process: factsOf(pid),
          interfaceNames: interfaceNames)
      } catch {
        if error.kind == .notPermitted { skipped.insert(pid) }
        return nil
      }
    }
    var queues: [String: RXQueue] = [:]
    for members in queueMembers.values {
      // The first holder that still answers names the interface and its IRQ.
      guard let named = members.lazy.map({ counted[$0] }).compactMap(answer).first, let interface = named.interface
      else { continue }
      let queue = counted[members[0]].rxQueue ?? 0
      queues["\(interface)/\(queue)", default: RXQueue(interface: interface, queue: queue, irq: named.irq, sockets: 0)]
        .sockets += members.count
    }
    summary.rxQueues = ordered(queues)
    counted.sort { a, b in
      a.packets != b.packets ? a.packets > b.packets : (a.entry.tgid, a.entry.fd) < (b.entry.tgid, b.entry.fd)
    }
    for socket in counted where summary.busiest.count < top {
      if let full = answer(socket) { summary.busiest.append(full) }
    }
    summary.busiest.sort(by: busier)
    summary.skippedProcesses = skipped.count
    return summary
  }
}
