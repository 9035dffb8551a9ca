import CLibbpf
import Glibc
import SystemPackage

/// What the kernel lets userspace see of SO_REUSEPORT steering programs.
///
/// A program attached to a group (SO_ATTACH_REUSEPORT_EBPF or _CBPF) hangs
/// off the group itself, where no socket option, sock_diag attribute or
/// bpf_prog_query reaches it. Two things are visible instead:
/// - the maps such a program selects from (bpf_sk_select_reuseport takes a
///   REUSEPORT_SOCKARRAY, and from 5.8 a SOCKMAP or SOCKHASH): a lookup
///   from userspace returns each held socket's cookie, so a member found in
///   one is known to be steered through it;
/// - the loaded programs of type sk_reuseport, host-wide, without the group
///   each serves. A classic BPF program (_CBPF) has no id at all.
public enum ReuseportSteeringObjects {
  /// A map slot holding a socket.
  public struct MapSlot: Sendable, Equatable, JSONFields {
    public let mapID: UInt32
    public let mapName: String
    /// "reuseport_sockarray", "sockmap" or "sockhash".
    public let mapType: String
    /// The slot's key: an index for an array, the key's first 8 bytes
    /// (little-endian) for a hash.
    public let key: UInt64

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("map_id", mapID)
      try visitor.field("map_name", mapName)
      try visitor.field("map_type", mapType)
      try visitor.field("key", key)
    }
  }

  /// A loaded sk_reuseport program, and the maps it uses (the kernel's
  /// own list: those its instructions reference).
  public struct Program: Sendable, Equatable, JSONFields {
    public let id: UInt32
    public let name: String
    public let mapIDs: [UInt32]

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("id", id)
      try visitor.field("name", name)
      try visitor.field("map_ids", mapIDs.map(Int.init))
    }
  }

  /// What was found, and what could not be read.
  public struct Found: Sendable {
    /// Every socket held in a map a reuseport program can select from, by cookie.
    public var slotsByCookie: [UInt64: [MapSlot]] = [:]
    public var programs: [Program] = []
    /// Why some of it could not be read (nil: all of it was).
    public var limits: String?
  }

  /// Slots read per map at most: a service mesh's SOCKHASH can hold every
  /// connection of the host, and a listing must not take minutes on it.
  static let maxSlotsPerMap = 65536

  // Map and program types (<linux/bpf.h>), by number: the enum cases are
  // newer than some distributions' headers.
  static let sockmapType: UInt32 = 15  // BPF_MAP_TYPE_SOCKMAP
  static let sockhashType: UInt32 = 18  // BPF_MAP_TYPE_SOCKHASH
  static let reuseportSockarrayType: UInt32 = 20  // BPF_MAP_TYPE_REUSEPORT_SOCKARRAY
  static let skReuseportProgramType: UInt32 = 21  // BPF_PROG_TYPE_SK_REUSEPORT

  /// Walks every map and program id once.
  public static func read() -> Found {
    var found = Found()
    var refused: [String] = []
    var id: UInt32 = 0
    while bpf_map_get_next_id(id, &id) == 0 {
      let fd = bpf_map_get_fd_by_id(id)
      guard fd >= 0 else {
        if Glibc.errno != ENOENT { refused.append("map \(id): \(Errno(rawValue: Glibc.errno))") }
        continue
      }
      let map = FileDescriptor(rawValue: fd)
      defer { map.closeQuietly() }
      guard let info = try? BPF.mapInfo(map),
        [sockmapType, sockhashType, reuseportSockarrayType].contains(info.type), info.value_size == 8
      else { continue }
      let name = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
      let type =
        switch info.type {
        case reuseportSockarrayType: "reuseport_sockarray"
        case sockmapType: "sockmap"
        default: "sockhash"
        }
      let truncated = slots(of: map, info: info) { key, cookie in
        found.slotsByCookie[cookie, default: []].append(
          MapSlot(mapID: id, mapName: name, mapType: type, key: key))
      }
      if truncated { refused.append("map \(id) (\(type)) read up to its first \(maxSlotsPerMap) slots") }
    }
    if Glibc.errno == EPERM { refused.append("the map ids: \(Errno(rawValue: EPERM))") }
    id = 0
    while bpf_prog_get_next_id(id, &id) == 0 {
      let fd = bpf_prog_get_fd_by_id(id)
      guard fd >= 0 else { continue }
      let program = FileDescriptor(rawValue: fd)
      defer { program.closeQuietly() }
      guard let info = try? BPF.programInfo(program), info.type == skReuseportProgramType else { continue }
      let name = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
      found.programs.append(Program(id: id, name: name, mapIDs: BPF.programMapIDs(program, count: info.nr_map_ids)))
    }
    if !refused.isEmpty { found.limits = "not read: " + refused.joined(separator: "; ") }
    return found
  }

  /// Calls `body(key, cookie)` for each slot that holds a socket; true when
  /// the map had more than `maxSlotsPerMap` keys.
  private static func slots(of map: FileDescriptor, info: bpf_map_info, _ body: (UInt64, UInt64) -> Void) -> Bool {
    var cookie: UInt64 = 0
    if info.type != sockhashType {
      // Arrays: keys 0..<max_entries (a u32 index); an empty slot is ENOENT.
      for index in 0..<min(info.max_entries, UInt32(maxSlotsPerMap)) {
        var key = index
        if bpf_map_lookup_elem(map.rawValue, &key, &cookie) == 0 { body(UInt64(index), cookie) }
      }
      return info.max_entries > UInt32(maxSlotsPerMap)
    }
    let size = Int(info.key_size)
    var key = [UInt8](repeating: 0, count: size)
    var next = [UInt8](repeating: 0, count: size)
    var first = true
    var count = 0
    while count < maxSlotsPerMap {
      let status = next.withUnsafeMutableBytes { nextBytes in
        key.withUnsafeBytes { keyBytes in
          bpf_map_get_next_key(map.rawValue, first ? nil : keyBytes.baseAddress, nextBytes.baseAddress)
        }
      }
      guard status == 0 else { return false }
      first = false
      key = next
      count += 1
      if bpf_map_lookup_elem(map.rawValue, key, &cookie) == 0 {
        let prefix = key.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
        body(prefix, cookie)
      }
    }
    return true
  }
}
