import Glibc
import SystemPackage

/// Whether RSS spreads a socket's received packets over several queues:
/// the libsockaff counterpart of SIO_QUERY_RSS_SCALABILITY_INFO. The
/// interface is the one holding the socket's local address; a socket bound
/// to any address (or not bound) asks every interface of its namespace.
public enum RSSScalability {
  public static func enabled(socket fd: Int32) throws(SockaffError) -> Bool {
    var type: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else {
      throw .lastErrno(operation: "getsockopt(fd \(fd), SO_TYPE)")
    }
    var storage = sockaddr_storage()
    var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let named = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
    }
    let local = named == 0 ? SocketAddress.endpoint(storage) : nil
    let candidates: [String]
    if let local, !local.isWildcard, let interface = InterfaceAddresses.interface(holding: local.address) {
      candidates = [interface]
    } else {
      candidates = directoryEntries("/sys/class/net").sorted()
    }
    // The ioctl through the socket itself: its network namespace's interfaces.
    let socket = FileDescriptor(rawValue: fd)
    return candidates.contains { name in
      guard let configuration = try? RSSConfiguration.read(interface: name, through: socket) else { return false }
      return Set(configuration.table).count > 1
    }
  }
}
