import Glibc
import SystemPackage

/// Everything sockaff can fail with: what went wrong, in Linux terms (an errno
/// where there is one), which operation on which object, and a distinct exit
/// status for the command-line tool.
///
/// The message is one line, e.g.
/// `pidfd_getfd(pid 812, fd 9): Operation not permitted (needs CAP_SYS_PTRACE)`.
public struct SockaffError: Error, CustomStringConvertible, Sendable, Equatable {
  public enum Kind: String, Sendable, Codable {
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
    case other = "other"
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

  /// Distinct per kind, stable, documented in docs/USAGE.md ("Errors and exit statuses").
  /// 64 is left to swift-argument-parser's usage errors (EX_USAGE).
  public var exitStatus: Int32 {
    switch kind {
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
    }
  }

  /// The failure of the call that just returned, from the thread's errno.
  static func lastErrno(operation: String, hint: String? = nil) -> SockaffError {
    fromErrno(Errno(rawValue: Glibc.errno), operation: operation, hint: hint)
  }

  /// The tracer's pins or programs are missing.
  static let notAttached = SockaffError(
    .notAttached, operation: "query", hint: "tracer not attached; run 'sockaff trace' first")

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
