import CLibbpf
import Glibc
import SystemPackage

/// The XDP programs on an interface. Each runs on every received frame
/// before the stack, so before sockaff's cgroup program sees it. It may
/// drop a frame, or redirect it: to another interface, to an AF_XDP socket
/// (an xskmap), or to a cpumap. A cpumap moves the rest of the frame's
/// receive path (skb, GRO, the stack, the socket) to the kthread of the
/// CPU the program picks per frame, so RSS's queue and IRQ no longer decide
/// where the socket's packets are processed.
///
/// Read with bpf_xdp_query (rtnetlink, in sockaff's own network namespace),
/// each program's maps with bpf_obj_get_info_by_fd, and a cpumap's CPUs
/// (the entries that have a kthread) with a lookup per CPU.
public struct InterfaceXDP: Sendable, Equatable, Codable, JSONFields {
  public struct CPUMap: Sendable, Equatable, Codable, JSONFields {
    public let id: UInt32
    /// The CPUs with an entry: where the program can send a frame.
    public let cpus: [Int]

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("id", id)
      try visitor.field("cpus", cpus)
    }
  }

  public struct Program: Sendable, Equatable, Codable, JSONFields {
    public let id: UInt32
    public let name: String
    /// "driver", "generic" (skb mode) or "offload" (on the NIC).
    public let mode: String
    public let cpumaps: [CPUMap]
    /// xskmaps: AF_XDP sockets the program can hand frames to, out of the stack.
    public let xskmapIDs: [UInt32]

    enum CodingKeys: String, CodingKey {
      case id, name, mode, cpumaps
      case xskmapIDs = "xskmap_ids"
    }

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("id", id)
      try visitor.field("name", name)
      try visitor.field("mode", mode)
      try visitor.field("cpumaps", cpumaps)
      try visitor.field("xskmap_ids", xskmapIDs.map(Int.init))
    }
  }

  public let programs: [Program]
  /// What could not be read of them (nil: all of it).
  public let limits: String?

  public init(programs: [Program], limits: String? = nil) {
    self.programs = programs
    self.limits = limits
  }

  /// Every CPU a cpumap of the interface's programs can send frames to.
  public var cpumapCPUs: [Int] {
    Array(Set(programs.flatMap { $0.cpumaps.flatMap(\.cpus) })).sorted()
  }

  public var hasCPUMap: Bool { programs.contains { !$0.cpumaps.isEmpty } }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("programs", programs)
    try visitor.field("limits", limits)
  }

  // Map types (<linux/bpf.h>) by number, as ReuseportSteeringObjects does.
  static let cpumapType: UInt32 = 16  // BPF_MAP_TYPE_CPUMAP
  static let xskmapType: UInt32 = 17  // BPF_MAP_TYPE_XSKMAP

  /// `interface`'s XDP programs in sockaff's own network namespace; nil
  /// when it has none (or no such interface, or no answer: XDP cannot be
  /// seen then, and nothing is claimed).
  public static func read(interface: String) -> InterfaceXDP? {
    let index = if_nametoindex(interface)
    guard index > 0 else { return nil }
    var opts = bpf_xdp_query_opts()
    opts.sz = libbpfOptionsSize(\bpf_xdp_query_opts.attach_mode)
    guard bpf_xdp_query(Int32(index), 0, &opts) == 0 else { return nil }
    // One program per mode; several modes at once are XDP_ATTACHED_MULTI.
    let attached = [("driver", opts.drv_prog_id), ("generic", opts.skb_prog_id), ("offload", opts.hw_prog_id)]
      .filter { $0.1 != 0 }
    guard !attached.isEmpty else { return nil }
    var refused: [String] = []
    let programs = attached.map { mode, id in
      program(id: id, mode: mode, refused: &refused)
    }
    return InterfaceXDP(
      programs: programs, limits: refused.isEmpty ? nil : "not read: " + refused.joined(separator: "; "))
  }

  private static func program(id: UInt32, mode: String, refused: inout [String]) -> Program {
    let fd = bpf_prog_get_fd_by_id(id)
    guard fd >= 0 else {
      refused.append("program \(id): \(Errno(rawValue: Glibc.errno))")
      return Program(id: id, name: "", mode: mode, cpumaps: [], xskmapIDs: [])
    }
    let descriptor = FileDescriptor(rawValue: fd)
    defer { descriptor.closeQuietly() }
    guard let info = try? BPF.programInfo(descriptor) else {
      refused.append("program \(id): \(Errno(rawValue: Glibc.errno))")
      return Program(id: id, name: "", mode: mode, cpumaps: [], xskmapIDs: [])
    }
    let name = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    var cpumaps: [CPUMap] = []
    var xskmaps: [UInt32] = []
    for mapID in BPF.programMapIDs(descriptor, count: info.nr_map_ids) {
      let mapFD = bpf_map_get_fd_by_id(mapID)
      guard mapFD >= 0 else {
        refused.append("map \(mapID): \(Errno(rawValue: Glibc.errno))")
        continue
      }
      let map = FileDescriptor(rawValue: mapFD)
      defer { map.closeQuietly() }
      guard let mapInfo = try? BPF.mapInfo(map) else { continue }
      switch mapInfo.type {
      case cpumapType: cpumaps.append(CPUMap(id: mapID, cpus: cpus(of: map, info: mapInfo)))
      case xskmapType: xskmaps.append(mapID)
      default: break
      }
    }
    return Program(id: id, name: name, mode: mode, cpumaps: cpumaps, xskmapIDs: xskmaps)
  }

  /// A cpumap's keys are CPU numbers; an entry without a kthread is ENOENT.
  private static func cpus(of map: FileDescriptor, info: bpf_map_info) -> [Int] {
    var value = [UInt8](repeating: 0, count: Int(max(info.value_size, 8)))
    return (0..<info.max_entries).compactMap { cpu in
      var key = cpu
      return bpf_map_lookup_elem(map.rawValue, &key, &value) == 0 ? Int(cpu) : nil
    }
  }
}
