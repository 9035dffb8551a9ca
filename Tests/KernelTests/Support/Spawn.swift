import Foundation
import Glibc

/// Starts a program with posix_spawn and reaps it with waitpid.
///
/// Why not Foundation's `Process`: on Linux it learns that a child exited
/// when a socket it hands to the child is closed (swift-corelibs-foundation
/// issue 4795). A child that starts a daemon passes that socket on: after
/// `tmux new-session -d` started the tmux server, `waitUntilExit()` never
/// returned, and CI hung for its whole 90 minutes. Here the child gets
/// exactly stdin, stdout and stderr, and its exit is what waitpid says.
enum Spawn {
  /// Runs `arguments` (looked up in PATH) with stdin from /dev/null and
  /// stdout/stderr on the given descriptors; returns the child's pid.
  static func start(_ arguments: [String], environment: [String: String]?, stdout: Int32, stderr: Int32) throws
    -> pid_t
  {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    // Close every other inherited descriptor (Foundation's pipes are not
    // close-on-exec); glibc ignores a close of one that is gone by then.
    for fd in openDescriptors() where fd > 2 {
      posix_spawn_file_actions_addclose(&actions, fd)
    }
    let environmentLines =
      environment.map { $0.map { "\($0.key)=\($0.value)" } }
      ?? ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
    var argv = arguments.map { strdup($0) } + [nil]
    var envp = environmentLines.map { strdup($0) } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let result = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, &envp)
    guard result == 0 else {
      throw HarnessError("posix_spawnp \(arguments[0]): \(String(cString: strerror(result)))")
    }
    return pid
  }

  /// Waits for `pid`; returns its exit code, or the signal that ended it
  /// (as Foundation's `terminationStatus` does).
  static func wait(_ pid: pid_t) throws -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      guard errno == EINTR else { throw HarnessError("waitpid \(pid): \(String(cString: strerror(errno)))") }
    }
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : signal
  }

  private static func openDescriptors() -> [Int32] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return names.compactMap { Int32($0) }
  }
}
