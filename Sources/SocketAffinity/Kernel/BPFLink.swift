import CLibbpf
import Glibc

/// One attachment of a BPF program that this process holds: the only owner
/// of its libbpf `bpf_link`. Closing it detaches the program, unless it was
/// pinned and disconnected first (then the pin holds the attachment).
/// Closing twice is safe: every teardown path can simply close.
final class BPFLink {
  let name: String
  private var link: OpaquePointer?

  /// Attaches through `attach` (a libbpf bpf_program__attach* call);
  /// a failure is reported with libbpf's errno and last warning.
  init(_ name: String, attach: () -> OpaquePointer?) throws(SockaffError) {
    self.name = name
    guard let link = attach() else { throw LoadedBPFObject.failure("attach \(name)") }
    self.link = link
  }

  /// The link's file descriptor (-1 once closed).
  var fd: Int32 { link.map(bpf_link__fd) ?? -1 }

  /// Pins the link at `path` (0600): the attachment then outlives this process.
  func pin(at path: String) throws(SockaffError) {
    guard let link else { throw SockaffError(.other, operation: "pin \(name): link already closed") }
    if bpf_link__pin(link, path) != 0 { throw SockaffError.lastErrno(operation: "pin link \(name) at \(path)") }
    chmod(path, 0o600)
  }

  /// Leaves the attachment to its pin: closes this process's handle
  /// without detaching.
  func disconnect() {
    guard let link else { return }
    bpf_link__disconnect(link)
    bpf_link__destroy(link)
    self.link = nil
  }

  /// Detaches it, pinned or not (a tracing link, which cannot be detached
  /// explicitly, goes with its last reference), and frees the handle.
  /// Idempotent.
  func detach() {
    guard let link else { return }
    bpf_link__detach(link)
    close()
  }

  /// Detaches (when not pinned) and frees the handle. Idempotent.
  func close() {
    guard let link else { return }
    bpf_link__destroy(link)
    self.link = nil
  }

  deinit { close() }
}
