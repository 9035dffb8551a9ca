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

  static func read(records: FileDescriptor) throws(SockaffError) -> [Entry] {
    let bytes = try RecordsIterator.heldSockets.output(records: records)
    let size = MemoryLayout<Entry>.size
    return bytes.withUnsafeBytes { raw in
      (0..<raw.count / size).map { raw.loadUnaligned(fromByteOffset: $0 * size, as: Entry.self) }
    }
  }
}
