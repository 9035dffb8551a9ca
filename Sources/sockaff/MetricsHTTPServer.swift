import NIOCore
import NIOHTTP1
import NIOPosix
import SockaffMetrics
import SocketAffinity
import SystemPackage

/// A small HTTP/1.1 server on SwiftNIO: GET /metrics answers with a fresh
/// snapshot in the Prometheus text format. Reading a snapshot makes
/// blocking syscalls, so it runs on a thread pool, not on the event loop.
enum MetricsHTTPServer {
  /// `render` makes each scrape's answer (on the thread pool).
  static func run(
    at address: ListenAddress, render: @escaping @Sendable () throws(SockaffError) -> String, started: (Int) -> Void
  ) throws(SockaffError) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    defer {
      try? group.syncShutdownGracefully()
      try? pool.syncShutdownGracefully()
    }
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(ChannelOptions.backlog, value: 64)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline().flatMap {
          channel.pipeline.addHandler(MetricsHandler(pool: pool, render: render))
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
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let pool: NIOThreadPool
  private let render: @Sendable () throws(SockaffError) -> String
  private var request: HTTPRequestHead?

  init(pool: NIOThreadPool, render: @escaping @Sendable () throws(SockaffError) -> String) {
    self.pool = pool
    self.render = render
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head): request = head
    case .body: break
    case .end:
      guard let head = request else { return }
      request = nil
      respond(to: head, context: context)
    }
  }

  private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
    guard head.method == .GET || head.method == .HEAD else {
      return send(.methodNotAllowed, "only GET\n", head: head, context: context)
    }
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    guard path == "/metrics" else {
      return send(.notFound, "sockaff: metrics are at /metrics\n", head: head, context: context)
    }
    let render = self.render
    let rendered = pool.runIfActive(eventLoop: context.eventLoop) { () throws -> String in try render() }
    let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    rendered.whenComplete { result in
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
    type: String = "text/plain; charset=utf-8"
  ) {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: type)
    headers.add(name: "Content-Length", value: "\(body.utf8.count)")
    let keepAlive = head.isKeepAlive
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    context.write(
      wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
    if head.method != .HEAD {
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
    }
    let channel = context.channel
    context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
      if !keepAlive { channel.close(promise: nil) }
    }
  }
}
