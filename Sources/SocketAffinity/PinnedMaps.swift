import CLibbpf
import CSockaffABI
import Glibc
import SystemPackage

/// The tracer's pinned maps, opened once for any number of lookups (a `list`
/// of 100k sockets opens them once, not per socket).
final class PinnedMaps {
  let records: FileDescriptor
  let clock: ClockReference?
  let pins: PinLayout

  /// Throws notAttached when there are no pins, incompatiblePins when they
  /// were made by a sockaff with another record layout.
  init(pins: PinLayout) throws(SockaffError) {
    self.pins = pins
    guard Mounts.isBPFFSMounted(in: try Mounts.current()) else {
      throw SockaffError(
        .notAttached, operation: "query",
        hint:
          "bpffs is not mounted at \(Mounts.bpffsMountPoint), so no tracer pins can be read; 'sockaff trace' mounts it"
      )
    }
    guard let records = try BPF.openPinned(pins.records) else {
      throw SockaffError.notAttached
    }
    do {
      try Self.checkLayout(of: records, at: pins.records)
    } catch {
      records.closeQuietly()
      throw error
    }
    self.records = records
    clock = try BPF.openPinned(pins.clock).flatMap { fd in
      defer { fd.closeQuietly() }
      return try? ClockReference.load(clockMapFD: fd.rawValue)
    }
  }

  /// Pins made by a sockaff with another record layout (an older build still
  /// attached across an upgrade) are refused by the map's own info, never
  /// read as this build's layout. Records with read counters, or without
  /// them (tracing without reads), are both this build's.
  static func checkLayout(of records: FileDescriptor, at path: String) throws(SockaffError) {
    let info = try BPF.mapInfo(records)
    let sizes = recordSizes.map(UInt32.init)
    if info.type == BPF_MAP_TYPE_SK_STORAGE.rawValue && sizes.contains(info.value_size) { return }
    throw SockaffError(
      .incompatiblePins, operation: "read \(path)",
      hint:
        "pinned by a sockaff with another record layout (map type \(info.type), \(info.value_size)-byte records; this build reads type \(BPF_MAP_TYPE_SK_STORAGE.rawValue), \(sizes.map(String.init).joined(separator: " or ")) bytes); run 'sockaff detach', then 'sockaff trace'"
    )
  }

  /// With read counters, and without.
  static let recordSizes = [MemoryLayout<sockaff_record>.size, Int(SOCKAFF_RECORD_SIZE_WITHOUT_READS)]

  deinit {
    records.closeQuietly()
  }

  /// The record of the socket behind `socketFD` (any fd of ours that refers
  /// to it: the kernel resolves the fd to the socket), or nil if it has none.
  func record(socketFD: Int32) throws(SockaffError) -> ReceiveRecord? {
    var key = socketFD
    // Records without read counters fill the start; the counters stay zero.
    var raw = sockaff_record()
    guard bpf_map_lookup_elem(records.rawValue, &key, &raw) == 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      // ENOENT: no record; EOPNOTSUPP/EBADF-like answers come from sockets
      // that cannot carry socket storage at all (not INET).
      if errno == .noSuchFileOrDirectory || errno == .notSupported { return nil }
      throw SockaffError.fromErrno(errno, operation: "look up socket record")
    }
    guard raw.packets > 0 else { return nil }
    return ReceiveRecord(raw)
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
