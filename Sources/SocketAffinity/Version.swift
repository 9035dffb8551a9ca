/// sockaff's version: the one place it is written. `sockaff --version`
/// prints it, and the Makefile reads it from this file for the pkg-config
/// file and the Debian packages (`make deb`), so the three cannot disagree.
public enum SockaffVersion {
  public static let string = "0.1.0"
}
