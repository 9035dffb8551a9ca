import NIOCore
import NIOHTTP1
import NIOPosix
import SocketAffinity

/// What every request passes before it is answered, in the exporter
/// toolkit's order: the rate limit (429), then basic auth (401). bcrypt is
/// slow by design, so it runs on a thread of its own, never on the event
/// loop nor on the scrape's; a verdict is remembered so that a scraper's
/// every request does not pay it again. Touched on the event loop only.
final class RequestGate: @unchecked Sendable {
  enum Verdict {
    case admitted
    case rateLimited
    case unauthorized
  }

  private let pool: NIOThreadPool
  private let limiter = RequestRateLimiter()
  private let cache = CredentialCache()

  init(pool: NIOThreadPool) { self.pool = pool }

  func verdict(on head: HTTPRequestHead, under config: WebConfig, loop: EventLoop) -> EventLoopFuture<Verdict> {
    let now = Double(SystemClock.nanoseconds(CLOCK_MONOTONIC)) / 1e9
    guard limiter.admit(under: config.rateLimit, now: now) else { return loop.makeSucceededFuture(.rateLimited) }
    guard !config.users.isEmpty else { return loop.makeSucceededFuture(.admitted) }
    guard let header = head.headers.first(name: "Authorization"), let credentials = BasicCredentials(header: header)
    else { return loop.makeSucceededFuture(.unauthorized) }
    let known = config.users[credentials.user]
    // An unknown user is hashed against a decoy, so that names cannot be
    // told from passwords by the answer's time.
    let hash = known ?? Bcrypt.decoy(like: config.users.values.min())
    if let verdict = cache.verdict(credentials, hash: hash) {
      return loop.makeSucceededFuture(verdict && known != nil ? .admitted : .unauthorized)
    }
    let cache = self.cache
    return pool.runIfActive(eventLoop: loop) { Bcrypt.matches(password: credentials.password, hash: hash) }
      .map { matches in
        cache.remember(credentials, hash: hash, matches)
        return matches && known != nil ? .admitted : .unauthorized
      }
  }
}
