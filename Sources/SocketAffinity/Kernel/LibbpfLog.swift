import CLibbpf
import CSockaffShims
import Glibc
import Synchronization

/// Collects libbpf's warnings instead of letting it print to stderr, so a
/// failure becomes one line with libbpf's own reason as the hint. Debug-level
/// chatter is dropped; `SOCKAFF_LIBBPF_DEBUG=1` lets everything through.
enum LibbpfLog {
  private static let lines = Mutex<[String]>([])

  static func install() {
    let verbose = getenv("SOCKAFF_LIBBPF_DEBUG") != nil
    if verbose {
      _ = libbpf_set_print { level, format, args in
        guard let format, let args else { return 0 }
        return vdprintf(STDERR_FILENO, format, args)
      }
      return
    }
    _ = libbpf_set_print { level, format, args in
      // Whole messages: a failed program's verifier log is one message,
      // and its last lines are the reason.
      guard level != LIBBPF_DEBUG, let format, let args, let message = sockaff_format_message(format, args) else {
        return 0
      }
      defer { free(message) }
      let line = String(cString: message)
      LibbpfLog.lines.withLock { lines in
        lines.append(line.trimmingWhitespace())
        if lines.count > 20 { lines.removeFirst(lines.count - 20) }
      }
      return 0
    }
  }

  /// The last warning libbpf printed since the previous call, then forgets
  /// all. When the verifier rejected a program, its reason instead: the log
  /// line before "processed N insns" (as `R2 type=untrusted_ptr_ expected=...`).
  static func takeLastWarning() -> String? {
    lines.withLock { lines in
      defer { lines.removeAll() }
      if let log = lines.last(where: { $0.contains("BEGIN PROG LOAD LOG") }), let reason = verifierReason(log) {
        return "rejected by the verifier: \(reason)"
      }
      return lines.last(where: { !$0.isEmpty })
    }
  }

  /// The verifier's own last word in a load log: the last line before its
  /// closing statistics ("processed N insns ..."), or nil without one.
  static func verifierReason(_ log: String) -> String? {
    let logLines = log.split(separator: "\n").map { $0.trimmingWhitespace() }
    guard let end = logLines.firstIndex(where: { $0.hasPrefix("processed ") && $0.contains(" insns") }) else {
      return nil
    }
    return logLines[..<end].last(where: { !$0.isEmpty && !$0.hasPrefix("--") && !$0.hasPrefix(";") })
  }
}
