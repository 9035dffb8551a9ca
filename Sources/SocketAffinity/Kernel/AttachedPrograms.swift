import CLibbpf
import Glibc
import SystemPackage

/// What the kernel says is attached: sockaff's ingress programs on the
/// cgroup v2 root, found by bpf_prog_query rather than by trusting the pins.
public struct AttachedProgram: Sendable, Equatable, Codable {
  public let id: UInt32
  public let name: String
  /// Times the program ran and the total ns it took; both stay 0 unless
  /// sysctl kernel.bpf_stats_enabled=1.
  public let runCount: UInt64
  public let runTimeNanoseconds: UInt64

  enum CodingKeys: String, CodingKey {
    case id, name
    case runCount = "run_count"
    case runTimeNanoseconds = "run_time_nanoseconds"
  }
}

enum AttachedPrograms {
  static func query(cgroup: String) throws(SockaffError) -> [AttachedProgram] {
    let cgroupFD = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard cgroupFD >= 0 else { throw SockaffError.lastErrno(operation: "open cgroup \(cgroup)") }
    defer { close(cgroupFD) }
    var ids = [UInt32](repeating: 0, count: 64)
    var count = UInt32(ids.count)
    var flags: UInt32 = 0
    if bpf_prog_query(cgroupFD, BPF_CGROUP_INET_INGRESS, 0, &flags, &ids, &count) != 0 {
      let errno = Errno(rawValue: Glibc.errno)
      throw SockaffError.fromErrno(
        errno, operation: "bpf_prog_query(\(cgroup), ingress)",
        hint: errno == .notPermitted ? "needs CAP_NET_ADMIN or root" : nil)
    }
    var programs: [AttachedProgram] = []
    for id in ids.prefix(Int(count)) {
      let fd = bpf_prog_get_fd_by_id(id)
      guard fd >= 0 else {
        // ENOENT: detached meanwhile. EPERM must not read as "not attached".
        if Glibc.errno == ENOENT { continue }
        throw SockaffError.lastErrno(
          operation: "bpf_prog_get_fd_by_id(\(id))", hint: "needs CAP_SYS_ADMIN to identify attached programs")
      }
      let program = FileDescriptor(rawValue: fd)
      defer { program.closeQuietly() }
      let info = try BPF.programInfo(program)
      let name = withUnsafeBytes(of: info.name) {
        String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
      }
      guard name == LoadedBPFObject.ingressProgramName else { continue }
      programs.append(
        AttachedProgram(id: id, name: name, runCount: info.run_cnt, runTimeNanoseconds: info.run_time_ns))
    }
    return programs
  }

  /// Whether the pinned ingress link still holds the program on a cgroup:
  /// pinned mode's own answer, which needs no CAP_SYS_ADMIN (reading the
  /// programs' info by id does).
  static func pinnedIngressLinkIsAttached(pins: PinLayout) throws(SockaffError) -> Bool {
    try PinnedLink.open(pins.ingressLink)?.isOnCgroup() ?? false
  }
}
