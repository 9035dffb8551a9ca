import CNetlink
import Glibc

/// One generic netlink socket to one kernel family, through libnl: a
/// request with u32 attributes (and one nest of them, for ethtool's
/// request header), one reply, its attributes' payloads. nil when the
/// kernel has no such family; each request answers nil on any error (no
/// such command on this kernel, no such object).
final class GenericNetlink {
  /// Attribute payloads by type: the bytes after each attribute's header.
  typealias Attributes = [Int32: [UInt8]]

  private let socket: OpaquePointer
  private let family: Int32

  init?(family name: String) {
    guard let socket = nl_socket_alloc() else { return nil }
    guard genl_connect(socket) == 0 else {
      nl_socket_free(socket)
      return nil
    }
    let family = genl_ctrl_resolve(socket, name)
    guard family > 0 else {
      nl_socket_free(socket)
      return nil
    }
    self.socket = socket
    self.family = family
  }

  deinit { nl_socket_free(socket) }

  /// `attributes` are u32s; `nest`, if given, is one nested attribute of
  /// u32s (its type, then its members).
  func request(
    command: UInt8, attributes: [(Int32, UInt32)] = [], nest: (Int32, [(Int32, UInt32)])? = nil,
    maxAttribute: Int32
  ) -> Attributes? {
    guard let message = nlmsg_alloc() else { return nil }
    defer { nlmsg_free(message) }
    guard genlmsg_put(message, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), family, 0, 0, command, 1) != nil else {
      return nil
    }
    if let (type, members) = nest {
      guard let start = nla_nest_start(message, type) else { return nil }
      for (member, value) in members where nla_put_u32(message, member, value) != 0 { return nil }
      nla_nest_end(message, start)
    }
    for (type, value) in attributes where nla_put_u32(message, type, value) != 0 { return nil }
    guard nl_send_auto(socket, message) >= 0 else { return nil }
    let reply = Reply(maxAttribute: maxAttribute)
    let context = Unmanaged.passRetained(reply)
    defer { context.release() }
    nl_socket_modify_cb(
      socket, NL_CB_VALID, NL_CB_CUSTOM,
      { message, argument in
        guard let message, let argument else { return Int32(NL_SKIP.rawValue) }
        let reply = Unmanaged<Reply>.fromOpaque(argument).takeUnretainedValue()
        reply.attributes = GenericNetlink.parse(nlmsg_hdr(message), maxAttribute: reply.maxAttribute)
        return Int32(NL_OK.rawValue)
      }, context.toOpaque())
    // The reply, then the kernel's ACK (or its error: ENOENT, EOPNOTSUPP...).
    guard nl_recvmsgs_default(socket) >= 0 else { return nil }
    return reply.attributes
  }

  /// The attributes of one generic netlink message.
  static func parse(_ header: UnsafeMutablePointer<nlmsghdr>?, maxAttribute: Int32) -> Attributes? {
    guard let header else { return nil }
    var table = [UnsafeMutablePointer<nlattr>?](repeating: nil, count: Int(maxAttribute) + 1)
    guard genlmsg_parse(header, 0, &table, maxAttribute, nil) == 0 else { return nil }
    var values: Attributes = [:]
    for (type, attribute) in table.enumerated() {
      guard let attribute, let data = nla_data(attribute) else { continue }
      values[Int32(type)] = Array(UnsafeRawBufferPointer(start: data, count: Int(nla_len(attribute))))
    }
    return values
  }

  /// Parses a captured message (a fixture): the bytes of one nlmsghdr.
  static func parse(bytes: [UInt8], maxAttribute: Int32) -> Attributes? {
    // libnl trusts nlmsg_len (the socket layer checked it): check it here.
    guard bytes.count >= 20 else { return nil }
    let length = bytes.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
    guard length >= 20, length <= bytes.count else { return nil }
    var copy = bytes
    return copy.withUnsafeMutableBytes { raw in
      parse(raw.baseAddress?.assumingMemoryBound(to: nlmsghdr.self), maxAttribute: maxAttribute)
    }
  }

  /// A u32 attribute's value (host order, as the kernel writes it).
  static func u32(_ payload: [UInt8]?) -> UInt32? {
    guard let payload, payload.count == 4 else { return nil }
    return payload.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
  }

  /// A "uint" attribute: 4 or 8 bytes, as the kernel chose for the value.
  static func uint(_ payload: [UInt8]?) -> UInt64? {
    guard let payload else { return nil }
    switch payload.count {
    case 4: return payload.withUnsafeBytes { UInt64($0.loadUnaligned(as: UInt32.self)) }
    case 8: return payload.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    default: return nil
    }
  }

  /// A binary attribute of u32s (an indirection table).
  static func u32s(_ payload: [UInt8]?) -> [UInt32]? {
    guard let payload, payload.count % 4 == 0 else { return nil }
    return payload.withUnsafeBytes { raw in
      (0..<payload.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) }
    }
  }

  private final class Reply {
    let maxAttribute: Int32
    var attributes: Attributes?
    init(maxAttribute: Int32) { self.maxAttribute = maxAttribute }
  }
}
