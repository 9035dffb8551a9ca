import CSockaffShims

/// What this process may ask of the BPF subsystem, from its effective
/// capabilities (the kernel's own bpf_capable() and perfmon_capable():
/// CAP_SYS_ADMIN implies both). Root has them unless they were dropped (a
/// container's root). A refusal to a process that has them is the kernel's
/// policy, not a missing capability, and is said so.
public enum Privileges {
  /// Whether this process holds what loading that object takes: the
  /// readers' iterators CAP_BPF and CAP_PERFMON; the tracer's cgroup
  /// programs CAP_NET_ADMIN too.
  static func canLoad(_ source: LoadedBPFObject.Source) -> Bool {
    func has(_ capability: Int32) -> Bool { sockaff_has_effective_capability(capability) == 1 }
    let admin = has(Int32(CAP_SYS_ADMIN))
    let tracing = (admin || has(Int32(CAP_BPF))) && (admin || has(Int32(CAP_PERFMON)))
    return tracing && (source == .readers || has(Int32(CAP_NET_ADMIN)))
  }

  /// What loading that object takes, as a hint to a process without it.
  static func needed(_ source: LoadedBPFObject.Source) -> String {
    source == .readers
      ? "needs CAP_BPF and CAP_PERFMON, or root" : "needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, or root"
  }

  /// Whether this process may read other processes' fds (ptrace access:
  /// CAP_SYS_PTRACE). Without it, "needs CAP_SYS_PTRACE" is the hint; with
  /// it, a refusal is the kernel's (a protected process, an LSM, another
  /// user namespace's process) and is said so.
  public static var canReadOtherProcesses: Bool { sockaff_has_effective_capability(Int32(CAP_SYS_PTRACE)) == 1 }

  /// Why another process's fds could not be read, for the operator.
  public static var readRefusal: String {
    canReadOtherProcesses
      ? "refused by the kernel although this process has CAP_SYS_PTRACE (a protected process, an LSM, "
        + "or another user namespace's process)"
      : "needs CAP_SYS_PTRACE: ptrace access to the target"
  }
}
