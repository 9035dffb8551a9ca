import CSockaffShims
import Glibc
import SystemPackage

/// A pidfd: names one process for as long as it is open, even if its pid is
/// reused after it exits.
struct ProcessHandle: ~Copyable {
  let pid: Int32
  let pidfd: Int32

  init(pid: Int32) throws(SockaffError) {
    guard pid > 0 else {
      throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "pid \(pid)", hint: "not a process id")
    }
    let pidfd = sockaff_pidfd_open(pid)
    guard pidfd >= 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      throw SockaffError.fromErrno(
        errno == .invalidArgument ? .noSuchProcess : errno, operation: "pidfd_open(pid \(pid))",
        hint: errno.rawValue == ENOSYS ? "kernel older than 5.3" : nil)
    }
    self.pid = pid
    self.pidfd = pidfd
  }

  /// What was read from /proc/PID after opening the pidfd described this
  /// process only if it has not been reaped since (a pid is reused only
  /// then): call this after such reads. Signal 0 to a zombie succeeds.
  func requireSameProcess() throws(SockaffError) {
    guard sockaff_pidfd_send_signal(pidfd, 0) == 0 else {
      throw SockaffError(
        .noSuchProcess, errno: .noSuchProcess, operation: "pid \(pid)", hint: "the process exited during the query")
    }
  }

  deinit { close(pidfd) }
}
