import Glibc
import SystemPackage

/// One line of /proc/mounts.
public struct MountEntry: Equatable, Sendable {
  public let source: String
  public let mountPoint: String
  public let type: String
}

/// Where the kernel filesystems sockaff needs are mounted. Discovered from
/// /proc/mounts, never assumed: cgroup v2 sits at /sys/fs/cgroup on unified
/// hosts and at /sys/fs/cgroup/unified on hybrid (v1 + v2) ones.
public enum Mounts {
  public static let bpffsMountPoint = "/sys/fs/bpf"

  /// Parses /proc/mounts text. Fields are separated by spaces, and spaces,
  /// tabs, newlines and backslashes inside a field are octal escapes (`\040`).
  public static func parse(_ text: String) -> [MountEntry] {
    text.split(separator: "\n").compactMap { line in
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 3 else { return nil }
      return MountEntry(
        source: unescape(fields[0]), mountPoint: unescape(fields[1]), type: String(fields[2]))
    }
  }

  static func unescape(_ field: Substring) -> String {
    var bytes: [UInt8] = []
    var utf8 = Array(field.utf8)[...]
    while let byte = utf8.popFirst() {
      if byte == UInt8(ascii: "\\"), utf8.count >= 3,
        let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8)
      {
        bytes.append(value)
        utf8 = utf8.dropFirst(3)
      } else {
        bytes.append(byte)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// The cgroup v2 root to attach to: /sys/fs/cgroup if it is cgroup2, else
  /// /sys/fs/cgroup/unified, else the first cgroup2 mount found.
  public static func cgroup2Root(in entries: [MountEntry]) -> String? {
    let cgroup2 = entries.filter { $0.type == "cgroup2" }.map(\.mountPoint)
    for preferred in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] where cgroup2.contains(preferred) {
      return preferred
    }
    return cgroup2.first
  }

  public static func isBPFFSMounted(in entries: [MountEntry]) -> Bool {
    entries.contains { $0.type == "bpf" && $0.mountPoint == bpffsMountPoint }
  }

  public static func current() throws(SockaffError) -> [MountEntry] {
    parse(try readTextFile("/proc/mounts"))
  }

  /// Mounts bpffs at /sys/fs/bpf (mode 0700) unless it is already there.
  static func ensureBPFFS() throws(SockaffError) {
    if isBPFFSMounted(in: try current()) { return }
    if Glibc.mount("bpf", bpffsMountPoint, "bpf", 0, "mode=0700") != 0 {
      let errno = Errno(rawValue: Glibc.errno)
      throw SockaffError(
        errno == .notPermitted ? .notPermitted : .environment, errno: errno,
        operation: "mount bpffs at \(bpffsMountPoint)",
        hint: errno == .notPermitted ? "needs CAP_SYS_ADMIN" : nil)
    }
  }

  public static func requireCgroup2Root() throws(SockaffError) -> String {
    guard let root = cgroup2Root(in: try current()) else {
      throw SockaffError(
        .environment, operation: "find cgroup v2",
        hint: "no cgroup2 filesystem in /proc/mounts; mount one, e.g. mount -t cgroup2 none /sys/fs/cgroup")
    }
    return root
  }
}
