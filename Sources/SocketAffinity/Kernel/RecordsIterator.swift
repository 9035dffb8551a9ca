import CLibbpf
import CSockaffABI
import Glibc
import Synchronization
import SystemPackage

/// One of the readers' iterator programs (bpf/sockaff_iter.bpf.c, never
/// attached to traffic) over the pinned records map: each a capability of
/// its own (`KernelFeatures`: a kernel may refuse one and run the other),
/// loaded once per process and records map, so a
/// metrics server runs the verifier once, not once per scrape, from the
/// object whose records are that map's size (the verifier holds a program's
/// reads of a record to the map's value size). `forgetAll()` drops them with
/// their reference to a records map that may be detached by now.
final class RecordsIterator: Sendable {
  /// `LiveRecords`: over the records map itself (`iter/bpf_sk_storage_map`).
  static let liveRecords = RecordsIterator(
    program: LoadedBPFObject.liveRecordsProgramName, feature: KernelFeatures.liveRecordsIterator,
    overRecordsMap: true, creating: ["sockaff_live_count"])
  /// `HeldSockets`: over every process's open files (`iter/task_file`).
  static let heldSockets = RecordsIterator(
    program: LoadedBPFObject.heldSocketsProgramName, feature: KernelFeatures.heldSocketsIterator,
    overRecordsMap: false, creating: [])

  static func forgetAll() {
    liveRecords.forget()
    heldSockets.forget()
  }

  private let program: String
  /// Its name among the kernel features.
  let feature: String
  private let overRecordsMap: Bool
  /// The program's own scratch maps, made with it.
  private let creating: Set<String>
  private let loaded = Mutex<(mapID: UInt32, object: LoadedBPFObject)?>(nil)

  private init(program: String, feature: String, overRecordsMap: Bool, creating: Set<String>) {
    self.program = program
    self.feature = feature
    self.overRecordsMap = overRecordsMap
    self.creating = creating
  }

  func forget() { loaded.withLock { $0 = nil } }

  /// Runs the program once and passes everything it wrote to `body`, in a
  /// buffer that is kept for the next run (and valid only during `body`).
  /// Throws the feature's own failure (refused, missing) where the kernel
  /// cannot run the program, without trying it again.
  /// Kept because a scrape's output is megabytes (80 bytes a socket): fresh
  /// memory each time cost a page fault and a page zeroed by the kernel for
  /// every 4 KiB, about a tenth of a scrape with 100k sockets.
  func withOutput<T: Sendable>(
    records: FileDescriptor, _ body: (UnsafeRawBufferPointer) throws(SockaffError) -> T
  ) throws(SockaffError) -> T {
    try KernelFeatures.require(feature)
    let info = try BPF.mapInfo(records)
    let valueSize = Int(info.value_size)
    guard PinnedMaps.recordSizes.contains(valueSize) else {
      throw SockaffError(.incompatiblePins, operation: "run \(program)", hint: "\(valueSize)-byte records")
    }
    let object = try loaded.withLock { (cached) throws(SockaffError) -> LoadedBPFObject in
      if let cached, cached.mapID == info.id { return cached.object }
      let object = try LoadedBPFObject(
        .readers, programs: [program], reusing: ["sockaff_records": records.rawValue], creating: creating,
        tracingReads: valueSize == MemoryLayout<sockaff_record>.size)
      cached = (info.id, object)
      return object
    }
    return try output.withLock { (buffer) throws(SockaffError) -> T in
      let count = try Self.run(
        object.program(program), name: program, mapFD: overRecordsMap ? records.rawValue : nil, into: buffer)
      return try body(UnsafeRawBufferPointer(start: buffer.bytes, count: count))
    }
  }

  private let output = Mutex(IteratorOutput())

  /// Attach (an iterator link; over one map when `mapFD` is given), create
  /// the iterator, read it to the end into `buffer`, then close both.
  /// Returns the bytes read.
  private static func run(_ program: OpaquePointer, name: String, mapFD: Int32?, into buffer: IteratorOutput)
    throws(SockaffError) -> Int
  {
    var linkInfo = bpf_iter_link_info()
    var options = bpf_iter_attach_opts()
    options.sz = libbpfOptionsSize(\bpf_iter_attach_opts.link_info_len)
    let link = try withUnsafeMutablePointer(to: &linkInfo) { (info) throws(SockaffError) -> BPFLink in
      if let mapFD {
        info.pointee.map.map_fd = UInt32(bitPattern: mapFD)
        options.link_info = info
        options.link_info_len = UInt32(MemoryLayout<bpf_iter_link_info>.size)
      }
      return try BPFLink(name) { bpf_program__attach_iter(program, &options) }
    }
    defer { link.close() }
    let iterator = bpf_iter_create(link.fd)
    guard iterator >= 0 else { throw SockaffError.lastErrno(operation: "bpf_iter_create (\(name))") }
    defer { close(iterator) }

    return try buffer.read(iterator, name: name)
  }
}
