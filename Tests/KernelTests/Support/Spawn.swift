import Foundation
import Glibc

/// Starts a program with posix_spawn and reaps it with waitpid, for `Child`:
/// a program a test holds across its steps (a peer process, `sockaff serve`,
/// `trace --foreground`), writing to its stdin and reading its stdout
/// between synchronous checks. Programs run to their exit go through
/// swift-subprocess (`Command.run`); its running process lives only inside
/// one async closure, which does not fit a process held across a test.
///
/// Why not Foundation's `Process`: on Linux it learns that a child exited
/// when a socket it hands to the child is closed (swift-corelibs-foundation
/// issue 4795). A child that starts a daemon passes that socket on: after
/// `tmux new-session -d` started the tmux server, `waitUntilExit()` never
/// returned, and CI hung for its whole 90 minutes. Here the child gets
/// exactly stdin, stdout and stderr, and its exit is what waitpid says.
enum Spawn {
  /// Runs `arguments` (looked up in PATH) with stdin from `stdin` (nil:
  /// /dev/null) and stdout/stderr on the given descriptors; returns the pid.
  static func start(_ arguments: [String], stdin: Int32? = nil, stdout: Int32, stderr: Int32) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdin {
      posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    } else {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
    // Close every other inherited descriptor (Foundation's pipes are not
    // close-on-exec); glibc ignores a close of one that is gone by then.
    for fd in openDescriptors() where fd > 2 {
      posix_spawn_file_actions_addclose(&actions, fd)
    }
    let environmentLines = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
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

/// A started program this process owns: its pid, the write end of its stdin
/// and the read end of its stdout (stderr goes with stdout, or to
/// /dev/null). Killed and reaped on deinit if still running.
final class Child {
  let pid: pid_t
  let arguments: [String]
  /// Write end of the child's stdin; nil when it reads /dev/null.
  let input: FileHandle?
  /// Read end of the child's stdout.
  let output: FileHandle
  private var status: Int32?

  init(_ arguments: [String], withInput: Bool = false, stderrToStdout: Bool = false) throws {
    self.arguments = arguments
    var out: [Int32] = [-1, -1]
    var into: [Int32] = [-1, -1]
    guard pipe(&out) == 0, !withInput || pipe(&into) == 0 else {
      throw HarnessError("pipe: \(String(cString: strerror(errno)))")
    }
    let null = open("/dev/null", O_WRONLY)
    defer {
      close(null)
      close(out[1])
      if withInput { close(into[0]) }
    }
    pid = try Spawn.start(
      arguments, stdin: withInput ? into[0] : nil, stdout: out[1], stderr: stderrToStdout ? out[1] : null)
    output = FileHandle(fileDescriptor: out[0], closeOnDealloc: true)
    input = withInput ? FileHandle(fileDescriptor: into[1], closeOnDealloc: true) : nil
  }

  var isRunning: Bool {
    guard status == nil else { return false }
    var raw: Int32 = 0
    guard waitpid(pid, &raw, WNOHANG) == pid else { return true }
    let signal = raw & 0x7f
    status = signal == 0 ? (raw >> 8) & 0xff : signal
    return false
  }

  /// Waits for the child to end: its exit code, or the signal that ended it.
  @discardableResult
  func wait() throws -> Int32 {
    if let status { return status }
    let result = try Spawn.wait(pid)
    status = result
    return result
  }

  func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

  deinit {
    try? input?.close()
    signal(SIGKILL)
    _ = try? wait()
  }
}
