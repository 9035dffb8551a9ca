import CLibbpf
import Glibc
import Synchronization
import SystemPackage

/// The records that exist right now in the pinned sockaff_records map: one
/// per socket that received a traced packet and is still open. Socket
/// storage has no entry count in its map info, so a BPF iterator over the
/// map (kernel >= 5.9) reports each record's cookie.
enum LiveRecords {
  /// The iterator program, loaded once per process and records map: a
  /// metrics server reads the count on every scrape, and the verifier need
  /// not run each time. A new map (detach, then trace) loads it anew.
  private static let loaded = Mutex<(mapID: UInt32, object: LoadedBPFObject)?>(nil)

  /// Drops the cached program, and with it its reference to a records map
  /// that may be detached by now (a map is freed with its last reference).
  static func forget() { loaded.withLock { $0 = nil } }

  static func cookies(records: FileDescriptor) throws(SockaffError) -> [UInt64] {
    let mapID = try BPF.mapInfo(records).id
    let object = try loaded.withLock { (cached) throws(SockaffError) -> LoadedBPFObject in
      if let cached, cached.mapID == mapID { return cached.object }
      let object = try LoadedBPFObject(
        programs: [LoadedBPFObject.liveRecordsProgramName], reusing: ["sockaff_records": records.rawValue])
      cached = (mapID, object)
      return object
    }
    var linkInfo = bpf_iter_link_info()
    linkInfo.map.map_fd = UInt32(bitPattern: records.rawValue)
    var options = bpf_iter_attach_opts()
    options.sz = libbpfOptionsSize(\bpf_iter_attach_opts.link_info_len)
    options.link_info_len = UInt32(MemoryLayout<bpf_iter_link_info>.size)
    let program = object.program(LoadedBPFObject.liveRecordsProgramName)
    let link = try withUnsafeMutablePointer(to: &linkInfo) { (info) throws(SockaffError) -> BPFLink in
      options.link_info = info
      return try BPFLink("iterator over sockaff_records") { bpf_program__attach_iter(program, &options) }
    }
    defer { link.close() }
    let iterator = bpf_iter_create(link.fd)
    guard iterator >= 0 else { throw SockaffError.lastErrno(operation: "bpf_iter_create") }
    defer { close(iterator) }

    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = read(iterator, &chunk, chunk.count)
      if count == 0 { break }
      if count < 0 {
        if Glibc.errno == EINTR { continue }
        throw SockaffError.lastErrno(operation: "read sockaff_records iterator")
      }
      bytes += chunk[..<count]
    }
    return stride(from: 0, to: bytes.count - 7, by: 8).map { offset in
      bytes[offset..<offset + 8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }
  }
}
