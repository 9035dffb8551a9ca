import CLibbpf
import CSockaffABI
import Glibc
import SystemPackage

/// The one reader of the pinned tracer: its maps opened and their layout
/// checked once per command or scrape, for any number of lookups (a `list`
/// of 100k sockets opens them once, not per socket; a scrape's status and
/// summary share one). When the records pin is gone, the readers' iterator
/// programs loaded for it are dropped with it (`RecordsIterator.forgetAll`),
/// so a metrics server holds no detached map.
public final class PinnedMaps: @unchecked Sendable {
  let records: PinnedMap
  /// The per-CPU shares of sockets received on more than one CPU.
  let pool: PinnedMap
  /// The tracer's counters (nil in pins of a sockaff before them).
  let counts: PinnedMap?
  let clock: ClockReference?
  /// 1 in how many reads the read counters count (`ReadSampling`; 1 when
  /// every read, or when reads are not traced and the counters stay 0).
  let readSampling: Int
  let pins: PinLayout
  /// Possible CPUs: the length of every per-CPU value the kernel returns.
  let possibleCPUs: Int

  /// Throws notAttached when there are no pins, incompatiblePins when they
  /// were made by a sockaff with another record layout.
  public init(pins: PinLayout = PinLayout()) throws(SockaffError) {
    self.pins = pins
    guard Mounts.isBPFFSMounted(in: try Mounts.current()) else {
      throw SockaffError(
        .notAttached, operation: "tracer not attached",
        hint:
          "bpffs is not mounted at \(Mounts.bpffsMountPoint), so no tracer pins can be read; 'sockaff trace' mounts it"
      )
    }
    guard let records = try PinnedMap.open(pins.records) else {
      RecordsIterator.forgetAll()
      throw SockaffError.notAttached
    }
    self.records = records
    pool = try Self.openCheckedPool(records: records.descriptor, pins: pins)
    counts = try? PinnedMap.open(pins.counts)
    possibleCPUs = max(Int(libbpf_num_possible_cpus()), 1)
    clock = try PinnedMap.open(pins.clock).flatMap { try? ClockReference.load(clockMapFD: $0.fd) }
    readSampling = ReadSampling.current(pins: pins) ?? 1
  }

  /// Pins made by a sockaff with another layout (an older build still
  /// attached across an upgrade) are refused, never read as this build's:
  /// the records map's type and value size, the pool's, and the ABI version
  /// the loader wrote into the clock map must all be this build's. Records
  /// with read counters, or without them (tracing without reads), are both
  /// this build's.
  static func checkLayout(of records: FileDescriptor, pins: PinLayout) throws(SockaffError) {
    _ = try openCheckedPool(records: records, pins: pins)
  }

  /// `checkLayout`, returning the pool it opened to check, for a reader.
  private static func openCheckedPool(records: FileDescriptor, pins: PinLayout) throws(SockaffError)
    -> PinnedMap
  {
    let info = try BPF.mapInfo(records)
    let sizes = recordSizes.map(UInt32.init)
    guard info.type == BPF_MAP_TYPE_SK_STORAGE.rawValue && sizes.contains(info.value_size) else {
      throw incompatible(
        pins.records,
        "map type \(info.type), \(info.value_size)-byte records; this build reads type \(BPF_MAP_TYPE_SK_STORAGE.rawValue), \(sizes.map(String.init).joined(separator: " or ")) bytes"
      )
    }
    let abi = try PinnedMap.open(pins.clock).map { (clock) throws(SockaffError) -> UInt64? in
      guard try clock.info().value_size == MemoryLayout<sockaff_clock>.size else { return nil }
      return try ClockReference.read(clockMapFD: clock.fd).abi_version
    }
    guard let abi, abi == UInt64(SOCKAFF_ABI_VERSION) else {
      throw incompatible(
        pins.clock,
        "record layout version \((abi ?? nil).map(String.init) ?? "5 or older"); this build's is \(SOCKAFF_ABI_VERSION)"
      )
    }
    guard let pool = try PinnedMap.open(pins.pool) else {
      throw incompatible(pins.pool, "no pool of per-CPU shares")
    }
    let poolInfo = try pool.info()
    guard poolInfo.type == BPF_MAP_TYPE_PERCPU_ARRAY.rawValue,
      poolInfo.value_size == MemoryLayout<sockaff_cpu_share>.size
    else { throw incompatible(pins.pool, "a pool of \(poolInfo.value_size)-byte shares") }
    return pool
  }

  private static func incompatible(_ path: String, _ what: String) -> SockaffError {
    SockaffError(
      .incompatiblePins, operation: "read \(path)",
      hint: "pinned by a sockaff with another record layout (\(what)); run 'sockaff detach', then 'sockaff trace'")
  }

  /// With read counters, and without.
  static let recordSizes = [MemoryLayout<sockaff_record>.size, Int(SOCKAFF_RECORD_SIZE_WITHOUT_READS)]

  /// The record of the socket behind `socketFD` (any fd of ours that refers
  /// to it: the kernel resolves the fd to the socket), or nil if it has none.
  func record(socketFD: Int32) throws(SockaffError) -> ReceiveRecord? {
    var key = socketFD
    // Records without read counters fill the start; the counters stay zero.
    var raw = sockaff_record()
    guard bpf_map_lookup_elem(records.fd, &key, &raw) == 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      // ENOENT: no record; EOPNOTSUPP/EBADF-like answers come from sockets
      // that cannot carry socket storage at all (not INET).
      if errno == .noSuchFileOrDirectory || errno == .notSupported { return nil }
      throw SockaffError.fromErrno(errno, operation: "look up socket record")
    }
    guard raw.owner_cpu > 0 else { return nil }
    return ReceiveRecord(raw, shares: try shares(slot: raw.pool_slot))
  }

  /// Every possible CPU's value of a pool slot (empty without a slot).
  func shares(slot: UInt32) throws(SockaffError) -> [sockaff_cpu_share] {
    guard slot != 0 && slot != SOCKAFF_POOL_NONE else { return [] }
    var key = slot - 1
    var values = [sockaff_cpu_share](repeating: sockaff_cpu_share(), count: possibleCPUs)
    guard bpf_map_lookup_elem(pool.fd, &key, &values) == 0 else {
      throw SockaffError.lastErrno(operation: "look up pool slot \(key)")
    }
    return values
  }

  /// Pinned maps without an attached program are what a killed foreground
  /// tracer leaves: no new packets will be recorded, so say so.
  func requireAttached() throws(SockaffError) {
    if try AttachedPrograms.pinnedIngressLinkIsAttached(pins: pins) { return }
    let cgroup = try Mounts.requireCgroup2Root()
    if try AttachedPrograms.query(cgroup: cgroup).isEmpty {
      throw SockaffError.notAttached
    }
  }
}
