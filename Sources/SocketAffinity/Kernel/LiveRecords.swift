import SystemPackage

/// The records that exist right now in the pinned sockaff_records map: one
/// per socket that received a traced packet and is still open. Socket
/// storage has no entry count in its map info, so a BPF iterator over the
/// map (kernel >= 5.9) counts them in the kernel and writes the count.
enum LiveRecords {
  static func count(records: FileDescriptor) throws(SockaffError) -> Int {
    try RecordsIterator.liveRecords.withOutput(records: records) { (bytes) throws(SockaffError) -> Int in
      guard bytes.count == 8 else {
        throw SockaffError(
          .bpf, operation: "count live records", hint: "the iterator wrote \(bytes.count) bytes, not 8")
      }
      return Int(bytes.loadUnaligned(as: UInt64.self))
    }
  }
}
