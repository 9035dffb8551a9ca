import CLibbpf
import CSockaffShims
import Glibc

/// Kernel features sockaff relies on, probed (as `bpftool feature probe`
/// does), never assumed from the version number.
public struct KernelFeature: Sendable, Equatable, Codable {
  /// A probe's answer: "not permitted" (this process may not probe, as
  /// without CAP_BPF) is not "not available", and neither is "refused" (the
  /// kernel refused it to a process with every capability it takes:
  /// lockdown, an LSM policy, or the `SOCKAFF_REFUSE` test switch).
  public enum State: String, Sendable, Codable {
    case yes
    case no
    case notPermitted = "not_permitted"
    case refused
  }

  public let name: String
  public let state: State
  /// What sockaff loses without it.
  public let neededFor: String
  /// `trace` cannot attach without it (exit 12).
  public let required: Bool
  /// Why it is not available, where the kernel said (the verifier's reason,
  /// the errno of a refusal).
  public let detail: String?

  /// `state == .yes`, kept as a field of its own for JSON readers.
  public let available: Bool

  enum CodingKeys: String, CodingKey {
    case name, available, state, required, detail
    case neededFor = "needed_for"
  }

  public init(name: String, state: State, neededFor: String, required: Bool = false, detail: String? = nil) {
    (self.name, self.state, self.neededFor, self.required, self.detail) = (name, state, neededFor, required, detail)
    available = state == .yes
  }

  /// Why it cannot be used, in one phrase: "the kernel refused
  /// iter/bpf_sk_storage_map (EPERM as root)".
  public var reason: String {
    let why =
      switch state {
      case .yes: "\(name) is available"
      case .no: detail == nil ? "the kernel lacks \(name)" : "the kernel cannot run \(name)"
      case .notPermitted: "not permitted to use \(name) (run as root)"
      case .refused: "the kernel refused \(name)"
      }
    return why + (detail.map { " (\($0))" } ?? "")
  }

  /// One line: why it cannot be used, and what sockaff does without it.
  public var lossDescription: String { "\(reason); without it: no \(neededFor)" }

  /// The failure of a command that needs this feature and cannot have it.
  public var unavailableError: SockaffError {
    let kind: SockaffError.Kind =
      switch state {
      case .yes, .no: .kernelUnsupported
      case .notPermitted: .notPermitted
      case .refused: .refused
      }
    return SockaffError(kind, operation: "use \(name)", hint: lossDescription)
  }
}

public enum KernelFeatures {
  public static func release() -> String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: name.release) {
      String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
  }

  /// Every feature, probed once per process (a metrics server asks on every
  /// scrape; the kernel does not change under it).
  public static func probe() -> [KernelFeature] { required + optional }

  /// What `trace` cannot attach without; probed before it loads anything.
  private static let required: [KernelFeature] = {
    LibbpfLog.install()
    defer { _ = LibbpfLog.takeLastWarning() }
    // libbpf's probes load a program or create a map and answer 0 for any
    // refusal, "not permitted" included: without CAP_BPF (or CAP_SYS_ADMIN)
    // they cannot tell, so they are not asked.
    let permitted =
      sockaff_has_effective_capability(Int32(CAP_BPF)) == 1
      || sockaff_has_effective_capability(Int32(CAP_SYS_ADMIN)) == 1
    /// libbpf's probes answer 1 (yes), 0 (no) or a negative errno.
    func state(_ answer: @autoclosure () -> Int32) -> KernelFeature.State {
      guard permitted else { return .notPermitted }
      switch answer() {
      case 1: return .yes
      case -EPERM, -EACCES: return .notPermitted
      default: return .no
      }
    }
    func helper(_ program: bpf_prog_type, _ id: bpf_func_id) -> KernelFeature.State {
      state(libbpf_probe_bpf_helper(program, id, nil))
    }
    return [
      KernelFeature(
        name: "cgroup_skb", state: state(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nil)),
        neededFor: "tracing at all", required: true),
      KernelFeature(
        name: "sk_storage", state: state(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nil)),
        neededFor: "per-socket records", required: true),
      KernelFeature(
        name: "sk_storage_get_in_cgroup_skb", state: helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_sk_storage_get),
        neededFor: "per-socket records", required: true),
      KernelFeature(
        name: "jiffies64", state: helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_jiffies64), neededFor: "timestamps",
        required: true),
      KernelFeature(
        name: "queue_map", state: state(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_QUEUE, nil)),
        neededFor: "the per-CPU pool: sockets received on several CPUs", required: true),
      KernelFeature(
        name: "sk_storage_get_in_sock_release",
        state: helper(BPF_PROG_TYPE_CGROUP_SOCK, BPF_FUNC_sk_storage_get),
        neededFor: "giving pool slots back when sockets close", required: true),
      KernelFeature(
        name: "atomics_with_fetch", state: state(probeAtomicsWithFetch()),
        neededFor: "the owner CPU's claim and the pool slots (compare-and-swap, exchange)", required: true),
    ]
  }()

  /// BPF atomics that return the old value (BPF_FETCH: compare-and-swap,
  /// exchange, fetch-add; 5.12): a four-instruction program that does a
  /// fetching add on its stack, loaded (1) or refused (0) by the verifier.
  static func probeAtomicsWithFetch() -> Int32 {
    func instruction(_ code: UInt8, dst: UInt8 = 0, src: UInt8 = 0, offset: Int16 = 0, imm: Int32 = 0) -> bpf_insn {
      var insn = bpf_insn()
      insn.code = code
      insn.dst_reg = dst
      insn.src_reg = src
      insn.off = offset
      insn.imm = imm
      return insn
    }
    let program = [
      // *(u64 *)(r10 - 8) = 0
      instruction(UInt8(BPF_ST | BPF_MEM | BPF_DW), dst: 10, offset: -8, imm: 0),
      // r1 = 1
      instruction(UInt8(BPF_ALU64 | BPF_MOV | BPF_K), dst: 1, imm: 1),
      // r1 = atomic_fetch_add((u64 *)(r10 - 8), r1)
      instruction(UInt8(BPF_STX | BPF_DW | BPF_ATOMIC), dst: 10, src: 1, offset: -8, imm: Int32(BPF_ADD | BPF_FETCH)),
      // r0 = 1; exit
      instruction(UInt8(BPF_ALU64 | BPF_MOV | BPF_K), dst: 0, imm: 1),
      instruction(UInt8(BPF_JMP | BPF_EXIT)),
    ]
    let fd = program.withUnsafeBufferPointer {
      bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, "sockaff_probe", "GPL", $0.baseAddress, $0.count, nil)
    }
    guard fd >= 0 else { return fd == -EPERM || fd == -EACCES ? fd : 0 }
    close(fd)
    return 1
  }

  /// The readers' iterator programs, by feature name.
  public static let liveRecordsIterator = "iter/bpf_sk_storage_map"
  public static let heldSocketsIterator = "iter/task_file"
  public static let censusTCPIterator = "iter/tcp"
  public static let censusUDPIterator = "iter/udp"
  public static let readTracepoint = "tp_btf/sock_recv_length"
  public static let stateTracepoint = "tp_btf/inet_sock_set_state"

  /// What sockaff works without, answering less. Each is probed on its
  /// own, when first asked for (a `trace` asks for the tracepoints only and
  /// loads no reader's program; `status` asks for all), and each honours the
  /// `SOCKAFF_REFUSE` test switch before anything is probed.
  private static let pidfdGetfd = KernelFeature(
    name: "pidfd_getfd", state: probePidfdGetfd() ? .yes : .no, neededFor: "query by pid and fd")
  private static let reads = optionalFeature(
    readTracepoint, neededFor: "exact locality (where sockets are read); else sampled from thread CPUs"
  ) { (tracepoints.contains("sock_recv_length") ? .yes : .no, nil) }
  private static let closes = optionalFeature(
    stateTracepoint,
    neededFor:
      "pool slots given back by TCP sockets freed without close (a listener's unaccepted connections); else they keep theirs until detach"
  ) { (tracepoints.contains("inet_sock_set_state") ? .yes : .no, nil) }
  private static let liveRecords = optionalFeature(
    liveRecordsIterator, neededFor: "live record count (the records map's exact fill)"
  ) { probeReader(LoadedBPFObject.liveRecordsProgramName) }
  private static let heldSockets = optionalFeature(
    heldSocketsIterator, neededFor: "one-pass scrape (serve and export walk every process's fds instead)"
  ) { probeReader(LoadedBPFObject.heldSocketsProgramName) }

  private static let censusTCP = optionalFeature(
    censusTCPIterator, neededFor: "one-pass census of TCP sockets (else each is read through pidfd_getfd)"
  ) { probeReader(LoadedBPFObject.censusTCPProgramName, mapless: true) }
  private static let censusUDP = optionalFeature(
    censusUDPIterator, neededFor: "one-pass census of UDP sockets (else each is read through pidfd_getfd)"
  ) { probeReader(LoadedBPFObject.censusUDPProgramName, mapless: true) }

  private static var optional: [KernelFeature] {
    [pidfdGetfd, reads, closes, liveRecords, heldSockets, censusTCP, censusUDP]
  }

  /// The named optional feature, as probed (only that one is).
  public static func feature(_ name: String) -> KernelFeature? {
    switch name {
    case pidfdGetfd.name: pidfdGetfd
    case readTracepoint: reads
    case stateTracepoint: closes
    case liveRecordsIterator: liveRecords
    case heldSocketsIterator: heldSockets
    case censusTCPIterator: censusTCP
    case censusUDPIterator: censusUDP
    default: nil
    }
  }

  /// Whether the named optional feature can be used.
  public static func has(_ name: String) -> Bool { feature(name)?.state == .yes }

  /// Throws the feature's own failure (refused, not permitted, missing)
  /// unless it can be used.
  static func require(_ name: String) throws(SockaffError) {
    guard let feature = feature(name), feature.state != .yes else { return }
    throw feature.unavailableError
  }

  /// `SOCKAFF_REFUSE=NAME[,NAME...]`: features to answer "refused" for,
  /// whatever the kernel says, so that the degraded paths are tested on
  /// any kernel (the tests set it; an operator can, to see what sockaff
  /// does without one). Only optional features: a required one refused
  /// would still be loaded by `trace`.
  static let refusedBySwitch: Set<String> = {
    guard let value = getenv("SOCKAFF_REFUSE") else { return [] }
    return Set(String(cString: value).split(separator: ",").map { $0.trimmingWhitespace() })
  }()

  /// An optional feature: "refused" when the switch names it, without
  /// probing; else what `probe` answers (a state and its detail).
  private static func optionalFeature(
    _ name: String, neededFor: String, probe: () -> (KernelFeature.State, String?)
  ) -> KernelFeature {
    let (state, detail) = refusedBySwitch.contains(name) ? (.refused, "SOCKAFF_REFUSE") : probe()
    return KernelFeature(name: name, state: state, neededFor: neededFor, detail: detail)
  }

  /// A reader's iterator program, loaded alone from the readers' object
  /// with maps of its own: yes, no (the kernel lacks the program type or
  /// its verifier rejects the program, with its reason), refused (EPERM to
  /// a privileged process), or not permitted.
  private static func probeReader(_ program: String, mapless: Bool = false) -> (KernelFeature.State, String?) {
    guard Privileges.canLoad(.readers) else { return (.notPermitted, nil) }
    do {
      _ = try LoadedBPFObject(.readers, programs: [program], mapless: mapless)
      return (.yes, nil)
    } catch {
      switch error.kind {
      case .refused: return (.refused, "EPERM as root")
      case .notPermitted: return (.notPermitted, nil)
      default: return (.no, error.hint)
      }
    }
  }

  /// Throws kernelUnsupported (exit 12) naming the first required feature
  /// the kernel answered "no" for; "not permitted" is left to the load,
  /// which then says which capability is missing.
  static func requireTracing() throws(SockaffError) {
    guard let missing = required.first(where: { $0.state == .no }) else { return }
    throw SockaffError(
      .kernelUnsupported, operation: "trace",
      hint: "the kernel (\(release())) lacks \(missing.name), needed for \(missing.neededFor)")
  }

  /// The tracepoints sockaff attaches to as BTF-enabled raw tracepoints
  /// (sock:sock_recv_length, 6.3+; sock:inet_sock_set_state) that this
  /// kernel has: vmlinux BTF has their btf_trace_ typedefs. Parsing vmlinux
  /// BTF takes milliseconds and megabytes: done once, and freed.
  private static let tracepoints: Set<String> = {
    guard let btf = btf__load_vmlinux_btf() else { return [] }
    defer { btf__free(btf) }
    return Set(
      ["sock_recv_length", "inet_sock_set_state"].filter {
        btf__find_by_name_kind(btf, "btf_trace_\($0)", UInt32(BTF_KIND_TYPEDEF)) > 0
      })
  }()

  /// pidfd_getfd on our own stdin: ENOSYS means the kernel lacks it (< 5.6).
  static func probePidfdGetfd() -> Bool {
    let pidfd = sockaff_pidfd_open(getpid())
    guard pidfd >= 0 else { return false }
    defer { close(pidfd) }
    let fd = sockaff_pidfd_getfd(pidfd, 0)
    if fd >= 0 { close(fd) }
    return fd >= 0 || Glibc.errno != ENOSYS
  }

  /// sysctl kernel.bpf_stats_enabled: programs' run_cnt/run_time_ns count only when 1.
  public static func bpfStatsEnabled() -> Bool {
    (try? readTextFile("/proc/sys/kernel/bpf_stats_enabled"))?.trimmingWhitespace() == "1"
  }
}
