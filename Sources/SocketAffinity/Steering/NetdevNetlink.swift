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
  static let napiPID: Int32 = 4  // NETDEV_A_NAPI_PID: the NAPI thread's, under threaded NAPI
  static let napiDeferHardIRQs: Int32 = 5  // NETDEV_A_NAPI_DEFER_HARD_IRQS (u32, ~6.13)
  static let napiGROFlushTimeout: Int32 = 6  // NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT (uint, ns)
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
    /// The kernel thread polling it (threaded NAPI), else nil. Decoded but
    /// not taken (`InterfaceQueues.napiThreads` says why).
    public var threadPID: Int32? = nil
    /// Its own defer-hard-irqs and gro-flush-timeout (ns), where the kernel
    /// keeps them per NAPI.
    public var deferHardIRQs: UInt32? = nil
    public var groFlushTimeout: UInt64? = nil
  }

  public static func napi(id: UInt32) -> NAPI? { Connection()?.napi(id: id) }

  /// The NAPI id serving RX queue `queue` of interface `ifindex`.
  public static func rxQueueNAPI(ifindex: UInt32, queue: UInt32) -> UInt32? {
    Connection()?.rxQueueNAPI(ifindex: ifindex, queue: queue)
  }

  /// napi-get's reply attributes as a NAPI: ifindex is required.
  static func decodeNAPI(_ attributes: GenericNetlink.Attributes) -> NAPI? {
    guard let ifindex = GenericNetlink.u32(attributes[napiIfindex]) else { return nil }
    var napi = NAPI(ifindex: ifindex, irq: GenericNetlink.u32(attributes[napiIRQ]).map(Int.init))
    // Sent only for a NAPI with a thread; a pid of 0 is no thread.
    napi.threadPID = GenericNetlink.u32(attributes[napiPID]).flatMap { $0 > 0 ? Int32(bitPattern: $0) : nil }
    napi.deferHardIRQs = GenericNetlink.u32(attributes[napiDeferHardIRQs])
    napi.groFlushTimeout = GenericNetlink.uint(attributes[napiGROFlushTimeout])
    return napi
  }

  /// One netdev netlink socket, for many requests in a row (every queue of
  /// an interface). nil when the kernel has no netdev family.
  public final class Connection {
    private let netlink: GenericNetlink

    public init?() {
      guard let netlink = GenericNetlink(family: "netdev") else { return nil }
      self.netlink = netlink
    }

    public func napi(id: UInt32) -> NAPI? {
      netlink.request(command: napiGet, attributes: [(napiID, id)], maxAttribute: napiAttributes)
        .flatMap(decodeNAPI)
    }

    public func rxQueueNAPI(ifindex: UInt32, queue: UInt32) -> UInt32? {
      let reply = netlink.request(
        command: queueGet, attributes: [(queueIfindex, ifindex), (queueType, 0), (queueID, queue)],
        maxAttribute: queueAttributes)
      return GenericNetlink.u32(reply?[queueNAPI])
    }
  }
}
