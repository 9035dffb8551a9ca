import CSockaffAPI
import Glibc
import SocketAffinity

/// `sockaff_query_rss_scalability_info` (include/sockaff.h): whether RSS
/// spreads the socket's interface over several queues.
@_cdecl("sockaff_query_rss_scalability_info")
public func sockaffQueryRSSScalabilityInfo(
  _ fd: Int32, _ out: UnsafeMutableRawPointer?, _ outLength: Int, _ returned: UnsafeMutablePointer<Int>?
) -> Int32 {
  respond(out, outLength, returned) { () -> Result<sockaff_rss_scalability_info, CallerErrno> in
    do throws(SockaffError) {
      var answer = sockaff_rss_scalability_info()
      answer.rss_enabled = try RSSScalability.enabled(socket: fd) ? 1 : 0
      return .success(answer)
    } catch {
      switch error.kind {
      case .notSocket: return .failure(CallerErrno(code: ENOTSOCK))
      case .badFileDescriptor: return .failure(CallerErrno(code: EBADF))
      default: return .failure(CallerErrno(code: error.errno?.rawValue ?? EIO))
      }
    }
  }
}
