import CLibbpf
import CSockaffABI
import Glibc
import SystemPackage

/// The tracer's pinned maps, opened once for any number of lookups (a `list`
/// of 100k sockets opens them once, not per socket).
final class PinnedMaps {
  let records: FileDescriptor
  /// The read tracer's counters (sockaff_reads); nil if not pinned.
  let reads: FileDescriptor?
  let clock: ClockReference?
  let pins: PinLayout

  /// Throws notAttached when there are no pins, incompatiblePins when they
  /// were made by a sockaff with another record layout.
  init(pins: PinLayout) throws(SockaffError) {
    self.pins = pins
    guard Mounts.isBPFFSMounted(in: try Mounts.current()),
      let records = try BPF.openPinned(pins.records)
    else {
      throw SockaffError.notAttached
    }
    let info: bpf_map_info
    do {
      info = try BPF.mapInfo(records)
    } catch {
      records.closeQuietly()
      throw error
    }
    guard info.value_size == MemoryLayout<sockaff_record>.size else {
      records.closeQuietly()
      throw SockaffError(
        .incompatiblePins, operation: "read \(pins.records)",
        hint:
          "pinned by a sockaff with another record layout (\(info.value_size) bytes, this one reads \(MemoryLayout<sockaff_record>.size)); run 'sockaff detach' and 'sockaff trace'"
      )
    }
    self.records = records
    reads = try? BPF.openPinned(pins.reads)
    clock = try BPF.openPinned(pins.clock).flatMap { fd in
      defer { fd.closeQuietly() }
      return try? ClockReference.load(clockMapFD: fd.rawValue)
    }
  }

  deinit {
    records.closeQuietly()
    reads?.closeQuietly()
  }

  /// The record of the socket behind `socketFD` (any fd of ours that refers
  /// to it: the kernel resolves the fd to the socket), or nil if it has none.
  func record(socketFD: Int32) throws(SockaffError) -> ReceiveRecord? {
    var key = socketFD
    var raw = sockaff_record()
    guard bpf_map_lookup_elem(records.rawValue, &key, &raw) == 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      // ENOENT: no record; EOPNOTSUPP/EBADF-like answers come from sockets
      // that cannot carry socket storage at all (not INET).
      if errno == .noSuchFileOrDirectory || errno == .notSupported { return nil }
      throw SockaffError.fromErrno(errno, operation: "look up socket record")
    }
    guard raw.packets > 0 else { return nil }
    var consumer = sockaff_reads()
    let hasReads = reads.map { bpf_map_lookup_elem($0.rawValue, &key, &consumer) == 0 } ?? false
    return ReceiveRecord(raw, reads: hasReads ? consumer : nil)
  }

  /// Pinned maps without an attached program are what a killed foreground
  /// tracer leaves: no new packets will be recorded, so say so.
  func requireAttached() throws(SockaffError) {
    let cgroup = try Mounts.requireCgroup2Root()
    if try AttachedPrograms.query(cgroup: cgroup).isEmpty {
      throw SockaffError.notAttached
    }
  }
}
