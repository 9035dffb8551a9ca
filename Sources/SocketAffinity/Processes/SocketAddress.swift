import Glibc

/// Socket addresses as text, the way `ss` shows them.
enum SocketAddress {
  /// "127.0.0.1:80", "[::1]:80"; nil for other families. An IPv4-mapped IPv6
  /// address is shown as IPv6, as the socket sees it.
  static func format(_ storage: sockaddr_storage) -> String? {
    var storage = storage
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    switch Int32(storage.ss_family) {
    case AF_INET:
      return withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
          var address = sin.pointee.sin_addr
          guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return nil }
          return "\(cString(text)):\(UInt16(bigEndian: sin.pointee.sin_port))"
        }
      }
    case AF_INET6:
      return withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
          var address = sin6.pointee.sin6_addr
          guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return nil }
          return "[\(cString(text))]:\(UInt16(bigEndian: sin6.pointee.sin6_port))"
        }
      }
    default:
      return nil
    }
  }
}
