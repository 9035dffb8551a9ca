import Glibc

/// Which interface holds an address, from getifaddrs in sockaff's own
/// network namespace: the interface a connected socket bound to that
/// address receives on (its replies come back to it).
public enum InterfaceAddresses {
  public static func interface(holding address: [UInt8]) -> String? {
    var first: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&first) == 0 else { return nil }
    defer { freeifaddrs(first) }
    var entry = first
    while let current = entry {
      defer { entry = current.pointee.ifa_next }
      guard let socketAddress = current.pointee.ifa_addr else { continue }
      var bytes: [UInt8]?
      switch Int32(socketAddress.pointee.sa_family) {
      case AF_INET where address.count == 4:
        bytes = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
          var raw = sin.pointee.sin_addr
          return withUnsafeBytes(of: &raw) { Array($0) }
        }
      case AF_INET6 where address.count == 16:
        bytes = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
          var raw = sin6.pointee.sin6_addr
          return withUnsafeBytes(of: &raw) { Array($0) }
        }
      default:
        continue
      }
      if bytes == address { return String(cString: current.pointee.ifa_name) }
    }
    return nil
  }
}
