import CLibbpf
import CSockaffABI
import Glibc
import SystemPackage

/// What `sockaff status` reports: the kernel's view of the attachment, the
/// pinned maps' counters and the probed kernel features.
public struct TracerStatus: Sendable, Codable {
  /// Whether the tracer is attached; false also when this process may not
  /// ask (then `unreadable` says why, and the tracer's own figures are nil).
  public let attached: Bool
  /// Why the tracer's state could not be read (a user without
  /// CAP_NET_ADMIN, or not root for the pins): what needs no privilege, the
  /// kernel's features and the NICs, is still shown.
  public let unreadable: String?
  /// "pinned" (survives this process), "foreground" (held by a running
  /// `trace --foreground`), "unknown" (no bpffs here to tell, as in a
  /// container's mount namespace), or nil when not attached.
  public let mode: String?
  public let cgroup: String?
  public let pinDirectory: String
  public let bpffsMounted: Bool
  public let programs: [AttachedProgram]
  /// Sockets that received their first traced packet since attach.
  public let recordsCreated: UInt64?
  /// Packets for which no record could be made (not a full socket, or no memory).
  public let untrackedPackets: UInt64?
  /// Records in the map right now: open sockets that received a traced
  /// packet (the map's fill; freed with their sockets). Nil if unreadable.
  public let liveRecords: Int?
  /// Why liveRecords could not be read: the kernel lacks or refused the
  /// socket-storage iterator (its `reason`), or reading failed.
  public let liveRecordsError: String?
  public let recordValueSize: UInt32?
  /// Pool of per-CPU shares for sockets received on more than one CPU:
  /// its slots, those held by open sockets now, its per-CPU memory, and the
  /// sockets that found it full (their other CPUs' packets are counted,
  /// but not split by CPU: `other_cpus_packets` in their answer).
  public let poolSlots: UInt32?
  public let poolSlotsInUse: UInt64?
  public let poolBytes: UInt64?
  public let poolExhaustedSockets: UInt64?
  public let kernelHZ: UInt64?
  public let bpfStatsEnabled: Bool
  /// Mean ns per packet of the ingress program, when bpf_stats are enabled.
  public let nanosecondsPerPacket: Double?
  public let kernel: String
  public let features: [KernelFeature]
  /// Each NIC's queues, RSS and IRQs (`InterfaceSteering`).
  public let interfaces: [InterfaceSteering]
  /// While attached: what changed in the NICs' steering since the tracer
  /// attached (`SteeringSnapshot`), and when that was (Unix seconds); nil
  /// when no snapshot was kept.
  public var steeringChanges: [SteeringSnapshot.Change]? = nil
  public var steeringSince: Double? = nil
  /// While attached, `status` alone: each NIC's traced sockets by the
  /// verdict of their hash check (`HashCheck`), from one listing. nil when
  /// not counted (detached, no NIC, or a scrape, which counts its own).
  public var hashChecks: [NICHashChecks]? = nil
  /// While attached: 1 when every read is counted, SOCKAFF_READ_SAMPLE when
  /// one in that many is (`trace --sampled-reads`), nil when reads are not
  /// traced.
  public var readSampling: Int? = nil

  /// One NIC's verdicts. One contradicted socket makes every prediction
  /// on the NIC suspect.
  public struct NICHashChecks: Sendable, Codable, Equatable {
    public let interface: String
    public var verified = 0
    public var contradicted = 0
    public var unverifiable = 0
  }

  enum CodingKeys: String, CodingKey {
    case attached, mode, cgroup, programs, kernel, features, interfaces, unreadable
    case pinDirectory = "pin_directory"
    case bpffsMounted = "bpffs_mounted"
    case recordsCreated = "records_created"
    case untrackedPackets = "untracked_packets"
    case liveRecords = "live_records"
    case liveRecordsError = "live_records_error"
    case recordValueSize = "record_value_size"
    case poolSlots = "pool_slots"
    case poolSlotsInUse = "pool_slots_in_use"
    case poolBytes = "pool_bytes"
    case poolExhaustedSockets = "pool_exhausted_sockets"
    case kernelHZ = "kernel_hz"
    case bpfStatsEnabled = "bpf_stats_enabled"
    case nanosecondsPerPacket = "nanoseconds_per_packet"
    case steeringChanges = "steering_changes"
    case steeringSince = "steering_since"
    case hashChecks = "hash_checks"
    case readSampling = "read_sampling"
  }

  /// Counts each NIC's hash verdicts from one listing of every process's
  /// traced sockets (what `check` reads too); no listing without a NIC.
  public mutating func countHashChecks(topology: Topology = .live()) throws(SockaffError) {
    guard attached, !interfaces.isEmpty else { return }
    let listing = try SocketListing(topology: topology).listReportingSkipped()
    var byInterface = Dictionary(
      uniqueKeysWithValues: interfaces.map { ($0.interface, NICHashChecks(interface: $0.interface)) })
    for count in HostReceiveSummary.hashChecks(listing.sockets) where byInterface[count.interface] != nil {
      switch count.verdict {
      case .verified: byInterface[count.interface]?.verified += count.sockets
      case .contradicted: byInterface[count.interface]?.contradicted += count.sockets
      case .unverifiable: byInterface[count.interface]?.unverifiable += count.sockets
      }
    }
    hashChecks = interfaces.compactMap { byInterface[$0.interface] }
  }
}

extension Tracer {
  /// The tracer as the kernel and its pins say. `reader`: the pins opened
  /// and checked once for this scrape (`PinnedMaps`), read instead of the
  /// pins one by one; without one, each pin is opened here, so that pins of
  /// another layout, which a reader refuses, are still reported.
  /// `steering`: the interfaces already read for this scrape.
  public func status(reading reader: PinnedMaps? = nil, steering: SteeringInspection? = nil) throws(SockaffError)
    -> TracerStatus
  {
    let mounts = try Mounts.current()
    let cgroup = Mounts.cgroup2Root(in: mounts)
    let bpffs = Mounts.isBPFFSMounted(in: mounts)
    var unreadable: String?
    var programs: [AttachedProgram] = []
    do {
      programs = try cgroup.map { (path) throws(SockaffError) in try AttachedPrograms.query(cgroup: path) } ?? []
    } catch  where error.kind == .notPermitted {
      unreadable = error.description
    }
    // The pins are root's (0600, in a 0700 bpffs): without root their
    // figures are unknown, said once, and everything else is still shown.
    let readable = bpffs && unreadable == nil
    var linkPinned = false
    if readable { linkPinned = try PinnedLink.open(pins.ingressLink) != nil }

    var created: UInt64?
    var untracked: UInt64?
    var inUse: UInt64?
    var exhausted: UInt64?
    var slots: UInt32?
    var valueSize: UInt32?
    var hz: UInt64?
    /// A pin's figures: the reader's descriptor, or the pin opened for them.
    func figures(_ path: String, _ opened: PinnedMap?, _ body: (FileDescriptor) throws(SockaffError) -> Void)
      throws(SockaffError)
    {
      guard readable else { return }
      var map = opened
      if map == nil { map = try PinnedMap.open(path) }
      guard let map else { return }
      try body(map.descriptor)
    }
    try figures(pins.counts, reader?.counts) { (counts) throws(SockaffError) in
      created = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_RECORDS_CREATED.rawValue)
      untracked = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_UNTRACKED.rawValue)
      let taken = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_POOL_TAKEN.rawValue)
      let returned = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_POOL_RETURNED.rawValue)
      inUse = taken &- returned
      exhausted = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_POOL_EXHAUSTED.rawValue)
    }
    try figures(pins.pool, reader?.pool) { (pool) throws(SockaffError) in slots = try BPF.mapInfo(pool).max_entries }
    var live: Int?
    var liveError: String?
    try figures(pins.records, reader?.records) { (records) throws(SockaffError) in
      valueSize = try BPF.mapInfo(records).value_size
      if let iterator = KernelFeatures.feature(KernelFeatures.liveRecordsIterator), iterator.state != .yes {
        liveError = iterator.reason
        return
      }
      do throws(SockaffError) {
        // A reader checked the layout when it opened the pins.
        if reader == nil { try PinnedMaps.checkLayout(of: records, pins: pins) }
        live = try LiveRecords.count(records: records)
      } catch {
        liveError = error.description
      }
    }
    if let reader {
      hz = reader.clock?.hz
    } else {
      try figures(pins.clock, nil) { (clock) throws(SockaffError) in
        hz = try ClockReference.load(clockMapFD: clock.rawValue).hz
      }
    }
    let runs = programs.reduce(0) { $0 + $1.runCount }
    let time = programs.reduce(0) { $0 + $1.runTimeNanoseconds }
    let interfaces = InterfaceSteering.all(
      topology: .live(), queues: steering.map { cache in { cache.queues(of: $0) } })
    var status = TracerStatus(
      attached: !programs.isEmpty, unreadable: unreadable,
      mode: programs.isEmpty ? nil : (linkPinned ? "pinned" : bpffs ? "foreground" : "unknown"),
      cgroup: cgroup, pinDirectory: pins.directory, bpffsMounted: bpffs, programs: programs,
      recordsCreated: created, untrackedPackets: untracked, liveRecords: live, liveRecordsError: liveError,
      recordValueSize: valueSize, poolSlots: slots, poolSlotsInUse: inUse,
      poolBytes: slots.map { UInt64(PoolSize.bytes(slots: Int($0), possibleCPUs: PoolSize.possibleCPUs)) },
      poolExhaustedSockets: exhausted, kernelHZ: hz,
      bpfStatsEnabled: KernelFeatures.bpfStatsEnabled(),
      nanosecondsPerPacket: runs > 0 ? Double(time) / Double(runs) : nil,
      kernel: KernelFeatures.release(), features: KernelFeatures.probe(), interfaces: interfaces)
    if status.attached { status.readSampling = reader?.readSampling ?? ReadSampling.current(pins: pins) }
    if status.attached, let snapshot = SteeringSnapshot.load(pins.steeringSnapshot) {
      status.steeringChanges = snapshot.changes(to: .now(interfaces))
      status.steeringSince = snapshot.takenAt
    }
    return status
  }
}
