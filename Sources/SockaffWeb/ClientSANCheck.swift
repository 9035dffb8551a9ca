import Glibc
import NIOCore
import NIOSSL
import NIOTLS

/// `client_allowed_sans`: once the TLS handshake is done, the client's
/// certificate must name one of the allowed subject alternative names, or
/// the connection is closed before any request is read. Go's toolkit fails
/// the handshake itself (VerifyPeerCertificate); NIOSSL's custom
/// verification would replace its chain check rather than add to it, so the
/// names are checked right after it, and nothing the client sends before
/// the check passes reaches the HTTP decoder.
final class ClientSANCheck: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  private let allowed: Set<String>
  private var passed = false

  init(allowed: [String]) { self.allowed = Set(allowed) }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted = event {
      let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate
      if let certificate, !allowed.isDisjoint(with: Self.names(of: certificate)) {
        passed = true
      } else {
        context.close(promise: nil)
        return
      }
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard passed else { return }  // before the check, or after it failed: dropped
    context.fireChannelRead(data)
  }

  /// Every subject alternative name of `certificate` as the toolkit writes
  /// it: DNS names, emails and URIs as they are, IP addresses as text.
  static func names(of certificate: NIOSSLCertificate) -> [String] {
    certificate._subjectAlternativeNames().compactMap { name -> String? in
      let bytes = name.contents.withUnsafeBufferPointer { Array($0) }
      switch name.nameType {
      case .dnsName, .email, .uri: return String(decoding: bytes, as: UTF8.self)
      case .ipAddress: return ipAddress(bytes)
      default: return nil
      }
    }
  }

  /// 4 or 16 bytes as inet_ntop writes them (Go's net.IP.String for both).
  static func ipAddress(_ bytes: [UInt8]) -> String? {
    guard bytes.count == 4 || bytes.count == 16 else { return nil }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = bytes.count == 4 ? AF_INET : AF_INET6
    let written = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
    guard written != nil else { return nil }
    return String(decoding: text.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
  }
}
