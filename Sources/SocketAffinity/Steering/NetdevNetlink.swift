import CNetlink
import Glibc

/// The kernel's netdev generic netlink family (6.8+ for what is used here),
/// through libnl: which NAPI instance serves an RX queue (queue-get) and
/// which IRQ a NAPI instance runs on (napi-get). The exact mapping, where
/// sysfs and /proc/interrupts only have the drivers' IRQ names to go by.
/// Every call answers nil when the kernel has no such family or command
/// (older kernels: the callers fall back to sysfs) or no such object.
public enum NetdevNetlink {
  // include/uapi/linux/netdev.h (not in the uapi headers of Debian 12).
  static let napiGet: UInt8 = 11  // NETDEV_CMD_NAPI_GET
  static let queueGet: UInt8 = 10  // NETDEV_CMD_QUEUE_GET
  static let napiIfindex: Int32 = 1  // NETDEV_A_NAPI_IFINDEX
  static let napiID: Int32 = 2  // NETDEV_A_NAPI_ID
  static let napiIRQ: Int32 = 3  // NETDEV_A_NAPI_IRQ
  static let napiAttributes: Int32 = 16  // above NETDEV_A_NAPI_MAX of any kernel so far
  static let queueID: Int32 = 1  // NETDEV_A_QUEUE_ID
  static let queueIfindex: Int32 = 2  // NETDEV_A_QUEUE_IFINDEX
  static let queueType: Int32 = 3  // NETDEV_A_QUEUE_TYPE (0: rx)
  static let queueNAPI: Int32 = 4  // NETDEV_A_QUEUE_NAPI_ID
  static let queueAttributes: Int32 = 16

  /// A NAPI instance: its interface and its IRQ (nil: no IRQ, e.g. a
  /// software device's NAPI).
  public struct NAPI: Equatable, Sendable {
    public let ifindex: UInt32
    public let irq: Int?
  }

  public static func napi(id: UInt32) -> NAPI? { Connection()?.napi(id: id) }

  /// The NAPI id serving RX queue `queue` of interface `ifindex`.
  public static func rxQueueNAPI(ifindex: UInt32, queue: UInt32) -> UInt32? {
    Connection()?.rxQueueNAPI(ifindex: ifindex, queue: queue)
  }

  /// napi-get's reply attributes as a NAPI: ifindex is required.
  static func decodeNAPI(_ attributes: [Int32: UInt32]) -> NAPI? {
    guard let ifindex = attributes[napiIfindex] else { return nil }
    return NAPI(ifindex: ifindex, irq: attributes[napiIRQ].map(Int.init))
  }

  /// One generic netlink socket with the family resolved: for many
  /// requests in a row (every queue of an interface). nil when the kernel
  /// has no netdev family.
  public final class Connection {
    private let socket: OpaquePointer
    private let family: Int32

    public init?() {
      guard let socket = nl_socket_alloc() else { return nil }
      guard genl_connect(socket) == 0 else {
        nl_socket_free(socket)
        return nil
      }
      let family = genl_ctrl_resolve(socket, "netdev")
      guard family > 0 else {
        nl_socket_free(socket)
        return nil
      }
      self.socket = socket
      self.family = family
    }

    deinit { nl_socket_free(socket) }

    public func napi(id: UInt32) -> NAPI? {
      request(command: napiGet, attributes: [(napiID, id)], maxAttribute: napiAttributes).flatMap(decodeNAPI)
    }

    public func rxQueueNAPI(ifindex: UInt32, queue: UInt32) -> UInt32? {
      let reply = request(
        command: queueGet, attributes: [(queueIfindex, ifindex), (queueType, 0), (queueID, queue)],
        maxAttribute: queueAttributes)
      return reply?[queueNAPI]
    }

    /// One request, one reply: the reply's u32 attributes (the ones used
    /// here are all u32), or nil on any error (no such command on this
    /// kernel, no such object).
    func request(command: UInt8, attributes: [(Int32, UInt32)], maxAttribute: Int32) -> [Int32: UInt32]? {
      guard let message = nlmsg_alloc() else { return nil }
      defer { nlmsg_free(message) }
      guard genlmsg_put(message, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), family, 0, 0, command, 1) != nil else {
        return nil
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
          reply.attributes = NetdevNetlink.parse(nlmsg_hdr(message), maxAttribute: reply.maxAttribute)
          return Int32(NL_OK.rawValue)
        }, context.toOpaque())
      // The reply, then the kernel's ACK (or its error: ENOENT, EOPNOTSUPP...).
      guard nl_recvmsgs_default(socket) >= 0 else { return nil }
      return reply.attributes
    }
  }

  /// The u32 attributes of one generic netlink message.
  static func parse(_ header: UnsafeMutablePointer<nlmsghdr>?, maxAttribute: Int32) -> [Int32: UInt32]? {
    guard let header else { return nil }
    var table = [UnsafeMutablePointer<nlattr>?](repeating: nil, count: Int(maxAttribute) + 1)
    guard genlmsg_parse(header, 0, &table, maxAttribute, nil) == 0 else { return nil }
    var values: [Int32: UInt32] = [:]
    for (type, attribute) in table.enumerated() {
      guard let attribute, nla_len(attribute) == 4 else { continue }
      values[Int32(type)] = nla_get_u32(attribute)
    }
    return values
  }

  /// Parses a captured message (a fixture): the bytes of one nlmsghdr.
  static func parse(bytes: [UInt8], maxAttribute: Int32) -> [Int32: UInt32]? {
    // libnl trusts nlmsg_len (the socket layer checked it): check it here.
    guard bytes.count >= 20 else { return nil }
    let length = bytes.prefix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
    guard length >= 20, length <= bytes.count else { return nil }
    var copy = bytes
    return copy.withUnsafeMutableBytes { raw in
      parse(raw.baseAddress?.assumingMemoryBound(to: nlmsghdr.self), maxAttribute: maxAttribute)
    }
  }

  fileprivate final class Reply {
    let maxAttribute: Int32
    var attributes: [Int32: UInt32]?
    init(maxAttribute: Int32) { self.maxAttribute = maxAttribute }
  }
}
