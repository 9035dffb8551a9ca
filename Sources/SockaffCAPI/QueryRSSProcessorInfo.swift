import CSockaffAPI
import Glibc
import SocketAffinity

/// `sockaff_query_rss_processor_info` (include/sockaff.h): the Windows
/// control code's contract on the caller's own socket, from the library's one
/// fallback chain (`AffinityQuery.resolve`): the traced answer when the
/// pinned maps can be read, else the kernel's SO_INCOMING_CPU, and for a
/// socket that received nothing yet, RSS's prediction.
@_cdecl("sockaff_query_rss_processor_info")
public func sockaffQueryRSSProcessorInfo(
  _ fd: Int32, _ out: UnsafeMutableRawPointer?, _ outLength: Int, _ returned: UnsafeMutablePointer<Int>?
) -> Int32 {
  respond(out, outLength, returned) { () -> Result<sockaff_processor_affinity, CallerErrno> in
    let topology = Topology.live()
    let cpu: Int
    do throws(SockaffError) {
      // Our own process: pidfd_getfd on ourselves needs no privilege. The
      // library's chain: traced, else the kernel's fields, else predicted.
      guard let resolved = try AffinityQuery(topology: topology).resolve(pid: getpid(), fd: fd).cpu else {
        return .failure(CallerErrno(code: ENODATA))  // a prediction of several candidate CPUs
      }
      cpu = resolved
    } catch {
      switch error.kind {
      case .notSocket: return .failure(CallerErrno(code: ENOTSOCK))
      case .unsupportedSocket: return .failure(CallerErrno(code: EOPNOTSUPP))
      case .badFileDescriptor: return .failure(CallerErrno(code: EBADF))
      // Nothing received, nothing the kernel keeps, nothing to predict.
      case .noPacketsYet, .notAttached, .notPermitted, .incompatiblePins: return .failure(CallerErrno(code: ENODATA))
      default: return .failure(CallerErrno(code: error.errno?.rawValue ?? EIO))
      }
    }
    let processor = topology.processorNumber(ofCPU: cpu) ?? ProcessorNumber(group: 0, number: cpu)
    var answer = sockaff_processor_affinity()
    answer.group = UInt16(clamping: processor.group)
    answer.number = UInt8(clamping: processor.number)
    answer.numa_node_id = UInt16(clamping: topology.node(ofCPU: cpu) ?? 0)
    return .success(answer)
  }
}
