import CLibbpf
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
      guard level != LIBBPF_DEBUG, let format, let args else { return 0 }
      var buffer = [CChar](repeating: 0, count: 1024)
      let count = vsnprintf(&buffer, buffer.count, format, args)
      guard count > 0 else { return 0 }
      let line = cString(buffer)
      LibbpfLog.lines.withLock { lines in
        lines.append(line.trimmingWhitespace())
        if lines.count > 20 { lines.removeFirst(lines.count - 20) }
      }
      return 0
    }
  }

  /// The last warning libbpf printed since the previous call, then forgets all.
  static func takeLastWarning() -> String? {
    lines.withLock { lines in
      defer { lines.removeAll() }
      return lines.last(where: { !$0.isEmpty })
    }
  }
}
