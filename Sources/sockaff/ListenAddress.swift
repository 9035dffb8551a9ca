import Glibc

/// "127.0.0.1:9977", "[::1]:9977", "0.0.0.0:80": a numeric address and a port.
struct ListenAddress: Equatable {
  let host: String
  let port: Int

  init?(_ text: String) {
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
    // A numeric address, as the kernel will parse it ("abc" is not one,
    // though every letter of it is a hex digit).
    var parsed = in6_addr()
    let family = host.contains(":") ? AF_INET6 : AF_INET
    guard let number = Int(port), (0...65535).contains(number), inet_pton(family, String(host), &parsed) == 1
    else { return nil }
    self.host = String(host)
    self.port = number
  }

  func host(forURL: Bool) -> String { forURL && host.contains(":") ? "[\(host)]" : host }
}
