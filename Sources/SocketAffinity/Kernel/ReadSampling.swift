import CLibbpf
import CSockaffABI
import Glibc
import SystemPackage

/// How the attached tracer counts reads, from the kernel's own objects: the
/// program behind the consumer link is `sockaff_consume` (every read) or
/// `sockaff_sampled` (one in SOCKAFF_READ_SAMPLE, `trace --sampled-reads`).
/// The pinned link says so in pinned mode; in foreground mode, where links
/// are not pinned (no ingress link pin), the host's links are walked for one
/// of those programs.
enum ReadSampling {
  static let sampledProgramName = "sockaff_sampled"

  /// 1 (every read), SOCKAFF_READ_SAMPLE, or nil when no read program is
  /// attached (reads not traced).
  static func current(pins: PinLayout) -> Int? {
    if let link = try? PinnedLink.open(pins.consumerLink) {
      return (try? BPF.linkInfo(link.descriptor)).flatMap { sampling(ofProgram: $0.prog_id) }
    }
    // Pinned mode pins every link it attached: no consumer pin there means
    // reads are not traced, with no walk of the host's links per command.
    guard access(pins.ingressLink, F_OK) != 0 else { return nil }
    var id: UInt32 = 0
    while bpf_link_get_next_id(id, &id) == 0 {
      let fd = bpf_link_get_fd_by_id(id)
      guard fd >= 0 else { continue }
      let link = FileDescriptor(rawValue: fd)
      defer { link.closeQuietly() }
      // tp_btf attaches through a raw tracepoint link; the name decides.
      guard let info = try? BPF.linkInfo(link) else { continue }
      if let sampling = sampling(ofProgram: info.prog_id) { return sampling }
    }
    return nil
  }

  private static func sampling(ofProgram id: UInt32) -> Int? {
    let fd = bpf_prog_get_fd_by_id(id)
    guard fd >= 0 else { return nil }
    let program = FileDescriptor(rawValue: fd)
    defer { program.closeQuietly() }
    guard let info = try? BPF.programInfo(program) else { return nil }
    let name = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    switch name {
    case LoadedBPFObject.consumerProgramName: return 1
    case sampledProgramName: return Int(SOCKAFF_READ_SAMPLE)
    default: return nil
    }
  }
}
