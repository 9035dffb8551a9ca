import CSockaffABI
import Glibc
import Synchronization
import SystemPackage

/// Every traced socket that a process holds open, with its holder (pid, fd)
/// and the fields of its record that a scrape sums, from one run of the
/// sockaff_held_sockets iterator over every process's open files (kernel
/// >= 5.11: bpf_sock_from_file). A host
/// with 100k traced sockets is read in one pass in the kernel, where a walk
/// of /proc/P/fd opens every socket from userspace (about ten syscalls each).
public enum HeldSockets {
  /// One holder (process, fd) of one traced socket: `struct
  /// sockaff_held_socket`, the record's summed fields with what the socket is.
  public typealias Entry = sockaff_held_socket

  /// The program, loaded once per process and records map, like LiveRecords'.
  private static let loaded = Mutex<(mapID: UInt32, object: LoadedBPFObject)?>(nil)

  static func read(records: FileDescriptor) throws(SockaffError) -> [Entry] {
    let info = try BPF.mapInfo(records)
    let valueSize = Int(info.value_size)
    guard PinnedMaps.recordSizes.contains(valueSize) else {
      throw SockaffError(.incompatiblePins, operation: "read held sockets", hint: "\(valueSize)-byte records")
    }
    let object = try loaded.withLock { (cached) throws(SockaffError) -> LoadedBPFObject in
      if let cached, cached.mapID == info.id { return cached.object }
      // The object whose records are this map's size: the verifier holds the
      // program's reads of a record to the map's value size.
      let object = try LoadedBPFObject(
        programs: [LoadedBPFObject.heldSocketsProgramName], reusing: ["sockaff_records": records.rawValue],
        tracingReads: valueSize == MemoryLayout<sockaff_record>.size)
      cached = (info.id, object)
      return object
    }
    let bytes = try BPFIterator.output(
      of: object.program(LoadedBPFObject.heldSocketsProgramName), name: "iterator over held sockets")
    let size = MemoryLayout<Entry>.size
    return bytes.withUnsafeBytes { raw in
      (0..<raw.count / size).map { raw.loadUnaligned(fromByteOffset: $0 * size, as: Entry.self) }
    }
  }
}
