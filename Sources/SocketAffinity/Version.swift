import CSockaffABI

/// sockaff's version: the one place it is written. `sockaff --version`
/// prints it, and the Makefile reads it from this file for the pkg-config
/// file and the Debian packages (`make deb`), so the three cannot disagree.
public enum SockaffVersion {
  public static let string = "0.1.0"
}

extension SockaffVersion {
  /// What `sockaff --version` prints: the version, the record ABI its pins
  /// carry (a tracer attached by a build of another ABI must be detached
  /// first), and which build this is: the static executable (`make build`)
  /// or one linked against the system's shared libraries (`make deb`).
  public static var line: String {
    "\(string) (record ABI \(SOCKAFF_ABI_VERSION), \(isStaticExecutable ? "static executable" : "shared libraries"))"
  }

  /// A static executable maps no shared C library.
  static var isStaticExecutable: Bool {
    guard let maps = try? readTextFile("/proc/self/maps") else { return false }
    return !maps.contains("/libc.so")
  }
}
