import NIOCore

/// "127.0.0.1:9977", "[::1]:9977", "0.0.0.0:80": a numeric address and a port.
/// The address itself is NIO's to parse (`SocketAddress(ipAddress:port:)`,
/// numeric only: "abc" is no address, though every letter of it is a hex
/// digit); only the split at the port's colon is done here.
public struct ListenAddress: Sendable {
  public let address: SocketAddress

  public init?(_ text: String) {
    let host: Substring
    let port: Substring
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
      host = text[text.index(after: text.startIndex)..<close]
      port = text[text.index(close, offsetBy: 2)...]
    } else {
      guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
      host = text[..<colon]
      port = text[text.index(after: colon)...]
    }
    guard let number = Int(port), (0...65535).contains(number),
      let address = try? SocketAddress(ipAddress: String(host), port: number)
    else { return nil }
    self.address = address
  }

  public var port: Int { address.port ?? 0 }

  /// The address as a URL's host: IPv6 in brackets.
  public var hostForURL: String {
    let host = address.ipAddress ?? "?"
    return address.protocol == .inet6 ? "[\(host)]" : host
  }

  /// 127.0.0.0/8 or ::1: reachable from this host only.
  public var isLoopback: Bool {
    guard let host = address.ipAddress else { return false }
    return address.protocol == .inet6 ? host == "::1" : host.hasPrefix("127.")
  }
}
