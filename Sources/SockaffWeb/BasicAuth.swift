import CCrypt
import Foundation
import Glibc

/// bcrypt through libcrypt (libxcrypt, glibc's crypt on Debian): the hash
/// of the web config's `basic_auth_users`, as `htpasswd -B` writes it.
enum Bcrypt {
  /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost, 53 characters of salt and hash.
  static func isHash(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
      [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
      bytes[6] == UInt8(ascii: "$"), let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)),
      (4...31).contains(cost)
    else { return false }
    return true
  }

  /// Whether `password` hashes to `hash`; compared in constant time. Slow
  /// by design (cost 10: ~70 ms): never on the event loop.
  static func matches(password: String, hash: String) -> Bool {
    // crypt_rn's work area: 32 KiB, zeroed before use, one per call (thread-safe).
    let size = MemoryLayout<crypt_data>.size
    let data = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: MemoryLayout<crypt_data>.alignment)
    defer { data.deallocate() }
    memset(data, 0, size)
    guard let result = crypt_rn(password, hash, data, Int32(size)) else { return false }
    let computed = Array(String(cString: result).utf8)
    let expected = Array(hash.utf8)
    guard computed.count == expected.count else { return false }
    var difference: UInt8 = 0
    for index in computed.indices { difference |= computed[index] ^ expected[index] }
    return difference == 0
  }

  /// Hashed in place of an unknown user's, so that a wrong name costs what
  /// a wrong password does (no user list by timing): at `like`'s cost.
  static func decoy(like hash: String?) -> String {
    let cost = hash.map { String(Array($0)[4..<6]) } ?? "10"
    return "$2y$\(cost)$" + String(repeating: "sockaffdecoyhashsockaff", count: 3).prefix(53)
  }
}

/// An `Authorization: Basic` header's user and password, or nil.
struct BasicCredentials: Hashable {
  let user: String
  let password: String

  init?(header: String) {
    let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard parts.count == 2, parts[0].lowercased() == "basic",
      let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
      let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
    else { return nil }
    user = String(text[..<colon])
    password = String(text[text.index(after: colon)...])
  }
}

/// Verdicts on credentials already checked, so that a scraper's every
/// request does not pay bcrypt again (the toolkit caches them too). Keyed
/// by the hash checked against, so a changed password is checked afresh;
/// bounded: emptied when full. Touched on the event loop only.
final class CredentialCache: @unchecked Sendable {
  private struct Key: Hashable {
    let credentials: BasicCredentials
    let hash: String
  }
  private var verdicts: [Key: Bool] = [:]
  private let limit: Int

  init(limit: Int = 1024) { self.limit = limit }

  func verdict(_ credentials: BasicCredentials, hash: String) -> Bool? {
    verdicts[Key(credentials: credentials, hash: hash)]
  }

  func remember(_ credentials: BasicCredentials, hash: String, _ verdict: Bool) {
    if verdicts.count >= limit { verdicts.removeAll(keepingCapacity: true) }
    verdicts[Key(credentials: credentials, hash: hash)] = verdict
  }
}

/// The web config's `rate_limit`: a token bucket over every request, as
/// Go's rate.Limiter the toolkit uses. Touched on the event loop only.
final class RequestRateLimiter: @unchecked Sendable {
  private var limit: WebConfig.RateLimit?
  private var tokens = 0.0
  private var last = 0.0

  /// Whether a request now may be answered under `limit` (nil: no limit).
  func admit(under limit: WebConfig.RateLimit?, now: Double) -> Bool {
    guard let limit else { return true }
    if limit != self.limit {
      // A new limit (a re-read file) starts with a full bucket.
      self.limit = limit
      (tokens, last) = (Double(limit.burst), now)
    }
    tokens = min(Double(limit.burst), tokens + (now - last) / limit.interval)
    last = now
    guard tokens >= 1 else { return false }
    tokens -= 1
    return true
  }
}
