import ArgumentParser
import Glibc
import SockaffMetrics

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve Prometheus metrics over HTTP at /metrics.",
    discussion: """
      Each scrape reads the tracer and the host's sockets afresh. Listens on loopback
      unless told otherwise; put a reverse proxy or a firewall rule in front before
      binding to another address. Stops on SIGINT or SIGTERM.
      """)

  @Option(help: ArgumentHelp("Address and port to listen on (port 0: any free port).", valueName: "address:port"))
  var listen = "127.0.0.1:9977"

  @Option(help: "Per-socket series for at most this many sockets (the busiest).")
  var top = 100

  func validate() throws {
    guard (0...100_000).contains(top) else { throw ValidationError("--top takes 0 to 100000") }
    guard ListenAddress(listen) != nil else {
      throw ValidationError("--listen takes ADDRESS:PORT, e.g. 127.0.0.1:9977 or [::1]:9977, not '\(listen)'")
    }
  }

  func run() throws {
    try reporting {
      let address = ListenAddress(listen)!  // validate() accepted it
      try MetricsHTTPServer.run(at: address, top: top) { port in
        print("sockaff: serving http://\(address.host(forURL: true)):\(port)/metrics")
        fflush(nil)  // a pipe (a service manager, a test) gets the line now
      }
    }
  }
}

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
    guard !host.isEmpty, let number = Int(port), (0...65535).contains(number),
      host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" })
    else { return nil }
    self.host = String(host)
    self.port = number
  }

  func host(forURL: Bool) -> String { forURL && host.contains(":") ? "[\(host)]" : host }
}
