import CLibbpf
import CSockaffShims
import Glibc

/// Kernel features sockaff relies on, probed once (as `bpftool feature probe`
/// does), never assumed from the version number.
public struct KernelFeature: Sendable, Equatable, Codable {
  public let name: String
  public let available: Bool
  /// What sockaff loses without it.
  public let neededFor: String

  enum CodingKeys: String, CodingKey {
    case name, available
    case neededFor = "needed_for"
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

  public static func probe() -> [KernelFeature] {
    LibbpfLog.install()
    defer { _ = LibbpfLog.takeLastWarning() }
    func helper(_ id: bpf_func_id) -> Bool {
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, id, nil) == 1
    }
    return [
      KernelFeature(
        name: "cgroup_skb", available: libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, nil) == 1,
        neededFor: "tracing at all"),
      KernelFeature(
        name: "sk_storage", available: libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nil) == 1,
        neededFor: "per-socket records"),
      KernelFeature(
        name: "sk_storage_get_in_cgroup_skb", available: helper(BPF_FUNC_sk_storage_get),
        neededFor: "per-socket records"),
      KernelFeature(name: "jiffies64", available: helper(BPF_FUNC_jiffies64), neededFor: "timestamps"),
      KernelFeature(name: "pidfd_getfd", available: probePidfdGetfd(), neededFor: "query by pid and fd"),
      KernelFeature(
        name: "tp_btf/sock_recv_length", available: hasSockRecvLengthTracepoint(),
        neededFor: "exact locality (where sockets are read); else sampled from thread CPUs"),
    ]
  }

  /// The sock:sock_recv_length tracepoint (6.3+) as a BTF-enabled raw
  /// tracepoint: present when vmlinux BTF has its btf_trace_ typedef.
  public static func hasSockRecvLengthTracepoint() -> Bool {
    guard let btf = btf__load_vmlinux_btf() else { return false }
    defer { btf__free(btf) }
    return btf__find_by_name_kind(btf, "btf_trace_sock_recv_length", UInt32(BTF_KIND_TYPEDEF)) > 0
  }

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
