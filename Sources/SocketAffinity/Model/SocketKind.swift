import Glibc

/// The sockets sockaff traces: TCP and UDP over IPv4 and IPv6. Everything
/// else (unix, netlink, packet, raw, SCTP, MPTCP) is EOPNOTSUPP, like
/// WSAEOPNOTSUPP from the Windows control code.
public struct SocketKind: Equatable, Sendable {
  public enum Family: String, Sendable, Codable { case inet, inet6 }
  public enum TransportProtocol: String, Sendable, Codable { case tcp, udp }

  public let family: Family
  public let transport: TransportProtocol

  public init(family: Family, transport: TransportProtocol) {
    self.family = family
    self.transport = transport
  }

  /// Classifies SO_DOMAIN / SO_TYPE / SO_PROTOCOL values; on failure, says what
  /// the socket is instead.
  public static func classify(domain: Int32, type: Int32, protocol proto: Int32) -> Result<
    SocketKind, UnsupportedSocket
  > {
    let family: Family? =
      switch domain {
      case AF_INET: .inet
      case AF_INET6: .inet6
      default: nil
      }
    let transport: TransportProtocol? =
      switch (type, proto) {
      case (Int32(SOCK_STREAM.rawValue), Int32(IPPROTO_TCP)): .tcp
      case (Int32(SOCK_DGRAM.rawValue), Int32(IPPROTO_UDP)): .udp
      default: nil
      }
    guard let family, let transport else {
      return .failure(UnsupportedSocket(description: describe(domain: domain, type: type, protocol: proto)))
    }
    return .success(SocketKind(family: family, transport: transport))
  }

  public struct UnsupportedSocket: Error, Equatable {
    public let description: String
  }

  static func describe(domain: Int32, type: Int32, protocol proto: Int32) -> String {
    let familyName =
      switch domain {
      case AF_UNIX: "unix"
      case AF_INET: "inet"
      case AF_INET6: "inet6"
      case AF_NETLINK: "netlink"
      case AF_PACKET: "packet"
      default: "family \(domain)"
      }
    let typeName =
      switch type {
      case Int32(SOCK_STREAM.rawValue): "stream"
      case Int32(SOCK_DGRAM.rawValue): "datagram"
      case Int32(SOCK_RAW.rawValue): "raw"
      case Int32(SOCK_SEQPACKET.rawValue): "seqpacket"
      default: "type \(type)"
      }
    let protocolName =
      (domain == AF_INET || domain == AF_INET6) && proto != 0 ? " protocol \(proto)" : ""
    return "\(familyName) \(typeName)\(protocolName) socket"
  }
}
