import CSockaffABI
import SystemPackage

/// Every traced socket that a process holds open, with its holder (pid, fd)
/// and the fields of its record that a scrape sums, from one run of the
/// sockaff_held_sockets iterator over every process's open files (kernel
/// >= 5.11: bpf_sock_from_file). A host with 100k traced sockets is read in
/// one pass in the kernel, where a walk of /proc/P/fd opens every socket from
/// userspace (about ten syscalls each).
public enum HeldSockets {
  /// One holder (process, fd) of one traced socket: `struct
  /// sockaff_held_socket`, the record's summed fields with what the socket is.
  public typealias Entry = sockaff_held_socket

  /// Runs the pass and hands `body` its entries where the kernel wrote
  /// them (not copied: 8 MB for 100k sockets), valid only during `body`.
  static func withEntries<T: Sendable>(
    records: FileDescriptor, _ body: (UnsafeBufferPointer<Entry>) throws(SockaffError) -> T
  ) throws(SockaffError) -> T {
    try RecordsIterator.heldSockets.withOutput(records: records) { (bytes) throws(SockaffError) -> T in
      // The buffer is 16-byte aligned and entries are 80 bytes each: every
      // entry is aligned for its 8-byte fields.
      let count = bytes.count / MemoryLayout<Entry>.stride
      guard let base = bytes.baseAddress, count > 0 else { return try body(UnsafeBufferPointer(start: nil, count: 0)) }
      return try body(UnsafeBufferPointer(start: base.bindMemory(to: Entry.self, capacity: count), count: count))
    }
  }
}
