import CSockaffAPI
import Glibc
import SocketAffinity

/// `sockaff_query_rss_processor_info` (include/sockaff.h): the Windows
/// control code's contract on the caller's own socket. The traced answer
/// when the pinned maps can be read, else the kernel's SO_INCOMING_CPU, and
/// for a socket that received nothing yet, RSS's prediction.
@_cdecl("sockaff_query_rss_processor_info")
public func sockaffQueryRSSProcessorInfo(
  _ fd: Int32, _ out: UnsafeMutableRawPointer?, _ outLength: Int, _ returned: UnsafeMutablePointer<Int>?
) -> Int32 {
  respond(out, outLength, returned) { () -> Result<sockaff_processor_affinity, CallerErrno> in
    let topology = Topology.live()
    let query = AffinityQuery(topology: topology)
    /// Nothing received: where RSS will put the socket's packets, if it can say.
    func predicted() -> Int? { (try? query.predict(pid: getpid(), fd: fd))?.cpu }
    let cpu: Int
    do throws(SockaffError) {
      // Our own process: pidfd_getfd on ourselves needs no privilege.
      cpu = try query.query(pid: getpid(), fd: fd).cpu
    } catch {
      switch error.kind {
      case .notSocket: return .failure(CallerErrno(code: ENOTSOCK))
      case .unsupportedSocket: return .failure(CallerErrno(code: EOPNOTSUPP))
      case .badFileDescriptor: return .failure(CallerErrno(code: EBADF))
      case .noPacketsYet:
        guard let prediction = predicted() else { return .failure(CallerErrno(code: ENODATA)) }
        cpu = prediction
      default:
        // No tracer, or not ours to read (its pins are root's): the kernel's answer.
        var incoming: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &incoming, &length) == 0 else {
          return .failure(CallerErrno(code: errno))
        }
        if incoming >= 0 {
          cpu = Int(incoming)
        } else {
          guard let prediction = predicted() else { return .failure(CallerErrno(code: ENODATA)) }
          cpu = prediction
        }
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
