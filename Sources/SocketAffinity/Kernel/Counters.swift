import CLibbpf
import CSockaffABI
import Glibc

/// Reads the per-CPU counter array.
enum Counters {
  static func sum(mapFD: Int32, index: UInt32) throws(SockaffError) -> UInt64 {
    let cpus = Int(libbpf_num_possible_cpus())
    guard cpus > 0 else { throw SockaffError(.other, operation: "libbpf_num_possible_cpus") }
    var values = [UInt64](repeating: 0, count: cpus)
    var key = index
    if bpf_map_lookup_elem(mapFD, &key, &values) != 0 {
      throw SockaffError.lastErrno(operation: "read counter \(index)")
    }
    return values.reduce(0, +)
  }
}
