import CSockaffABI
import Glibc
import Synchronization
import SystemPackage

/// Every traced socket that a process holds open, with its holder (pid, fd)
/// and its record, from one run of the sockaff_held_sockets iterator over
/// every process's open files (kernel >= 5.11: bpf_sock_from_file). A host
/// with 100k traced sockets is read in one pass in the kernel, where a walk
/// of /proc/P/fd opens every socket from userspace (about ten syscalls each).
public enum HeldSockets {
  public struct Entry: Sendable {
    public let pid: Int32
    public let fd: Int32
    /// What the kernel says the socket is (socket(2)'s three arguments).
    public let family: Int32
    public let type: Int32
    public let proto: Int32
    /// The record as the map holds it (read counters zero in a map without them).
    public let record: sockaff_record
  }

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
      // program's read of a record to the map's value size.
      let object = try LoadedBPFObject(
        programs: [LoadedBPFObject.heldSocketsProgramName], reusing: ["sockaff_records": records.rawValue],
        tracingReads: valueSize == MemoryLayout<sockaff_record>.size)
      cached = (info.id, object)
      return object
    }
    let bytes = try BPFIterator.output(
      of: object.program(LoadedBPFObject.heldSocketsProgramName), name: "iterator over held sockets")
    let header = MemoryLayout<sockaff_held_socket>.size
    let stride = header + valueSize
    var entries: [Entry] = []
    entries.reserveCapacity(bytes.count / stride)
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset + stride <= raw.count {
        let held = raw.loadUnaligned(fromByteOffset: offset, as: sockaff_held_socket.self)
        var record = sockaff_record()
        withUnsafeMutableBytes(of: &record) { target in
          target.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset + header..<offset + stride]))
        }
        entries.append(
          Entry(
            pid: Int32(bitPattern: held.tgid), fd: Int32(bitPattern: held.fd), family: Int32(held.family),
            type: Int32(held.type), proto: Int32(held.protocol), record: record))
        offset += stride
      }
    }
    return entries
  }
}
