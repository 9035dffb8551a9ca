import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SockaffMetrics
import SocketAffinity
import SystemPackage

/// A small HTTP/1.1 server on SwiftNIO: GET /metrics answers with a fresh
/// snapshot in the Prometheus text format, GET / with a page that links to
/// it. Reading a snapshot makes blocking syscalls, so it runs on a thread
/// pool, not on the event loop.
///
/// With a web config (`WebConfigStore`): TLS on every connection, the rate
/// limit and basic auth on every request (`RequestGate`), its headers on
/// every answer, each from the config as it is now.
///
/// Hardened against the clients it serves, all of which run on its one
/// event loop:
/// - at most `limits.connections` connections; at the cap, a new one takes
///   the place of the connection idle the longest (never one being
///   answered), so idle connections held open by anyone cannot lock the
///   scraper out;
/// - a connection must complete each request within `limits.requestTimeout`
///   of its opening or of its previous answer (a slow or silent client,
///   keep-alive or not, is closed: bytes trickled in do not extend it);
/// - concurrent scrapes share one reading (`ScrapeCoalescer`): eight
///   scrapers cost one scrape's CPU, not eight.
public enum MetricsHTTPServer {
  public struct Limits: Sendable {
    public var connections: Int
    public var requestTimeout: TimeAmount

    public init(connections: Int = 64, requestTimeout: TimeAmount = .seconds(10)) {
      (self.connections, self.requestTimeout) = (connections, requestTimeout)
    }
  }

  /// `render` makes each reading (on the thread pool); `webConfig` nil:
  /// plain HTTP, no authentication.
  public static func run(
    at address: ListenAddress, limits: Limits = Limits(), webConfig: WebConfigStore? = nil, log: Logger,
    render: @escaping @Sendable () throws(SockaffError) -> String, started: (Int) -> Void
  ) throws(SockaffError) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)
    let bcryptPool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    bcryptPool.start()
    defer {
      try? group.syncShutdownGracefully()
      try? pool.syncShutdownGracefully()
      try? bcryptPool.syncShutdownGracefully()
    }
    let loop = group.next()
    let connections = ConnectionTable(limit: limits.connections)
    let coalescer = ScrapeCoalescer(pool: pool, loop: loop, log: log, render: render)
    let gate = RequestGate(pool: bcryptPool)
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(ChannelOptions.backlog, value: 64)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        let handler = MetricsHandler(
          coalescer: coalescer, connections: connections, requestTimeout: limits.requestTimeout,
          webConfig: webConfig, gate: gate)
        do {
          if let webConfig, webConfig.speaksTLS {
            // The handshake with the certificate as it is now; none while
            // the config does not load (logged by the store).
            guard let tls = webConfig.current()?.tls else {
              throw NIOSSLError.failedToLoadCertificate
            }
            try channel.pipeline.syncOperations.addHandler(Self.tlsHandler(tls))
            if let allowed = tls.allowedSANs {
              try channel.pipeline.syncOperations.addHandler(ClientSANCheck(allowed: allowed))
            }
          }
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(handler)
          return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
          return channel.eventLoop.makeFailedFuture(error)
        }
      }
    let channel: Channel
    do {
      channel = try bootstrap.bind(to: address.address).wait()
    } catch {
      // The errno, not NIO's description of the call (which names a Swift
      // function): in use is a conflict of its own, anything else (not an
      // address of this host) the environment's.
      let operation = "listen on \(address.hostForURL):\(address.port)"
      guard let errno = (error as? IOError).map({ Errno(rawValue: $0.errnoCode) }) else {
        throw SockaffError(.environment, operation: operation, hint: "\(type(of: error))")
      }
      if errno == .addressInUse {
        throw SockaffError(.conflict, errno: errno, operation: operation, hint: "another process listens there")
      }
      throw SockaffError(.environment, errno: errno, operation: operation)
    }
    started(channel.localAddress?.port ?? address.port)
    try? channel.closeFuture.wait()
  }

  /// The server side of one connection's TLS. RequestClientCert and
  /// RequireAnyClientCert take any certificate (Go's meaning): NIOSSL's own
  /// check would verify it, so a callback accepts it instead.
  static func tlsHandler(_ tls: WebConfig.TLS) -> NIOSSLServerHandler {
    switch tls.clientAuth {
    case .requestClientCert, .requireAnyClientCert:
      NIOSSLServerHandler(context: tls.context) { _, promise in promise.succeed(.certificateVerified) }
    case .noClientCert, .verifyClientCertIfGiven, .requireAndVerifyClientCert:
      NIOSSLServerHandler(context: tls.context)
    }
  }
}

/// The open connections, oldest idle first; touched on the event loop only.
final class ConnectionTable: @unchecked Sendable {
  private let limit: Int
  /// Connections not being answered, in the order they became idle.
  private var idle: [ObjectIdentifier: (since: NIODeadline, channel: Channel)] = [:]
  private var busy: Set<ObjectIdentifier> = []

  init(limit: Int) { self.limit = limit }

  /// A new connection: admitted, after closing the one idle the longest if
  /// the table is full; refused (false) when every one is being answered.
  func admit(_ channel: Channel) -> Bool {
    if idle.count + busy.count >= limit {
      guard let oldest = idle.min(by: { $0.value.since < $1.value.since }) else { return false }
      idle[oldest.key] = nil
      oldest.value.channel.close(promise: nil)
    }
    idle[ObjectIdentifier(channel)] = (.now(), channel)
    return true
  }

  func answering(_ channel: Channel) {
    let key = ObjectIdentifier(channel)
    if idle.removeValue(forKey: key) != nil { busy.insert(key) }
  }

  func answered(_ channel: Channel) {
    let key = ObjectIdentifier(channel)
    if busy.remove(key) != nil { idle[key] = (.now(), channel) }
  }

  func closed(_ channel: Channel) {
    let key = ObjectIdentifier(channel)
    idle[key] = nil
    busy.remove(key)
  }
}

/// One reading at a time, shared by every scrape that arrives while it is
/// made; touched on the event loop only. The reading carries how long it
/// took and how many readings this server has made and failed, as series
/// of its own.
final class ScrapeCoalescer: @unchecked Sendable {
  private let pool: NIOThreadPool
  private let loop: EventLoop
  private let render: @Sendable () throws(SockaffError) -> String
  private let log: Logger
  private var inFlight: EventLoopFuture<String>?
  private var readings = 0
  private var failures = 0

  init(
    pool: NIOThreadPool, loop: EventLoop, log: Logger, render: @escaping @Sendable () throws(SockaffError) -> String
  ) {
    (self.pool, self.loop, self.log, self.render) = (pool, loop, log, render)
  }

  func reading() -> EventLoopFuture<String> {
    if let inFlight { return inFlight }
    let render = self.render
    readings += 1
    let made = readings
    let reading = pool.runIfActive(eventLoop: loop) { () throws -> (String, Double) in
      let start = SystemClock.nanoseconds(CLOCK_MONOTONIC)
      let text = try render()
      return (text, Double(SystemClock.nanoseconds(CLOCK_MONOTONIC) - start) / 1e9)
    }
    .map { [self] text, seconds in self.withSelfMetrics(text, seconds: seconds, readings: made) }
    inFlight = reading
    reading.whenComplete { [self] result in
      inFlight = nil
      if case .failure(let error) = result {
        failures += 1
        log.error("scrape failed: \(error)", metadata: ["failures": "\(failures)"])
      }
    }
    return reading
  }

  /// The reading's own cost and this server's counts, in name order with the rest.
  private func withSelfMetrics(_ text: String, seconds: Double, readings: Int) -> String {
    PrometheusExposition.merging(
      """
      # HELP sockaff_scrape_duration_seconds How long this reading of the tracer and the host took
      # TYPE sockaff_scrape_duration_seconds gauge
      sockaff_scrape_duration_seconds \(seconds)
      # HELP sockaff_scrape_readings_total Readings this server made (concurrent scrapes share one)
      # TYPE sockaff_scrape_readings_total counter
      sockaff_scrape_readings_total \(readings)
      # HELP sockaff_scrape_errors_total Readings this server failed to make (answered with status 500)
      # TYPE sockaff_scrape_errors_total counter
      sockaff_scrape_errors_total \(failures)

      """, into: text)
  }
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let coalescer: ScrapeCoalescer
  private let connections: ConnectionTable
  private let requestTimeout: TimeAmount
  private let webConfig: WebConfigStore?
  private let gate: RequestGate
  private var request: HTTPRequestHead?
  /// Closes the connection unless a request is complete by then.
  private var deadline: Scheduled<Void>?
  /// The web config's headers, for every answer to the request being answered.
  private var extraHeaders: [(name: String, value: String)] = []

  init(
    coalescer: ScrapeCoalescer, connections: ConnectionTable, requestTimeout: TimeAmount,
    webConfig: WebConfigStore?, gate: RequestGate
  ) {
    (self.coalescer, self.connections, self.requestTimeout) = (coalescer, connections, requestTimeout)
    (self.webConfig, self.gate) = (webConfig, gate)
  }

  func channelActive(context: ChannelHandlerContext) {
    guard connections.admit(context.channel) else { return context.close(promise: nil) }
    armDeadline(context: context)
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    deadline?.cancel()
    connections.closed(context.channel)
    context.fireChannelInactive()
  }

  /// A failed handshake (plain HTTP to TLS, an unknown client CA), a reset:
  /// the connection is done.
  func errorCaught(context: ChannelHandlerContext, error: Error) {
    context.close(promise: nil)
  }

  private func armDeadline(context: ChannelHandlerContext) {
    deadline?.cancel()
    let channel = context.channel
    deadline = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head): request = head
    case .body: break
    case .end:
      guard let head = request else { return }
      request = nil
      deadline?.cancel()
      connections.answering(context.channel)
      admit(head, context: context)
    }
  }

  /// The web config's gate, then the answer.
  private func admit(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
    guard let webConfig else {
      extraHeaders = []
      return respond(to: head, context: context)
    }
    guard let config = webConfig.current() else {
      extraHeaders = []
      return send(
        .internalServerError, "sockaff: the web config does not load; see the server's log\n", head: head,
        context: context)
    }
    extraHeaders = config.headers
    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    gate.verdict(on: head, under: config, loop: context.eventLoop).whenComplete { result in
      let (handler, context) = loopBound.value
      switch result {
      case .success(.admitted): handler.respond(to: head, context: context)
      case .success(.rateLimited): handler.send(.tooManyRequests, "Too Many Requests\n", head: head, context: context)
      case .success(.unauthorized):
        handler.send(
          .unauthorized, "Unauthorized\n", head: head, context: context,
          headers: [("WWW-Authenticate", "Basic realm=\"sockaff\"")])
      case .failure:
        handler.send(.internalServerError, "sockaff: shutting down\n", head: head, context: context)
      }
    }
  }

  private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
    guard head.method == .GET || head.method == .HEAD else {
      return send(.methodNotAllowed, "only GET\n", head: head, context: context)
    }
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    if path == "/" {
      return send(.ok, Self.landingPage, head: head, context: context, type: "text/html; charset=utf-8")
    }
    guard path == "/metrics" else {
      return send(.notFound, "sockaff: metrics are at /metrics\n", head: head, context: context)
    }
    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    coalescer.reading().whenComplete { result in
      let (handler, context) = loopBound.value
      switch result {
      case .success(let text):
        handler.send(.ok, text, head: head, context: context, type: "text/plain; version=0.0.4; charset=utf-8")
      case .failure(let error):
        handler.send(.internalServerError, "sockaff: \(error)\n", head: head, context: context)
      }
    }
  }

  private func send(
    _ status: HTTPResponseStatus, _ body: String, head: HTTPRequestHead, context: ChannelHandlerContext,
    type: String = "text/plain; charset=utf-8", headers extra: [(String, String)] = []
  ) {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: type)
    headers.add(contentsOf: extra + extraHeaders)
    headers.add(name: "Content-Length", value: "\(body.utf8.count)")
    let keepAlive = head.isKeepAlive
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
    if head.method != .HEAD {
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
    }
    let channel = context.channel
    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
      let (handler, context) = loopBound.value
      handler.connections.answered(channel)
      if keepAlive { handler.armDeadline(context: context) } else { channel.close(promise: nil) }
    }
  }

  /// What a browser pointed at the exporter sees.
  static let landingPage = """
    <!DOCTYPE html>
    <html lang="en">
    <head><meta charset="utf-8"><title>sockaff exporter</title></head>
    <body>
    <h1>sockaff exporter</h1>
    <p>Which CPU, RX queue, IRQ and NUMA node receive each socket's packets, and where they are read.</p>
    <ul><li><a href="/metrics">Metrics</a></li></ul>
    </body>
    </html>

    """
}
