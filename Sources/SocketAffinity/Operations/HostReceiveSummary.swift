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
  public enum Source: String, Sendable {
    /// The held-sockets iterator (kernel >= 5.11).
    case iterator
    /// A walk of /proc/P/fd for every process (`SocketListing`).
    case procfs
  }

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

  public let source: Source
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
  public init(source: Source) { self.source = source }

  /// From a full listing: what every socket's answer says.
  public init(listing: SocketListing.Result, top: Int) {
    source = .procfs
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

  /// One socket's packets by CPU: from the record alone unless it holds a
  /// pool slot (then the slot's per-CPU shares, as `query` reads them).
  private struct Counted {
    let entry: HeldSockets.Entry
    let packets: UInt64
    let byCPU: [(cpu: Int, packets: UInt64)]
    let other: UInt64
    let rxQueue: UInt32?
    let ifindex: UInt32
  }

  private static func count(_ entry: HeldSockets.Entry, maps: PinnedMaps) throws(SockaffError) -> Counted {
    let raw = entry.record
    if raw.pool_slot != 0 && raw.pool_slot != SOCKAFF_POOL_NONE {
      let record = ReceiveRecord(raw, shares: try maps.shares(slot: raw.pool_slot))
      return Counted(
        entry: entry, packets: record.packets, byCPU: record.packetsByCPU, other: record.otherPackets,
        rxQueue: record.rxQueue, ifindex: record.ifindex)
    }
    let owner = Int(raw.owner_cpu) - 1
    return Counted(
      entry: entry, packets: raw.owner.packets &+ raw.unpooled_packets,
      byCPU: raw.owner.packets > 0 ? [(owner, raw.owner.packets)] : [], other: raw.unpooled_packets,
      rxQueue: raw.owner.rx_queue > 0 ? raw.owner.rx_queue - 1 : nil, ifindex: raw.owner.ifindex)
  }

  /// Cross-NUMA as `SocketInspection.locality` decides it: from traced reads
  /// when there are any, else from where the process's threads last ran.
  private static func isCrossNUMA(_ counted: Counted, threadNodes: () -> [Int], topology: Topology) -> Bool {
    let raw = counted.entry.record
    let reads = raw.reads_and_cpu & SOCKAFF_READS_COUNT_MASK
    if reads > 0 { return Double(raw.reads_same_node) / Double(reads) < 0.5 }
    let nodes = threadNodes()
    guard !nodes.isEmpty, counted.packets > 0 else { return false }
    let local = counted.byCPU.filter { topology.node(ofCPU: $0.cpu).map(nodes.contains) ?? false }
      .reduce(0) { $0 + $1.packets }
    let known = counted.byCPU.reduce(0) { $0 + $1.packets } + counted.other
    return Double(local) / Double(max(known, 1)) < 0.5
  }

  static func summarize(_ entries: [HeldSockets.Entry], top: Int, maps: PinnedMaps, topology: Topology)
    throws(SockaffError) -> HostReceiveSummary
  {
    var summary = HostReceiveSummary(source: .iterator)
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
    // Sockets per (holder's namespace, ifindex, queue), with the holders that
    // can name the interface and its IRQ.
    var queueMembers: [String: [Counted]] = [:]
    for entry in entries where entry.record.owner_cpu > 0 {
      guard case .success = SocketKind.classify(domain: entry.family, type: entry.type, protocol: entry.proto) else {
        continue
      }
      let socket = try count(entry, maps: maps)
      counted.append(socket)
      summary.sockets += 1
      for (cpu, packets) in socket.byCPU {
        summary.packetsByCPU[cpu, default: 0] += packets
        summary.packetsByNode[topology.node(ofCPU: cpu) ?? -1, default: 0] += packets
      }
      if isCrossNUMA(socket, threadNodes: { factsOf(entry.pid).threadNodes }, topology: topology) {
        summary.crossNUMASockets += 1
        crossing[entry.pid, default: 0] += 1
      }
      if let queue = socket.rxQueue {
        let namespace = factsOf(entry.pid).networkNamespace ?? 0
        queueMembers["\(namespace)/\(socket.ifindex)/\(queue)", default: []].append(socket)
      }
    }
    summary.crossNUMAProcesses = crossing.keys.sorted().map {
      CrossNUMAProcess(pid: $0, command: factsOf($0).command, sockets: crossing[$0] ?? 0)
    }

    // Full answers, from userspace, for the few sockets that need them.
    let interfaceNames = SocketInspection.InterfaceNames()
    var skipped: Set<Int32> = []
    func answer(_ socket: Counted) -> SocketAffinity? {
      let entry = socket.entry
      do {
        let target = try TargetSocket(pid: entry.pid, fd: entry.fd)
        // The fd may have been closed and reused since the kernel's pass.
        guard let record = try maps.record(socketFD: target.descriptor.rawValue),
          record.cookie == entry.record.cookie
        else { return nil }
        let kind = try inspection.kind(of: target)
        return try inspection.answer(
          socket: target, kind: kind, record: record, clock: maps.clock, process: factsOf(entry.pid),
          interfaceNames: interfaceNames)
      } catch {
        if error.kind == .notPermitted { skipped.insert(entry.pid) }
        return nil
      }
    }
    var queues: [String: RXQueue] = [:]
    for members in queueMembers.values {
      // The first holder that still answers names the interface and its IRQ.
      guard let named = members.lazy.compactMap(answer).first, let interface = named.interface else { continue }
      let queue = members[0].rxQueue ?? 0
      queues["\(interface)/\(queue)", default: RXQueue(interface: interface, queue: queue, irq: named.irq, sockets: 0)]
        .sockets += members.count
    }
    summary.rxQueues = ordered(queues)
    counted.sort { a, b in
      a.packets != b.packets ? a.packets > b.packets : (a.entry.pid, a.entry.fd) < (b.entry.pid, b.entry.fd)
    }
    for socket in counted where summary.busiest.count < top {
      if let full = answer(socket) { summary.busiest.append(full) }
    }
    summary.busiest.sort(by: busier)
    summary.skippedProcesses = skipped.count
    return summary
  }
}
