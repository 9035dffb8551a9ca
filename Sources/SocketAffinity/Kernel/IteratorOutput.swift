import Glibc

/// Memory a BPF iterator's output is read into, grown as needed and never
/// shrunk, kept by its reader for the next run (a scrape's output is
/// megabytes: fresh memory each time cost a page fault and a page zeroed by
/// the kernel for every 4 KiB, about a tenth of a scrape with 100k sockets).
/// Used under its owner's lock only.
final class IteratorOutput: @unchecked Sendable {
  private(set) var bytes: UnsafeMutableRawPointer
  private(set) var capacity: Int

  init() {
    capacity = 1 << 20
    bytes = .allocate(byteCount: capacity, alignment: 16)
  }

  deinit { bytes.deallocate() }

  /// Twice the room, keeping the first `used` bytes.
  private func grow(keeping used: Int) {
    let larger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
    larger.copyMemory(from: bytes, byteCount: used)
    bytes.deallocate()
    (bytes, capacity) = (larger, capacity * 2)
  }

  /// Reads iterator fd `iterator` to its end, from the start of the
  /// buffer (`from`: after the first `from` bytes, kept); returns the bytes
  /// now held. Large reads: each read() restarts the kernel's walk where the
  /// last one stopped, and for socket storage that restart is not free.
  func read(_ iterator: Int32, name: String, from start: Int = 0) throws(SockaffError) -> Int {
    var used = start
    while true {
      if capacity - used < 1 << 19 { grow(keeping: used) }
      let count = Glibc.read(iterator, bytes + used, capacity - used)
      if count == 0 { break }
      if count < 0 {
        // EAGAIN: a million objects walked with nothing written yet (the
        // kernel's cap per read); the next read goes on from there.
        if Glibc.errno == EINTR || Glibc.errno == EAGAIN { continue }
        throw SockaffError.lastErrno(operation: "read \(name)")
      }
      used += count
    }
    return used
  }
}
