import CLibbpf
import CSockaffABI

/// The size of the pool of per-CPU shares (map sockaff_pool): how many
/// sockets at once can have each receiving CPU counted apart once a second
/// CPU receives them. Its memory is slots x possible CPUs x 48 bytes of
/// per-CPU memory, allocated at attach, so the default is a budget divided
/// by the CPU count: 16 MiB (16,384 slots up to 21 CPUs, 682 at 512).
public enum PoolSize {
  /// One slot on one CPU: struct sockaff_cpu_share.
  public static let shareBytes = MemoryLayout<sockaff_cpu_share>.size
  public static let defaultBudgetBytes = 16 << 20
  public static let maximumDefaultSlots = 16_384
  /// Accepted by `trace --pool-slots`.
  public static let allowedSlots = 1...(1 << 20)

  public static var possibleCPUs: Int { max(Int(libbpf_num_possible_cpus()), 1) }

  public static func defaultSlots(possibleCPUs: Int) -> Int {
    min(maximumDefaultSlots, max(64, defaultBudgetBytes / (max(possibleCPUs, 1) * shareBytes)))
  }

  /// Per-CPU memory the pool takes, in bytes.
  public static func bytes(slots: Int, possibleCPUs: Int) -> Int { slots * possibleCPUs * shareBytes }
}
