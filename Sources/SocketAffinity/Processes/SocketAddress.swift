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

  /// The sockaddr that getsockname/getpeername would give for `family`'s
  /// address (network order: 4 bytes for IPv4, 16 for IPv6, in 16) and
  /// port (host order).
  static func storage(family: UInt16, address: CensusAddress, port: UInt16) -> sockaddr_storage {
    var storage = sockaddr_storage()
    var bytes = address
    withUnsafeMutableBytes(of: &storage) { target in
      withUnsafeBytes(of: &bytes) { source in
        if Int32(family) == AF_INET {
          var sin = sockaddr_in()
          sin.sin_family = sa_family_t(AF_INET)
          sin.sin_port = port.bigEndian
          withUnsafeMutableBytes(of: &sin.sin_addr) {
            $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<4]))
          }
          withUnsafeBytes(of: &sin) { target.copyMemory(from: $0) }
        } else {
          var sin6 = sockaddr_in6()
          sin6.sin6_family = sa_family_t(AF_INET6)
          sin6.sin6_port = port.bigEndian
          withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyMemory(from: source) }
          withUnsafeBytes(of: &sin6) { target.copyMemory(from: $0) }
        }
      }
    }
    return storage
  }

  /// `struct sockaff_census_socket`'s 16 address bytes, as Swift imports them.
  typealias CensusAddress = (
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
  )

  /// The raw address and port: 4 bytes for IPv4 and for an IPv4-mapped
  /// IPv6 address (a dual-stack socket's IPv4 peers send IPv4 packets), 16
  /// for IPv6; nil for other families.
  static func endpoint(_ storage: sockaddr_storage) -> Endpoint? {
    var storage = storage
    switch Int32(storage.ss_family) {
    case AF_INET:
      return withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
          var address = sin.pointee.sin_addr
          return Endpoint(
            address: withUnsafeBytes(of: &address) { Array($0) }, port: UInt16(bigEndian: sin.pointee.sin_port))
        }
      }
    case AF_INET6:
      return withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
          var address = sin6.pointee.sin6_addr
          let bytes = withUnsafeBytes(of: &address) { Array($0) }
          let mapped = bytes.prefix(10).allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
          return Endpoint(
            address: mapped ? Array(bytes.suffix(4)) : bytes, port: UInt16(bigEndian: sin6.pointee.sin6_port))
        }
      }
    default:
      return nil
    }
  }
}

/// An address in network byte order (4 or 16 bytes) and a port.
public struct Endpoint: Equatable, Sendable {
  public let address: [UInt8]
  public let port: UInt16

  /// The wildcard address (bound to any): no flow to hash yet.
  public var isWildcard: Bool { address.allSatisfy { $0 == 0 } }
}
