import ArgumentParser
import Glibc
import Logging
import SockaffMetrics
import SocketAffinity

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve Prometheus metrics over HTTP at /metrics.",
    discussion: paragraphs(
      """
      Each scrape reads the tracer and the host's sockets afresh; scrapes that arrive
      while a reading is made share it. Listens on loopback unless told otherwise; put a
      reverse proxy or a firewall rule in front before binding to another address.

      At most --max-connections connections are held: at the cap, a new one takes the
      place of the one idle the longest. Each connection must complete a request within
      --request-timeout seconds of opening or of its previous answer, or it is closed.
      Stops on SIGINT or SIGTERM.
      """))

  @Option(
    name: [.customLong("listen"), .customLong("web.listen-address")],
    help: ArgumentHelp(
      "Address and port to listen on (port 0: any free port); --web.listen-address as node_exporter spells it.",
      valueName: "address:port"))
  var listen = "127.0.0.1:9977"

  @Option(name: .customLong("max-connections"), help: "Connections held open at most (1 to 4096).")
  var maxConnections = 64

  @Option(
    name: .customLong("request-timeout"), parsing: .unconditional,
    help: ArgumentHelp("Seconds a connection has to complete each request (0.1 to 600).", valueName: "seconds"))
  var requestTimeout = 10.0

  @OptionGroup var scrape: ScrapeOptions

  func validate() throws {
    guard (1...4096).contains(maxConnections) else {
      throw ValidationError("--max-connections takes 1 to 4096, not \(maxConnections)")
    }
    guard (0.1...600).contains(requestTimeout) else {
      throw ValidationError("--request-timeout takes 0.1 to 600 seconds, not \(requestTimeout)")
    }
    guard ListenAddress(listen) != nil else {
      throw ValidationError("--listen takes ADDRESS:PORT, e.g. 127.0.0.1:9977 or [::1]:9977, not '\(listen)'")
    }
  }

  func run() throws {
    try reporting {
      let address = ListenAddress(listen)!  // validate() accepted it
      let limits = MetricsHTTPServer.Limits(
        connections: maxConnections, requestTimeout: .nanoseconds(Int64(requestTimeout * 1e9)))
      let log = Self.logger
      try MetricsHTTPServer.run(at: address, limits: limits, log: log, render: try scrape.renderer()) { port in
        print("sockaff: serving http://\(address.hostForURL):\(port)/metrics")
        fflush(nil)  // a pipe (a service manager, a test) gets the line now
        log.info(
          "serving",
          metadata: [
            "url": "http://\(address.hostForURL):\(port)/metrics", "max_connections": "\(maxConnections)",
            "request_timeout_seconds": "\(requestTimeout)",
          ])
        // What this kernel makes the scrapes do without, said once at start.
        for feature in KernelFeatures.probe() where feature.state != .yes {
          log.warning("\(feature.lossDescription)", metadata: ["capability": "\(feature.name)"])
        }
      }
    }
  }

  /// serve's log, on stderr (the journal under systemd); bootstrapped once.
  static let logger: Logger = {
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    return Logger(label: "sockaff.serve")
  }()
}
