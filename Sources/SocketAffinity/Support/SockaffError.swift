import Glibc
import SystemPackage

/// Everything sockaff can fail with: what went wrong, in Linux terms (an errno
/// where there is one), which operation on which object, and a distinct exit
/// status for the command-line tool.
///
/// The message is one line, e.g.
/// `pidfd_getfd(pid 812, fd 9): Operation not permitted (needs CAP_SYS_PTRACE)`.
public struct SockaffError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Kind: String, Sendable, Codable, CaseIterable {
    case noSuchProcess = "no_such_process"
    case badFileDescriptor = "bad_file_descriptor"
    case notSocket = "not_socket"
    case unsupportedSocket = "unsupported_socket"
    case notPermitted = "not_permitted"
    case notAttached = "not_attached"
    case noPacketsYet = "no_packets_yet"
    case timedOut = "timed_out"
    case environment = "environment"
    case kernelUnsupported = "kernel_unsupported"
    case bpf = "bpf"
    case incompatiblePins = "incompatible_pins"
    case notPredictable = "not_predictable"
    /// The kernel refused a program or map although this process holds
    /// every capability it takes (EPERM as root: lockdown, an LSM policy,
    /// a vendor patch). Not "needs CAP_X": more privilege would not help.
    case refused = "refused"
    /// `export --textfile DIR` where DIR is not safe to write into: not a
    /// directory, or writable by others than its owner, or owned by
    /// another user than root or this one.
    case unsafeDirectory = "unsafe_directory"
    /// Another sockaff holds what this command needs: the tracer attached
    /// in the other mode, a foreground trace running, the --listen address
    /// in use.
    case conflict = "conflict"
    /// `--port` (with its filters) matched no socket of any process.
    case noSuchSocket = "no_such_socket"
    /// `--cgroup PATH` names no cgroup of the v2 hierarchy.
    case noSuchCgroup = "no_such_cgroup"
    /// `check` found something in the host's receive layout (its findings
    /// are the output, not an error line).
    case findings = "findings"
    /// `serve --web.config.file FILE`: FILE does not load (not YAML, an
    /// unknown key, a bad value, a certificate or key that does not load).
    case badWebConfig = "bad_web_config"
    /// `advise --undo`: no undo file (nothing applied, or already undone).
    case noUndo = "no_undo"
    /// `advise --undo`: the undo file is not for the host as it is now
    /// (another boot, or a file changed since --apply wrote it).
    case staleUndo = "stale_undo"
    /// `advise --apply` on a host whose processes sockaff cannot all read:
    /// it would change the layout under sockets it cannot see.
    case unreadable = "unreadable"
    case other = "other"

    /// The exit status, distinct per kind and stable: the one table that
    /// `--help` and docs/USAGE.md's are checked against (64 is left to
    /// swift-argument-parser's usage errors, EX_USAGE).
    public var exitStatus: Int32 {
      switch self {
      case .other: 1
      case .noSuchProcess: 3
      case .badFileDescriptor: 4
      case .notSocket: 5
      case .unsupportedSocket: 6
      case .notPermitted: 7
      case .notAttached: 8
      case .noPacketsYet: 9
      case .timedOut: 10
      case .environment: 11
      case .kernelUnsupported: 12
      case .bpf: 13
      case .incompatiblePins: 14
      case .notPredictable: 15
      case .refused: 16
      case .unsafeDirectory: 17
      case .conflict: 18
      case .noSuchSocket: 19
      case .noSuchCgroup: 20
      case .findings: 21
      case .badWebConfig: 22
      case .noUndo: 23
      case .staleUndo: 24
      case .unreadable: 25
      }
    }

    /// A few words for `--help`'s list of exit statuses.
    public var summary: String {
      switch self {
      case .other: "other error"
      case .noSuchProcess: "no such process"
      case .badFileDescriptor: "bad fd"
      case .notSocket: "not a socket"
      case .unsupportedSocket: "unsupported socket"
      case .notPermitted: "not permitted"
      case .notAttached: "tracer not attached"
      case .noPacketsYet: "no packets yet"
      case .timedOut: "timed out"
      case .environment: "bpffs/cgroup2 missing"
      case .kernelUnsupported: "kernel unsupported"
      case .bpf: "BPF failure"
      case .incompatiblePins: "incompatible pins"
      case .notPredictable: "not predictable"
      case .refused: "refused by the kernel"
      case .unsafeDirectory: "unsafe directory"
      case .conflict: "conflict with another sockaff"
      case .noSuchSocket: "no socket matches --port"
      case .noSuchCgroup: "no such cgroup"
      case .findings: "check found something"
      case .badWebConfig: "bad web config"
      case .noUndo: "no undo file"
      case .staleUndo: "stale undo file"
      case .unreadable: "host not fully readable"
      }
    }
  }

  /// Every exit status with its summary, in order, 0 and 64 included:
  /// what `--help` prints.
  public static var exitStatusTable: [(status: Int32, summary: String)] {
    ([(0, "ok")] + Kind.allCases.map { ($0.exitStatus, $0.summary) } + [(64, "usage")]).sorted { $0.0 < $1.0 }
  }

  public let kind: Kind
  /// The errno the kernel answered with, when the failure came from a syscall.
  public let errno: Errno?
  /// What was attempted, e.g. `pidfd_open(pid 812)`.
  public let operation: String
  /// What the operator can do about it, e.g. `needs CAP_SYS_PTRACE`.
  public let hint: String?

  public init(_ kind: Kind, errno: Errno? = nil, operation: String, hint: String? = nil) {
    self.kind = kind
    self.errno = errno
    self.operation = operation
    self.hint = hint
  }

  public var description: String {
    var line = operation
    if let errno { line += ": \(errno.description)" }
    if let hint { line += errno == nil ? ": \(hint)" : " (\(hint))" }
    return line
  }

  /// Distinct per kind, stable, documented in docs/USAGE.md ("Errors and
  /// exit statuses"), which a unit test checks against `Kind.exitStatus`.
  public var exitStatus: Int32 { kind.exitStatus }

  /// The failure of the call that just returned, from the thread's errno.
  static func lastErrno(operation: String, hint: String? = nil) -> SockaffError {
    fromErrno(Errno(rawValue: Glibc.errno), operation: operation, hint: hint)
  }

  /// The tracer's pins or programs are missing. No command in it: the CLI
  /// names the command that needed the tracer ("sockaff list: ...").
  static let notAttached = SockaffError(
    .notAttached, operation: "tracer not attached", hint: "run 'sockaff trace' first")

  /// Maps a syscall failure to a kind by its errno: the mapping the errno
  /// itself suggests, independent of the call.
  public static func fromErrno(
    _ errno: Errno, operation: String, hint: String? = nil
  ) -> SockaffError {
    let kind: Kind =
      switch errno {
      case .noSuchProcess: .noSuchProcess
      case .badFileDescriptor: .badFileDescriptor
      case .notSocket: .notSocket
      case .notSupported, .protocolNotSupported, .addressFamilyNotSupported: .unsupportedSocket
      case .notPermitted, .permissionDenied: .notPermitted
      default: .other
      }
    return SockaffError(kind, errno: errno, operation: operation, hint: hint)
  }
}
