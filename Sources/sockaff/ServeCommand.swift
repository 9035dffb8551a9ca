import ArgumentParser
import Glibc
import SockaffMetrics
import SocketAffinity

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve Prometheus metrics over HTTP at /metrics.",
    discussion: paragraphs(
      """
      Each scrape reads the tracer and the host's sockets afresh. Listens on loopback
      unless told otherwise; put a reverse proxy or a firewall rule in front before
      binding to another address. Stops on SIGINT or SIGTERM.
      """))

  @Option(help: ArgumentHelp("Address and port to listen on (port 0: any free port).", valueName: "address:port"))
  var listen = "127.0.0.1:9977"

  @OptionGroup var scrape: ScrapeOptions

  func validate() throws {
    guard ListenAddress(listen) != nil else {
      throw ValidationError("--listen takes ADDRESS:PORT, e.g. 127.0.0.1:9977 or [::1]:9977, not '\(listen)'")
    }
  }

  func run() throws {
    try reporting {
      let address = ListenAddress(listen)!  // validate() accepted it
      try MetricsHTTPServer.run(at: address, render: try scrape.renderer()) { port in
        print("sockaff: serving http://\(address.hostForURL):\(port)/metrics")
        fflush(nil)  // a pipe (a service manager, a test) gets the line now
      }
    }
  }
}
