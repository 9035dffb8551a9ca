import Glibc

/// The kernel's ethtool generic netlink family: an interface's RSS
/// configuration (ETHTOOL_MSG_RSS_GET, 6.3+), the newer way to what
/// `ETHTOOL_GRSSH` answers. nil when the kernel has no such message (the
/// caller falls back to the ioctl) or no such interface. Asks sockaff's own
/// network namespace.
public enum EthtoolNetlink {
  // include/uapi/linux/ethtool_netlink.h (RSS_GET is newer than Debian 12's headers).
  static let rssGet: UInt8 = 38  // ETHTOOL_MSG_RSS_GET
  static let rssHeader: Int32 = 1  // ETHTOOL_A_RSS_HEADER (nested)
  static let headerDeviceIndex: Int32 = 1  // ETHTOOL_A_HEADER_DEV_INDEX
  static let rssFunction: Int32 = 3  // ETHTOOL_A_RSS_HFUNC (u32)
  static let rssTable: Int32 = 4  // ETHTOOL_A_RSS_INDIR (u32 array)
  static let rssKey: Int32 = 5  // ETHTOOL_A_RSS_HKEY (bytes)
  static let rssInputTransform: Int32 = 6  // ETHTOOL_A_RSS_INPUT_XFRM (u32, 6.8+)
  static let rssAttributes: Int32 = 16

  public struct RSS: Equatable, Sendable {
    public let hashFunction: UInt8
    public let key: [UInt8]
    public let table: [UInt32]
    /// RXH_XFRM_* bits; 0 where the kernel has no such attribute.
    public var inputTransform: UInt32 = 0
  }

  public static func rss(interface: String) -> RSS? {
    let ifindex = if_nametoindex(interface)
    guard ifindex > 0, let netlink = GenericNetlink(family: "ethtool") else { return nil }
    let reply = netlink.request(
      command: rssGet, nest: (rssHeader, [(headerDeviceIndex, ifindex)]), maxAttribute: rssAttributes)
    return reply.flatMap(decodeRSS)
  }

  /// RSS_GET's reply: the hash function bits are required; a device with
  /// no table or key leaves those out (empty).
  static func decodeRSS(_ attributes: GenericNetlink.Attributes) -> RSS? {
    guard let function = GenericNetlink.u32(attributes[rssFunction]) else { return nil }
    guard let table = attributes[rssTable].map(GenericNetlink.u32s) ?? [] else { return nil }
    var rss = RSS(hashFunction: UInt8(truncatingIfNeeded: function), key: attributes[rssKey] ?? [], table: table)
    rss.inputTransform = GenericNetlink.u32(attributes[rssInputTransform]) ?? 0
    return rss
  }
}
