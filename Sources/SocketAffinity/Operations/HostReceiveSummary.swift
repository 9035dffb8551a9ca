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
    /// Open traced sockets whose latest packet came from this queue, each
    /// once however many processes hold it.
    public var sockets: Int
  }

  public struct CrossNUMAProcess: Sendable, Equatable {
    public let pid: Int32
    public let command: String?
    public let sockets: Int
  }

  /// Traced TCP and UDP sockets, one per holder (process and fd), as `list`.
  public var sockets = 0
  /// ... each socket once, however many processes hold it: what `busiest`
  /// is chosen from.
  public var distinctSockets = 0
  /// ... and those consumed mostly on another node, one per holder too (a
  /// holder's threads decide it where no reads were traced).
  public var crossNUMASockets = 0
  /// Packets of those sockets by the CPU that processed them, each socket
  /// counted once however many processes hold it (a pre-fork server's
  /// listener is held by every worker).
  public var packetsByCPU: [Int: UInt64] = [:]
  /// ... and by that CPU's node (-1: a CPU the topology does not know).
  public var packetsByNode: [Int: UInt64] = [:]
  /// By interface and queue, in that order.
  public var rxQueues: [RXQueue] = []
  /// Processes with at least one cross-NUMA socket, by pid.
  public var crossNUMAProcesses: [CrossNUMAProcess] = []
  /// The `top` sockets with the most packets, most first (ties by pid, fd):
  /// each socket once, under its first holder in that order (the lowest
  /// pid), so that a listener shared by a pre-fork server's many workers
  /// takes one place, not one per worker.
  public var busiest: [SocketAffinity] = []
  /// Processes whose sockets could not be opened (no CAP_SYS_PTRACE).
  public var skippedProcesses = 0
  /// Sockets per holder cgroup, most first (`CgroupSummary`).
  public var cgroups: [CgroupSummary] = []
  /// Hash checks (`HashCheck`) of the sockets answered in full, each once,
  /// on interfaces with a device: by interface and verdict. A listing
  /// answers every socket; the kernel's pass only the busiest.
  public var hashChecks: [HashCheckCount] = []

  public struct HashCheckCount: Sendable, Equatable {
    public let interface: String
    public let verdict: HashCheck.Verdict
    public var sockets: Int
  }

  /// The verdicts of `answers` (each socket once) on interfaces with a
  /// device, by interface and verdict, in that order.
  static func hashChecks(_ answers: [SocketAffinity]) -> [HashCheckCount] {
    var counts: [String: HashCheckCount] = [:]
    var seen = Set<UInt64>()
    // By index: the fields read in place, not each answer copied (a scrape
    // reads every socket of the host).
    for index in answers.indices where seen.insert(answers[index].cookie).inserted {
      guard let check = answers[index].hashCheck, let interface = answers[index].interface,
        answers[index].path?.softwareInterface == false
      else { continue }
      counts[
        "\(interface)/\(check.verdict.rawValue)",
        default: HashCheckCount(interface: interface, verdict: check.verdict, sockets: 0)
      ]
      .sockets += 1
    }
    return counts.values.sorted { ($0.interface, $0.verdict.rawValue) < ($1.interface, $1.verdict.rawValue) }
  }

  /// Nothing yet: the tracer is not attached.
  public init() {}

  /// From a full listing: what every socket's answer says.
  public init(listing: SocketListing.Result, top: Int) {
    // Every pass below reads the answers by index: an answer is a large
    // value, and copying each (filtering, grouping or sorting the answers
    // themselves) was a fifth of a 100,000-socket scrape.
    let sockets = listing.sockets
    self.sockets = sockets.count
    // A socket's packets and queue once, from its first holder.
    var seen = Set<UInt64>(minimumCapacity: sockets.count)
    var queues = QueueTally()
    for index in sockets.indices {
      if sockets[index].crossNUMA == true { crossNUMASockets += 1 }
      guard seen.insert(sockets[index].cookie).inserted else { continue }
      distinctSockets += 1
      for share in sockets[index].cpus {
        packetsByCPU[share.cpu, default: 0] += share.packets
        packetsByNode[share.numaNode ?? -1, default: 0] += share.packets
      }
      queues.add(
        interface: sockets[index].interface, queue: sockets[index].rxQueue, irq: sockets[index].irq, sockets: 1)
    }
    rxQueues = queues.ordered
    crossNUMAProcesses = ProcessMismatch.summarize(sockets).map {
      CrossNUMAProcess(pid: $0.pid, command: $0.command, sockets: $0.crossNUMASockets)
    }
    // The order of `busier`, by keys: the answers themselves stay put.
    let ranked = sockets.indices.map { (packets: sockets[$0].packets ?? 0, pid: sockets[$0].pid, fd: sockets[$0].fd) }
      .enumerated().sorted { a, b in
        a.element.packets != b.element.packets
          ? a.element.packets > b.element.packets : (a.element.pid, a.element.fd) < (b.element.pid, b.element.fd)
      }.map(\.offset)
    busiest = Self.busiest(ranked, top: top, cookie: { sockets[$0].cookie }) { sockets[$0] }
    hashChecks = Self.hashChecks(sockets)
    cgroups = CgroupSummary.summarize(sockets)
    skippedProcesses = listing.notPermitted.count
  }

  /// Most packets first, then by pid and fd.
  static func busier(_ a: SocketAffinity, _ b: SocketAffinity) -> Bool {
    let (x, y) = (a.packets ?? 0, b.packets ?? 0)
    return x != y ? x > y : (a.pid, a.fd) < (b.pid, b.fd)
  }

  /// Sockets per (interface, queue), each queue named by a socket's full
  /// answer (interface name, IRQ).
  private struct QueueTally {
    private var byName: [String: RXQueue] = [:]

    mutating func add(interface: String?, queue: UInt32?, irq: Int?, sockets: Int) {
      guard let interface, let queue else { return }
      byName["\(interface)/\(queue)", default: RXQueue(interface: interface, queue: queue, irq: irq, sockets: 0)]
        .sockets += sockets
    }

    /// By interface and queue, in that order.
    var ordered: [RXQueue] { byName.values.sorted { ($0.interface, $0.queue) < ($1.interface, $1.queue) } }
  }

  /// The first `top` full answers from `candidates` (busiest first), each
  /// socket once, under its first holder that answers: a listener held by a
  /// pre-fork server's many workers takes one place, not one per worker.
  private static func busiest<Candidate>(
    _ candidates: [Candidate], top: Int, cookie: (Candidate) -> UInt64, answer: (Candidate) -> SocketAffinity?
  ) -> [SocketAffinity] {
    var shown = Set<UInt64>()
    var chosen: [SocketAffinity] = []
    for candidate in candidates where chosen.count < top && !shown.contains(cookie(candidate)) {
      guard let full = answer(candidate) else { continue }
      chosen.append(full)
      shown.insert(full.cookie)
    }
    return chosen
  }

  /// Through the held-sockets iterator; throws `.bpf` where the kernel cannot
  /// load or run it (the caller then lists instead).
  public static func read(
    top: Int, pins: PinLayout = PinLayout(), reading reader: PinnedMaps? = nil, steering: SteeringInspection? = nil,
    topology: Topology
  ) throws(SockaffError) -> HostReceiveSummary {
    let maps: PinnedMaps
    if let reader { maps = reader } else { maps = try PinnedMaps(pins: pins) }
    try maps.requireAttached()
    return try HeldSockets.withEntries(records: maps.records.descriptor) { (entries) throws(SockaffError) in
      try summarize(entries, top: top, maps: maps, steering: steering, topology: topology)
    }
  }

  /// One holder's socket: its entry and its packets (`EntryCount`), kept
  /// small on purpose: a scrape makes one per traced socket.
  private struct Counted {
    let index: Int
    let packets: UInt64
  }

  /// One entry's packets: the record's owner CPU's count, plus, only for a
  /// socket that holds a pool slot, every other CPU's share of it (as
  /// `ReceiveRecord` sums them for `query`); and where its latest packet
  /// came from, as the CPU that received it kept it: RX queue + 1 (0 when
  /// unrecorded) and interface.
  private struct EntryCount {
    var packets: UInt64
    let owner: (cpu: Int, packets: UInt64)
    var pooled: [(cpu: Int, packets: UInt64)] = []
    var queue: UInt32
    var ifindex: UInt32

    /// Packets by the CPU that processed them (no array is made).
    func forEachCPU(_ body: (Int, UInt64) -> Void) {
      if owner.packets > 0 { body(owner.cpu, owner.packets) }
      for share in pooled { body(share.cpu, share.packets) }
    }

    init(_ entry: HeldSockets.Entry, maps: PinnedMaps?) throws(SockaffError) {
      owner = (Int(entry.owner_cpu) - 1, entry.owner_packets)
      packets = entry.owner_packets &+ entry.unpooled_packets
      (queue, ifindex) = (entry.owner_rx_queue, entry.owner_ifindex)
      guard entry.pool_slot != 0 && entry.pool_slot != SOCKAFF_POOL_NONE, let maps else { return }
      // As `ReceiveRecord` decodes them for `query`: the same rule.
      var (pooled, packets, queue, ifindex) = (pooled, packets, queue, ifindex)
      ReceiveRecord.forEachShare(of: entry.cookie, in: try maps.shares(slot: entry.pool_slot)) { cpu, rx in
        pooled.append((cpu, rx.packets))
        packets &+= rx.packets
        if cpu == Int(entry.latest_cpu) { (queue, ifindex) = (rx.rx_queue, rx.ifindex) }
      }
      (self.pooled, self.packets, self.queue, self.ifindex) = (pooled, packets, queue, ifindex)
    }
  }

  /// Where a socket's latest packet came from (its holder's namespace).
  private struct QueueKey: Hashable {
    let namespace: UInt64
    let ifindex: UInt32
    let queue: UInt32
  }

  /// Cross-NUMA by `SocketInspection`'s rule: from traced reads when there
  /// are any, else from where the process's threads last ran.
  /// `byCPU` and `threadNodes` are asked for only where no reads were
  /// traced (most sockets have reads: no array is made for them).
  private static func isCrossNUMA(
    _ entry: HeldSockets.Entry, packets: UInt64, byCPU: () -> [(cpu: Int, packets: UInt64)],
    threadNodes: () -> [Int], topology: Topology
  ) -> Bool {
    let reads = entry.reads & SOCKAFF_READS_COUNT_MASK
    if reads > 0 { return SocketInspection.isCrossNUMA(sameNode: Double(entry.reads_same_node) / Double(reads)) }
    guard packets > 0 else { return false }
    return SocketInspection.sampledSameNode(
      packetsByCPU: byCPU(), otherPackets: entry.unpooled_packets, threadNodes: threadNodes(), topology: topology
    ).map(SocketInspection.isCrossNUMA) ?? false
  }

  /// The summary of the kernel's pass. `maps` reads pool slots' shares and
  /// the busiest sockets' full answers; without it (unit tests of the
  /// totals, from entries alone) neither is read.
  static func summarize(
    _ entries: UnsafeBufferPointer<HeldSockets.Entry>, top: Int, maps: PinnedMaps?,
    steering: SteeringInspection? = nil, topology: Topology
  )
    throws(SockaffError) -> HostReceiveSummary
  {
    var summary = HostReceiveSummary()
    let inspection = SocketInspection(topology: topology, steering: steering)
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
    // Packets by CPU, indexed by CPU (a dictionary per socket costs more
    // than the rest of the loop).
    var packetsByCPU: [UInt64] = []
    func add(_ cpu: Int, _ packets: UInt64) {
      guard cpu >= 0 else { return }
      if cpu >= packetsByCPU.count { packetsByCPU += repeatElement(0, count: cpu + 1 - packetsByCPU.count) }
      packetsByCPU[cpu] &+= packets
    }
    // Sockets (indexes into `counted`) per (holder's namespace, ifindex,
    // queue): any of them can name the interface and its IRQ.
    var queueMembers: [QueueKey: [Int]] = [:]
    // Cookies of the sockets counted so far: a socket's packets and queue
    // count once, from its first holder.
    var seen = Set<UInt64>(minimumCapacity: entries.count)
    var cgroups = CgroupSummary.Tally()
    for (index, entry) in entries.enumerated() where entry.owner_cpu > 0 {
      let kind = SocketKind.classify(
        domain: Int32(entry.family), type: Int32(entry.type), protocol: Int32(entry.protocol))
      guard case .success = kind else { continue }
      let count = try EntryCount(entry, maps: maps)
      counted.append(Counted(index: index, packets: count.packets))
      summary.sockets += 1
      let first = seen.insert(entry.cookie).inserted
      if first { count.forEachCPU(add) }

      let pid = Int32(bitPattern: entry.tgid)
      let crossNUMA = isCrossNUMA(
        entry, packets: count.packets,
        byCPU: {
          var byCPU: [(cpu: Int, packets: UInt64)] = []
          count.forEachCPU { byCPU.append(($0, $1)) }
          return byCPU
        }, threadNodes: { factsOf(pid).threadNodes }, topology: topology)
      if crossNUMA {
        summary.crossNUMASockets += 1
        crossing[pid, default: 0] += 1
      }
      cgroups.add(
        cgroup: factsOf(pid).cgroup, pid: pid, cookie: entry.cookie, crossNUMA: crossNUMA, packets: count.packets,
        byNode: {
          var byNode: [Int: UInt64] = [:]
          count.forEachCPU { cpu, packets in byNode[topology.node(ofCPU: cpu) ?? -1, default: 0] += packets }
          return byNode
        }())
      if first && count.queue > 0 {
        let key = QueueKey(namespace: factsOf(pid).networkNamespace ?? 0, ifindex: count.ifindex, queue: count.queue)
        queueMembers[key, default: []].append(counted.count - 1)
      }
    }
    summary.distinctSockets = seen.count
    for (cpu, packets) in packetsByCPU.enumerated() where packets > 0 {
      summary.packetsByCPU[cpu] = packets
      summary.packetsByNode[topology.node(ofCPU: cpu) ?? -1, default: 0] += packets
    }
    summary.crossNUMAProcesses = crossing.keys.sorted().map {
      CrossNUMAProcess(pid: $0, command: factsOf($0).command, sockets: crossing[$0] ?? 0)
    }

    // Full answers, from userspace, for the few sockets that need them.
    let interfaceNames = SocketInspection.InterfaceNames()
    var skipped: Set<Int32> = []
    func answer(_ socket: Counted) -> SocketAffinity? {
      guard let maps else { return nil }
      let entry = entries[socket.index]
      let (pid, fd) = (Int32(bitPattern: entry.tgid), Int32(bitPattern: entry.fd))
      do {
        let target = try TargetSocket(pid: pid, fd: fd)
        // The fd may have been closed and reused since the kernel's pass.
        guard let record = try maps.record(socketFD: target.descriptor.rawValue), record.cookie == entry.cookie
        else { return nil }
        let kind = try inspection.kind(of: target)
        return try inspection.answer(
          socket: target, kind: kind, record: record, clock: maps.clock, readSampling: maps.readSampling,
          process: factsOf(pid),
          interfaceNames: interfaceNames)
      } catch {
        if error.kind == .notPermitted { skipped.insert(pid) }
        return nil
      }
    }
    var queues = QueueTally()
    for (key, members) in queueMembers {
      // The first holder that still answers names the interface and its IRQ.
      guard let named = members.lazy.map({ counted[$0] }).compactMap(answer).first else { continue }
      queues.add(interface: named.interface, queue: key.queue - 1, irq: named.irq, sockets: members.count)
    }
    summary.rxQueues = queues.ordered
    counted.sort { a, b in
      if a.packets != b.packets { return a.packets > b.packets }
      let (x, y) = (entries[a.index], entries[b.index])
      return (x.tgid, x.fd) < (y.tgid, y.fd)
    }
    summary.busiest = busiest(counted, top: top, cookie: { entries[$0.index].cookie }, answer: answer)
    summary.busiest.sort(by: busier)
    summary.hashChecks = hashChecks(summary.busiest)
    summary.cgroups = cgroups.summaries
    summary.skippedProcesses = skipped.count
    return summary
  }
}
