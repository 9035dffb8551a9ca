import CLibbpf
import CSockaffABI
import Glibc

/// What `sockaff status` reports: the kernel's view of the attachment, the
/// pinned maps' counters and the probed kernel features.
public struct TracerStatus: Sendable, Codable {
  public let attached: Bool
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

  enum CodingKeys: String, CodingKey {
    case attached, mode, cgroup, programs, kernel, features, interfaces
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
  }
}

extension Tracer {
  public func status() throws(SockaffError) -> TracerStatus {
    let mounts = try Mounts.current()
    let cgroup = Mounts.cgroup2Root(in: mounts)
    let bpffs = Mounts.isBPFFSMounted(in: mounts)
    let programs = try cgroup.map { (path) throws(SockaffError) in try AttachedPrograms.query(cgroup: path) } ?? []
    var linkPinned = false
    if bpffs, let link = try BPF.openPinned(pins.ingressLink) {
      link.closeQuietly()
      linkPinned = true
    }

    var created: UInt64?
    var untracked: UInt64?
    var inUse: UInt64?
    var exhausted: UInt64?
    var slots: UInt32?
    var valueSize: UInt32?
    var hz: UInt64?
    if bpffs, let counts = try BPF.openPinned(pins.counts) {
      defer { counts.closeQuietly() }
      created = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_RECORDS_CREATED.rawValue)
      untracked = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_UNTRACKED.rawValue)
      let taken = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_POOL_TAKEN.rawValue)
      let returned = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_POOL_RETURNED.rawValue)
      inUse = taken &- returned
      exhausted = try Counters.sum(mapFD: counts.rawValue, index: SOCKAFF_COUNT_POOL_EXHAUSTED.rawValue)
    }
    if bpffs, let pool = try BPF.openPinned(pins.pool) {
      defer { pool.closeQuietly() }
      slots = try BPF.mapInfo(pool).max_entries
    }
    var live: Int?
    var liveError: String?
    if bpffs, let records = try BPF.openPinned(pins.records) {
      defer { records.closeQuietly() }
      valueSize = try BPF.mapInfo(records).value_size
      if let reader = KernelFeatures.feature(KernelFeatures.liveRecordsIterator), reader.state != .yes {
        liveError = reader.reason
      } else {
        do {
          try PinnedMaps.checkLayout(of: records, pins: pins)
          live = try LiveRecords.count(records: records)
        } catch {
          liveError = error.description
        }
      }
    } else {
      RecordsIterator.forgetAll()
    }
    if bpffs, let clock = try BPF.openPinned(pins.clock) {
      defer { clock.closeQuietly() }
      hz = try ClockReference.load(clockMapFD: clock.rawValue).hz
    }
    let runs = programs.reduce(0) { $0 + $1.runCount }
    let time = programs.reduce(0) { $0 + $1.runTimeNanoseconds }
    return TracerStatus(
      attached: !programs.isEmpty,
      mode: programs.isEmpty ? nil : (linkPinned ? "pinned" : bpffs ? "foreground" : "unknown"),
      cgroup: cgroup, pinDirectory: pins.directory, bpffsMounted: bpffs, programs: programs,
      recordsCreated: created, untrackedPackets: untracked, liveRecords: live, liveRecordsError: liveError,
      recordValueSize: valueSize, poolSlots: slots, poolSlotsInUse: inUse,
      poolBytes: slots.map { UInt64(PoolSize.bytes(slots: Int($0), possibleCPUs: PoolSize.possibleCPUs)) },
      poolExhaustedSockets: exhausted, kernelHZ: hz,
      bpfStatsEnabled: KernelFeatures.bpfStatsEnabled(),
      nanosecondsPerPacket: runs > 0 ? Double(time) / Double(runs) : nil,
      kernel: KernelFeatures.release(), features: KernelFeatures.probe(),
      interfaces: InterfaceSteering.all(topology: .live()))
  }
}
