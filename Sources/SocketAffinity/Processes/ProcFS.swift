import Glibc
import SystemPackage

/// What sockaff reads from /proc about processes: their ids, names, socket
/// fds, network namespaces and where their threads last ran.
public enum ProcFS {
  /// Numeric entries of a directory, e.g. pids in /proc or fds in /proc/P/fd;
  /// empty if it cannot be read.
  static func numericEntries(_ path: String) -> [Int32] {
    (try? readNumericEntries(path)) ?? []
  }

  static func readNumericEntries(_ path: String) throws(SockaffError) -> [Int32] {
    try readDirectoryNames(path).compactMap { Int32($0) }.sorted()
  }

  public static func processIDs() -> [Int32] { numericEntries("/proc") }

  /// The process's cgroup in the v2 hierarchy ("/system.slice/nginx.service",
  /// from /proc/P/cgroup's "0::" line), relative to the cgroup2 root; nil
  /// for a process gone, or on a host with no v2 hierarchy.
  public static func cgroup(pid: Int32) -> String? {
    guard let text = try? readTextFile("/proc/\(pid)/cgroup") else { return nil }
    return text.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
  }

  /// Whether `cgroup` is `ancestor` or below it (both relative to the root).
  public static func cgroup(_ cgroup: String, isWithin ancestor: String) -> Bool {
    ancestor == "/" || cgroup == ancestor || cgroup.hasPrefix(ancestor.hasSuffix("/") ? ancestor : ancestor + "/")
  }

  static func link(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 256)
    let count = readlink(path, &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count].map(UInt8.init(bitPattern:)), as: UTF8.self)
  }

  /// The inode in a link such as "socket:[31577]" or "net:[4026531840]".
  public static func inode(inLink text: String, kind: String) -> UInt64? {
    guard text.hasPrefix(kind + ":["), text.hasSuffix("]") else { return nil }
    return UInt64(text.dropFirst(kind.count + 2).dropLast())
  }

  /// The open fds of process `pid`. /proc/P/fd of a process with
  /// capabilities we lack is not readable: that throws notPermitted rather
  /// than looking like "no fds"; a process gone throws noSuchProcess.
  static func fileDescriptors(pid: Int32) throws(SockaffError) -> [Int32] {
    do {
      return try readNumericEntries("/proc/\(pid)/fd")
    } catch {
      if error.errno == .noSuchFileOrDirectory {
        throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "read /proc/\(pid)/fd")
      }
      if error.kind == .notPermitted {
        throw SockaffError(error.kind, errno: error.errno, operation: error.operation, hint: Self.ptraceHint)
      }
      throw error
    }
  }

  /// /proc/P/fd of process `pid`, opened for the lookups of `isSocket`;
  /// nil if it cannot be opened (the process exited: its fds will fail too).
  static func openFileDescriptorDirectory(pid: Int32) -> FileDescriptor? {
    try? FileDescriptor.open("/proc/\(pid)/fd", .readOnly, options: [.directory, .closeOnExec])
  }

  /// Whether fd `fd` of process `pid` (`directory`: its /proc/P/fd) is a
  /// socket; false if it was closed meanwhile. The directory lists for the
  /// owner's uid, but each entry needs ptrace access: refused throws
  /// notPermitted.
  ///
  /// fstatat follows the fd's link to the inode itself: readlink on the full
  /// path walked /proc each time and formatted "socket:[inode]" to be
  /// parsed back, a quarter of a 100k-socket listing.
  static func isSocket(pid: Int32, fd: Int32, directory: FileDescriptor) throws(SockaffError) -> Bool {
    try socketInode(pid: pid, fd: fd, directory: directory) != nil
  }

  /// The sockfs inode of socket fd `fd` ("socket:[N]"), nil when the fd
  /// is not a socket or is gone.
  static func socketInode(pid: Int32, fd: Int32, directory: FileDescriptor) throws(SockaffError) -> UInt64? {
    var status = stat()
    guard fstatat(directory.rawValue, String(fd), &status, 0) == 0 else {
      if errno == EACCES || errno == EPERM {
        throw SockaffError(
          .notPermitted, errno: Errno(rawValue: errno), operation: "stat /proc/\(pid)/fd/\(fd)",
          hint: Self.ptraceHint)
      }
      return nil
    }
    return status.st_mode & S_IFMT == S_IFSOCK ? UInt64(status.st_ino) : nil
  }

  static var ptraceHint: String { Privileges.readRefusal }

  public static func command(pid: Int32) -> String? {
    (try? readTextFile("/proc/\(pid)/comm"))?.trimmingWhitespace()
  }

  /// Inode of the process's network namespace (as `ip netns identify` and
  /// `lsns` show it).
  /// sockaff's own network namespace: what its sysfs, getifaddrs and
  /// netlink sockets see.
  public static let ownNetworkNamespace = networkNamespace(pid: getpid())

  public static func networkNamespace(pid: Int32) -> UInt64? {
    link("/proc/\(pid)/ns/net").flatMap { inode(inLink: $0, kind: "net") }
  }

  /// The CPU each thread of `pid` last ran on (field 39 of /proc/P/task/T/stat).
  public static func threadCPUs(pid: Int32) -> [Int] {
    numericEntries("/proc/\(pid)/task").compactMap { tid in
      (try? readTextFile("/proc/\(pid)/task/\(tid)/stat")).flatMap(lastCPU(statLine:))
    }
  }

  /// The CPUs each thread of `pid` may run on (Cpus_allowed_list of
  /// /proc/P/task/T/status).
  public static func threadAffinities(pid: Int32) -> [[Int]] {
    numericEntries("/proc/\(pid)/task").compactMap { tid in
      (try? readTextFile("/proc/\(pid)/task/\(tid)/status")).flatMap(allowedCPUs(statusText:))
    }
  }

  /// The Cpus_allowed_list line of a status file.
  static func allowedCPUs(statusText: String) -> [Int]? {
    statusText.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
      .flatMap { try? CPUList.parse(String($0.dropFirst("Cpus_allowed_list:".count))) }
  }

  /// Whether `pid` is a kernel thread (PF_KTHREAD in field 9 of its stat line).
  static func isKernelThread(pid: Int32) -> Bool {
    guard let line = try? readTextFile("/proc/\(pid)/stat") else { return false }
    return statFields(line).flatMap { $0.count > 6 ? UInt64($0[6]) : nil }.map { $0 & 0x0020_0000 != 0 } ?? false
  }

  /// Fields 3 onwards of a stat line. The command name (field 2) is in
  /// parentheses and may itself hold spaces and parentheses, so fields are
  /// counted from the last ')'.
  static func statFields(_ statLine: String) -> [Substring]? {
    guard let close = statLine.lastIndex(of: ")") else { return nil }
    return statLine[statLine.index(after: close)...].split(separator: " ")
  }

  /// Field 39 ("processor") of a stat line.
  public static func lastCPU(statLine: String) -> Int? {
    // fields[0] is field 3 (state), so field 39 is fields[36].
    guard let fields = statFields(statLine), fields.count > 36, let cpu = Int(fields[36]), cpu >= 0 else { return nil }
    return cpu
  }
}
