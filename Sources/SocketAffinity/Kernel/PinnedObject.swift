import CLibbpf
import Glibc
import SystemPackage

/// A pinned BPF object opened by its path in bpffs: the one owner of this
/// process's descriptor for it, closed once (on `close()` or deinit).
/// Opening answers nil where there is no such pin; a pin this user may not
/// open (root's, mode 0600) is an error that says so.
class PinnedObject {
  let path: String
  private(set) var descriptor: FileDescriptor

  fileprivate init(path: String, descriptor: FileDescriptor) {
    self.path = path
    self.descriptor = descriptor
  }

  /// The raw descriptor, for libbpf calls; valid until `close()`.
  var fd: Int32 { descriptor.rawValue }

  func close() {
    guard descriptor.rawValue >= 0 else { return }
    descriptor.closeQuietly()
    descriptor = FileDescriptor(rawValue: -1)
  }

  /// Removes a pin (this object or any other) from bpffs: true if it was
  /// there. The kernel object lives on while other references hold it.
  static func unpin(_ path: String) throws(SockaffError) -> Bool {
    if Glibc.unlink(path) == 0 { return true }
    if Glibc.errno == ENOENT { return false }
    throw SockaffError.lastErrno(operation: "unlink \(path)")
  }

  deinit { close() }
}

/// A pinned map (records, counts, clock, pool).
final class PinnedMap: PinnedObject {
  static func open(_ path: String) throws(SockaffError) -> PinnedMap? {
    try BPF.openPinned(path).map { PinnedMap(path: path, descriptor: $0) }
  }

  func info() throws(SockaffError) -> bpf_map_info { try BPF.mapInfo(descriptor) }
}

/// A pinned link (ingress, consumer, closed, release): the attachment
/// itself, which lives while its pin does.
final class PinnedLink: PinnedObject {
  static func open(_ path: String) throws(SockaffError) -> PinnedLink? {
    try BPF.openPinned(path).map { PinnedLink(path: path, descriptor: $0) }
  }

  /// Whether the link still holds its program on a cgroup: a cgroup link
  /// detached under its pin reports cgroup id 0.
  func isOnCgroup() throws(SockaffError) -> Bool {
    let info = try BPF.linkInfo(descriptor)
    return info.type == BPF_LINK_TYPE_CGROUP.rawValue && info.cgroup.cgroup_id != 0
  }

  /// Detaches the program behind the pin. Tracing (raw tracepoint) links
  /// cannot be detached explicitly (EOPNOTSUPP): they go when their last
  /// reference, the pin, goes; one already detached answers ENOLINK.
  func detach() throws(SockaffError) {
    if bpf_link_detach(fd) != 0 && Glibc.errno != EOPNOTSUPP && Glibc.errno != ENOLINK {
      throw SockaffError.lastErrno(operation: "bpf_link_detach(\(path))")
    }
  }
}
