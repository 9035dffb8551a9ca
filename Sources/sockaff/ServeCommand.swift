import ArgumentParser
import Glibc
import Logging
import SockaffMetrics
import SockaffWeb
import SocketAffinity

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve Prometheus metrics over HTTP at /metrics.",
    discussion: paragraphs(
      """
      Each scrape reads the tracer and the host's sockets afresh; scrapes that arrive
      while a reading is made share it. Listens on loopback unless told otherwise; GET /
      answers with a page that links to /metrics.

      --web.config.file takes the Prometheus exporter toolkit's file, as node_exporter
      does: tls_server_config (cert_file, key_file, client_auth_type, client_ca_file,
      min_version, ...), basic_auth_users (bcrypt hashes), http_server_config.headers
      and rate_limit. A file that does not load is refused at start (exit 22). The file
      and the files it names are checked on every connection and request, and read
      again when they change; while a change does not load, requests are refused and
      the log says why. Give one before binding to another address than loopback, and
      above all with --per-socket-series: those series name processes and their sockets.

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

  @Option(
    name: .customLong("web.config.file"),
    help: ArgumentHelp("The exporter toolkit's web config: TLS, basic auth, headers.", valueName: "file"))
  var webConfigFile: String?

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
      let webConfig = try webConfigFile.map { path throws(SockaffError) in
        do {
          return try WebConfigStore(path: path, log: log)
        } catch {
          throw SockaffError(.badWebConfig, operation: "web config \(path)", hint: "\(error)")
        }
      }
      let scheme = webConfig?.speaksTLS == true ? "https" : "http"
      let render = try scrape.renderer()
      try MetricsHTTPServer.run(at: address, limits: limits, webConfig: webConfig, log: log, render: render) { port in
        let url = "\(scheme)://\(address.hostForURL):\(port)/metrics"
        print("sockaff: serving \(url)")
        fflush(nil)  // a pipe (a service manager, a test) gets the line now
        let config = webConfig?.current()
        log.info(
          "serving",
          metadata: [
            "url": "\(url)", "max_connections": "\(maxConnections)", "request_timeout_seconds": "\(requestTimeout)",
            "web_config": "\(webConfigFile ?? "none")",
            "client_auth": "\(config?.tls?.clientAuth.rawValue ?? "none")",
            "basic_auth_users": "\(config?.users.count ?? 0)",
          ])
        if webConfig == nil, !address.isLoopback {
          log.warning(
            "serving every process's sockets without TLS or authentication on a non-loopback address; give --web.config.file"
          )
        }
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
