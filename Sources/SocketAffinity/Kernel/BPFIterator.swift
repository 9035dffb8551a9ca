import CLibbpf
import Glibc

/// Runs a BPF iterator program once and returns everything it wrote: attach
/// (an iterator link; over one map when `mapFD` is given), create the
/// iterator, read it to the end, then close both. The program stays loaded
/// for the next run: its caller keeps the object.
enum BPFIterator {
  static func output(of program: OpaquePointer, name: String, mapFD: Int32? = nil) throws(SockaffError) -> [UInt8] {
    var linkInfo = bpf_iter_link_info()
    var options = bpf_iter_attach_opts()
    options.sz = libbpfOptionsSize(\bpf_iter_attach_opts.link_info_len)
    let link = try withUnsafeMutablePointer(to: &linkInfo) { (info) throws(SockaffError) -> BPFLink in
      if let mapFD {
        info.pointee.map.map_fd = UInt32(bitPattern: mapFD)
        options.link_info = info
        options.link_info_len = UInt32(MemoryLayout<bpf_iter_link_info>.size)
      }
      return try BPFLink(name) { bpf_program__attach_iter(program, &options) }
    }
    defer { link.close() }
    let iterator = bpf_iter_create(link.fd)
    guard iterator >= 0 else { throw SockaffError.lastErrno(operation: "bpf_iter_create (\(name))") }
    defer { close(iterator) }

    // Large reads: each read() restarts the kernel's walk where the last
    // one stopped, and for socket storage that restart is not free.
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let count = read(iterator, &chunk, chunk.count)
      if count == 0 { break }
      if count < 0 {
        // EAGAIN: a million objects walked with nothing written yet (the
        // kernel's cap per read); the next read goes on from there.
        if Glibc.errno == EINTR || Glibc.errno == EAGAIN { continue }
        throw SockaffError.lastErrno(operation: "read \(name)")
      }
      bytes += chunk[..<count]
    }
    return bytes
  }
}
