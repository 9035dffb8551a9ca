import CLibbpf
import CSockaffABI
import FoundationEssentials
import Glibc
import SystemPackage

/// One of the BPF objects embedded in this binary (built by the
/// EmbedBPFObject plugin), opened and loaded into the kernel: the tracer
/// (bpf/sockaff.bpf.c) or the readers' iterators (bpf/sockaff_iter.bpf.c),
/// apart so that a kernel refusing a reader costs the tracer nothing. Owns
/// the libbpf `bpf_object`: programs and maps close when it is released,
/// unless they were pinned or attached through a link that outlives it.
final class LoadedBPFObject {
  /// Which embedded object.
  enum Source {
    /// The receive recorder, the pool release, the read tracer, the clock probe.
    case tracer
    /// The readers' iterators: live records, held sockets, the census's.
    case readers
  }

  static let ingressProgramName = "sockaff_ingress"
  static let probeProgramName = "sockaff_probe"
  static let consumerProgramName = "sockaff_consume"
  static let sampledConsumerProgramName = ReadSampling.sampledProgramName
  static let liveRecordsProgramName = "sockaff_live_records"
  static let heldSocketsProgramName = "sockaff_held_sockets"
  static let censusTCPProgramName = "sockaff_tcp_sockets"
  static let censusUDPProgramName = "sockaff_udp_sockets"
  static let releaseProgramName = "sockaff_release"
  static let closedProgramName = "sockaff_closed"

  /// The ELF bytes, decoded once: each object with read tracing, and
  /// without (records stop before the read counters, 120 bytes instead of
  /// 144: a smaller kmalloc class per socket).
  static let elf = decode(embeddedBPFObjectBase64)
  static let recordsOnlyELF = decode(embeddedRecordsOnlyBPFObjectBase64)
  static let readersELF = decode(embeddedReadersBPFObjectBase64)
  static let readersRecordsOnlyELF = decode(embeddedReadersRecordsOnlyBPFObjectBase64)

  private static func decode(_ base64: StaticString) -> [UInt8] {
    let text = base64.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
    guard let data = Data(base64Encoded: text) else {
      fatalError("embedded BPF object is not valid base64: the build is broken")
    }
    return [UInt8](data)
  }

  let object: OpaquePointer
  private var elfCopy: [UInt8]

  /// Opens and loads the object; `programs` names those to load (programs
  /// the kernel cannot verify, such as the consumer before 6.3, are left out).
  /// `reusing` maps map names to fds of existing (pinned) maps; when given,
  /// no other map is created but those named in `creating` (a reader's own
  /// scratch map), so the programs loaded must use only those; `mapless`
  /// creates none (the census's programs use no map).
  /// `tracingReads` false takes the object without the consumer program and
  /// with the smaller records. `poolSlots` sizes the pool of per-CPU shares
  /// (sockaff_pool and its queue of slots given back).
  init(
    _ source: Source = .tracer, programs: Set<String>, reusing: [String: Int32] = [:], creating: Set<String> = [],
    tracingReads: Bool = true, poolSlots: UInt32 = 1, mapless: Bool = false
  ) throws(SockaffError) {
    LibbpfLog.install()
    elfCopy =
      switch source {
      case .tracer: tracingReads ? Self.elf : Self.recordsOnlyELF
      case .readers: tracingReads ? Self.readersELF : Self.readersRecordsOnlyELF
      }
    var opts = bpf_object_open_opts()
    opts.sz = libbpfOptionsSize(\bpf_object_open_opts.kernel_log_level)
    let opened: OpaquePointer? = elfCopy.withUnsafeBytes { bytes in
      "sockaff".withCString { name in
        opts.object_name = name
        return bpf_object__open_mem(bytes.baseAddress, bytes.count, &opts)
      }
    }
    guard let opened else {
      throw Self.failure("open embedded BPF object", source: source)
    }
    object = opened
    var program = bpf_object__next_program(object, nil)
    while let current = program {
      let name = String(cString: bpf_program__name(current))
      bpf_program__set_autoload(current, programs.contains(name))
      program = bpf_object__next_program(object, current)
    }
    if !reusing.isEmpty || mapless {
      var map = bpf_object__next_map(object, nil)
      while let current = map {
        let name = String(cString: bpf_map__name(current))
        if let fd = reusing[name] {
          if bpf_map__reuse_fd(current, fd) != 0 { throw Self.failure("reuse pinned map fd", source: source) }
        } else if !creating.contains(name) {
          bpf_map__set_autocreate(current, false)
        }
        map = bpf_object__next_map(object, current)
      }
    }
    if source == .tracer {
      let possibleCPUs = libbpf_num_possible_cpus()
      if possibleCPUs > 0 {
        bpf_map__set_max_entries(map("sockaff_cpu_node"), UInt32(possibleCPUs))
      }
      bpf_map__set_max_entries(map("sockaff_pool"), poolSlots)
      bpf_map__set_max_entries(map("sockaff_pool_free"), poolSlots)
    }
    // No bpf_object__close on failure: every stored property is set, so
    // Swift runs deinit when this initializer throws, and deinit closes it
    // (closing here too was a double free, seen without CAP_PERFMON).
    if bpf_object__load(object) != 0 {
      throw Self.failure("load BPF object (verifier)", source: source)
    }
  }

  deinit { bpf_object__close(object) }

  func program(_ name: String) -> OpaquePointer {
    guard let program = bpf_object__find_program_by_name(object, name) else {
      fatalError("BPF program \(name) missing from the embedded object")
    }
    return program
  }

  func map(_ name: String) -> OpaquePointer {
    guard let map = bpf_object__find_map_by_name(object, name) else {
      fatalError("BPF map \(name) missing from the embedded object")
    }
    return map
  }

  /// A libbpf failure: errno as libbpf left it, libbpf's last warning (or
  /// the verifier's reason) as hint. EPERM is a missing capability only
  /// where one is missing: to a process that holds them all it is the
  /// kernel's refusal (lockdown, an LSM policy), said as such. EACCES to
  /// such a process is the verifier rejecting the program.
  static func failure(_ operation: String, source: Source = .tracer) -> SockaffError {
    let errno = Errno(rawValue: Glibc.errno)
    let warning = LibbpfLog.takeLastWarning()
    let privileged = Privileges.canLoad(source)
    if errno == .notPermitted && privileged {
      return SockaffError(
        .refused, errno: errno, operation: operation,
        hint: "refused by the kernel to a process with every capability it takes: lockdown or an LSM policy")
    }
    if !privileged && (errno == .notPermitted || errno == .permissionDenied) {
      return SockaffError(.notPermitted, errno: errno, operation: operation, hint: Privileges.needed(source))
    }
    return SockaffError(.bpf, errno: errno, operation: operation, hint: warning)
  }
}

/// Thin errno-checked wrappers over the libbpf calls sockaff makes on file
/// descriptors of pinned objects.
enum BPF {
  /// Opens a pinned object; nil if there is no such pin. Through
  /// `PinnedMap` and `PinnedLink`, which own what it returns.
  static func openPinned(_ path: String) throws(SockaffError) -> FileDescriptor? {
    let fd = bpf_obj_get(path)
    if fd >= 0 { return FileDescriptor(rawValue: fd) }
    let errno = Errno(rawValue: Glibc.errno)
    if errno == .noSuchFileOrDirectory { return nil }
    throw SockaffError.fromErrno(
      errno, operation: "open pinned \(path)",
      hint: errno == .notPermitted || errno == .permissionDenied
        ? "sockaff's pins are root's, mode 0600: run as root" : nil)
  }

  static func mapInfo(_ fd: FileDescriptor) throws(SockaffError) -> bpf_map_info {
    try info(of: fd, initial: bpf_map_info(), kind: "map")
  }

  static func programInfo(_ fd: FileDescriptor) throws(SockaffError) -> bpf_prog_info {
    try info(of: fd, initial: bpf_prog_info(), kind: "prog")
  }

  static func linkInfo(_ fd: FileDescriptor) throws(SockaffError) -> bpf_link_info {
    try info(of: fd, initial: bpf_link_info(), kind: "link")
  }

  /// A program's map ids (the maps its instructions reference): a second
  /// info call, with room for the `count` its first info gave.
  static func programMapIDs(_ program: FileDescriptor, count: UInt32) -> [UInt32] {
    guard count > 0 else { return [] }
    var ids = [UInt32](repeating: 0, count: Int(count))
    var info = bpf_prog_info()
    var length = UInt32(MemoryLayout<bpf_prog_info>.size)
    let status = ids.withUnsafeMutableBufferPointer { buffer in
      info.nr_map_ids = count
      info.map_ids = UInt64(UInt(bitPattern: buffer.baseAddress))
      return withUnsafeMutableBytes(of: &info) { bpf_obj_get_info_by_fd(program.rawValue, $0.baseAddress, &length) }
    }
    return status == 0 ? Array(ids.prefix(Int(min(info.nr_map_ids, count)))) : []
  }

  /// bpf_obj_get_info_by_fd into a zeroed info struct of the object's kind.
  private static func info<Info>(of fd: FileDescriptor, initial: Info, kind: String) throws(SockaffError) -> Info {
    var info = initial
    var length = UInt32(MemoryLayout<Info>.size)
    // The info structs are plain C structs: pass their bytes, as the kernel fills them.
    let status = withUnsafeMutableBytes(of: &info) { bpf_obj_get_info_by_fd(fd.rawValue, $0.baseAddress, &length) }
    if status != 0 {
      throw SockaffError.lastErrno(operation: "bpf_obj_get_info_by_fd(\(kind))")
    }
    return info
  }

  /// Runs a loaded program once through BPF_PROG_TEST_RUN on a dummy frame,
  /// for what it writes into its maps.
  static func testRun(programFD: Int32) throws(SockaffError) {
    // An Ethernet + IPv4 header: cgroup_skb test runs need at least ETH_HLEN.
    var frame = [UInt8](repeating: 0, count: 64)
    frame[12] = 0x08
    frame[14] = 0x45
    var opts = bpf_test_run_opts()
    opts.sz = libbpfOptionsSize(\bpf_test_run_opts.batch_size)
    let status = frame.withUnsafeMutableBytes { bytes -> Int32 in
      opts.data_in = UnsafeRawPointer(bytes.baseAddress)
      opts.data_size_in = UInt32(bytes.count)
      return bpf_prog_test_run_opts(programFD, &opts)
    }
    if status != 0 {
      throw SockaffError.lastErrno(operation: "BPF_PROG_TEST_RUN")
    }
  }
}

/// The `sz` of a libbpf options struct: up to the end of its last field
/// (libbpf's `<type>__last_field`), not the stride. libbpf refuses options
/// whose bytes past the fields it knows are not zero, and the stride's tail
/// is padding that Swift does not promise to zero.
func libbpfOptionsSize<Options, Field>(_ lastField: KeyPath<Options, Field>) -> Int {
  MemoryLayout<Options>.offset(of: lastField)! + MemoryLayout<Field>.size
}
