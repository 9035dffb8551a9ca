import Glibc

/// Which interface holds an address, from getifaddrs in sockaff's own
/// network namespace: the interface a connected socket bound to that
/// address receives on (its replies come back to it).
public enum InterfaceAddresses {
  /// `address` as `Endpoint` has it: 4 bytes for IPv4, 16 for IPv6.
  public static func interface(holding address: [UInt8]) -> String? {
    var first: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&first) == 0 else { return nil }
    defer { freeifaddrs(first) }
    var entry = first
    while let current = entry {
      defer { entry = current.pointee.ifa_next }
      guard let socketAddress = current.pointee.ifa_addr else { continue }
      let length =
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET: MemoryLayout<sockaddr_in>.size
        case AF_INET6: MemoryLayout<sockaddr_in6>.size
        default: 0
        }
      guard length > 0 else { continue }
      var storage = sockaddr_storage()
      withUnsafeMutableBytes(of: &storage) {
        $0.copyMemory(from: UnsafeRawBufferPointer(start: socketAddress, count: length))
      }
      if SocketAddress.endpoint(storage)?.address == address { return String(cString: current.pointee.ifa_name) }
    }
    return nil
  }
}
