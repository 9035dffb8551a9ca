import CSockaffShims
import Glibc
import SystemPackage

/// Our own duplicate of socket `fd` of process `pid`, reached through a pidfd
/// (pidfd_open + pidfd_getfd), so the target process is neither stopped nor
/// changed, and a pid reused after the process exits cannot be confused with
/// it: every step goes through the one pidfd.
public struct TargetSocket: ~Copyable {
  public let pid: Int32
  public let fd: Int32
  public let descriptor: FileDescriptor

  public init(pid: Int32, fd: Int32) throws(SockaffError) {
    let process = try ProcessHandle(pid: pid)
    try self.init(process: process, fd: fd)
  }

  /// Through an already open pidfd: a listing opens one per process.
  init(process: borrowing ProcessHandle, fd: Int32) throws(SockaffError) {
    let pid = process.pid
    guard fd >= 0 else {
      throw SockaffError(.badFileDescriptor, errno: .badFileDescriptor, operation: "pid \(pid) fd \(fd)")
    }
    let duplicate = sockaff_pidfd_getfd(process.pidfd, fd)
    guard duplicate >= 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      let hint: String? =
        switch errno {
        case .notPermitted, .permissionDenied: ProcFS.ptraceHint
        case .noSuchProcess: "the process has exited"
        case .badFileDescriptor where ProcFS.isKernelThread(pid: pid): "pid \(pid) is a kernel thread: it has no files"
        case Errno(rawValue: ENOSYS): "kernel older than 5.6"
        default: nil
        }
      throw SockaffError.fromErrno(errno, operation: "pidfd_getfd(pid \(pid), fd \(fd))", hint: hint)
    }
    self.pid = pid
    self.fd = fd
    self.descriptor = FileDescriptor(rawValue: duplicate)
  }

  deinit { try? descriptor.close() }

  /// getsockopt of an int-valued option.
  public func intOption(_ level: Int32, _ name: Int32) throws(SockaffError) -> Int32 {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(descriptor.rawValue, level, name, &value, &length) == 0 else {
      throw optionFailure(name: name)
    }
    return value
  }

  public func cookie() throws(SockaffError) -> UInt64 {
    var value: UInt64 = 0
    var length = socklen_t(MemoryLayout<UInt64>.size)
    guard getsockopt(descriptor.rawValue, SOL_SOCKET, SO_COOKIE, &value, &length) == 0 else {
      throw optionFailure(name: SO_COOKIE)
    }
    return value
  }

  private func optionFailure(name: Int32) -> SockaffError {
    let errno = Errno(rawValue: Glibc.errno)
    if errno == .notSocket {
      return SockaffError(
        .notSocket, errno: errno, operation: "pid \(pid) fd \(fd)", hint: describeTarget())
    }
    return SockaffError.fromErrno(errno, operation: "getsockopt(pid \(pid) fd \(fd), option \(name))")
  }

  /// What the fd is, as /proc shows it (e.g. "/etc/hosts", "pipe:[1234]").
  public func describeTarget() -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let count = readlink("/proc/\(pid)/fd/\(fd)", &buffer, buffer.count - 1)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count].map(UInt8.init(bitPattern:)), as: UTF8.self)
  }

  /// getsockname or getpeername as raw address and port; nil when unset.
  public func endpoint(peer: Bool) -> Endpoint? {
    socketAddress(peer: peer).flatMap(SocketAddress.endpoint)
  }

  private func socketAddress(peer: Bool) -> sockaddr_storage? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let status = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        peer
          ? getpeername(descriptor.rawValue, $0, &length)
          : getsockname(descriptor.rawValue, $0, &length)
      }
    }
    return status == 0 ? storage : nil
  }

  /// getsockname or getpeername as "address:port"; nil when unset
  /// (getpeername of an unconnected socket fails with ENOTCONN).
  public func address(peer: Bool) -> String? {
    socketAddress(peer: peer).flatMap(SocketAddress.format)
  }

  /// Name of interface `ifindex` in the socket's own network namespace.
  public func interfaceName(ifindex: UInt32) -> String? {
    guard ifindex > 0 else { return nil }
    var name = [CChar](repeating: 0, count: 16)
    guard sockaff_interface_name(descriptor.rawValue, Int32(ifindex), &name) == 0 else { return nil }
    return cString(name)
  }
}
