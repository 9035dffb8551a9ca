import CLibbpf
import Glibc
import Synchronization
import SystemPackage

/// The records that exist right now in the pinned sockaff_records map: one
/// per socket that received a traced packet and is still open. Socket
/// storage has no entry count in its map info, so a BPF iterator over the
/// map (kernel >= 5.9) counts them in the kernel and writes the count.
enum LiveRecords {
  /// The iterator program, loaded once per process and records map: a
  /// metrics server reads the count on every scrape, and the verifier need
  /// not run each time. A new map (detach, then trace) loads it anew.
  private static let loaded = Mutex<(mapID: UInt32, object: LoadedBPFObject)?>(nil)

  /// Drops the cached program, and with it its reference to a records map
  /// that may be detached by now (a map is freed with its last reference).
  static func forget() { loaded.withLock { $0 = nil } }

  static func count(records: FileDescriptor) throws(SockaffError) -> Int {
    let mapID = try BPF.mapInfo(records).id
    let object = try loaded.withLock { (cached) throws(SockaffError) -> LoadedBPFObject in
      if let cached, cached.mapID == mapID { return cached.object }
      let object = try LoadedBPFObject(
        programs: [LoadedBPFObject.liveRecordsProgramName], reusing: ["sockaff_records": records.rawValue],
        creating: ["sockaff_live_count"])
      cached = (mapID, object)
      return object
    }
    let bytes = try BPFIterator.output(
      of: object.program(LoadedBPFObject.liveRecordsProgramName), name: "iterator over sockaff_records",
      mapFD: records.rawValue)
    guard bytes.count == 8 else {
      throw SockaffError(.bpf, operation: "count live records", hint: "the iterator wrote \(bytes.count) bytes, not 8")
    }
    return Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
  }
}
