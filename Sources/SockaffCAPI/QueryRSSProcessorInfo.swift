import CSockaffAPI
import Glibc
import SocketAffinity

/// `sockaff_query_rss_processor_info` (include/sockaff.h): the Windows
/// control code's contract on the caller's own socket. The traced answer
/// when the pinned maps can be read, else the kernel's SO_INCOMING_CPU.
@_cdecl("sockaff_query_rss_processor_info")
public func sockaffQueryRSSProcessorInfo(
  _ fd: Int32, _ out: UnsafeMutableRawPointer?, _ outLength: Int, _ returned: UnsafeMutablePointer<Int>?
) -> Int32 {
  let savedErrno = errno
  let required = MemoryLayout<sockaff_processor_affinity>.size
  returned?.pointee = required
  guard let out, outLength >= required else { return fail(EINVAL) }

  let topology = Topology.live()
  let query = AffinityQuery(topology: topology)
  /// Nothing received: where RSS will put the socket's packets, if it can say.
  func predicted() -> Int? { (try? query.predict(pid: getpid(), fd: fd))?.cpu }
  let cpu: Int
  do {
    // Our own process: pidfd_getfd on ourselves needs no privilege.
    cpu = try query.query(pid: getpid(), fd: fd).cpu
  } catch {
    switch error.kind {
    case .notSocket: return fail(ENOTSOCK)
    case .unsupportedSocket: return fail(EOPNOTSUPP)
    case .badFileDescriptor: return fail(EBADF)
    case .noPacketsYet:
      guard let prediction = predicted() else { return fail(ENODATA) }
      cpu = prediction
    default:
      // No tracer, or not ours to read (its pins are root's): the kernel's answer.
      var incoming: Int32 = -1
      var length = socklen_t(MemoryLayout<Int32>.size)
      guard getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &incoming, &length) == 0 else { return fail(errno) }
      if incoming >= 0 {
        cpu = Int(incoming)
      } else {
        guard let prediction = predicted() else { return fail(ENODATA) }
        cpu = prediction
      }
    }
  }
  let processor = topology.processorNumber(ofCPU: cpu) ?? ProcessorNumber(group: 0, number: cpu)
  var answer = sockaff_processor_affinity()
  answer.group = UInt16(clamping: processor.group)
  answer.number = UInt8(clamping: processor.number)
  answer.numa_node_id = UInt16(clamping: topology.node(ofCPU: cpu) ?? 0)
  out.storeBytes(of: answer, as: sockaff_processor_affinity.self)
  errno = savedErrno  // success leaves the caller's errno as it was
  return 0
}

private func fail(_ code: Int32) -> Int32 {
  errno = code
  return -1
}

/// `sockaff_query_rss_scalability_info` (include/sockaff.h): whether RSS
/// spreads the socket's interface over several queues.
@_cdecl("sockaff_query_rss_scalability_info")
public func sockaffQueryRSSScalabilityInfo(
  _ fd: Int32, _ out: UnsafeMutableRawPointer?, _ outLength: Int, _ returned: UnsafeMutablePointer<Int>?
) -> Int32 {
  let savedErrno = errno
  let required = MemoryLayout<sockaff_rss_scalability_info>.size
  returned?.pointee = required
  guard let out, outLength >= required else { return fail(EINVAL) }
  let enabled: Bool
  do {
    enabled = try RSSScalability.enabled(socket: fd)
  } catch {
    switch error.kind {
    case .notSocket: return fail(ENOTSOCK)
    case .badFileDescriptor: return fail(EBADF)
    default: return fail(error.errno?.rawValue ?? EIO)
    }
  }
  var answer = sockaff_rss_scalability_info()
  answer.rss_enabled = enabled ? 1 : 0
  out.storeBytes(of: answer, as: sockaff_rss_scalability_info.self)
  errno = savedErrno
  return 0
}
