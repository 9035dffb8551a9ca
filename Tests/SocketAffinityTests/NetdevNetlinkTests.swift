import XCTest

@testable import SocketAffinity

/// Decoding of the netdev family's replies from bytes laid out as the kernel
/// writes them (netdev_nl_napi_fill_one: ifindex, id, irq, pid, each a u32
/// attribute after the netlink and generic netlink headers).
final class NetdevNetlinkTests: XCTestCase {
  static func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
  static func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

  static func message(command: UInt8, attributes: [(UInt16, UInt32)]) -> [UInt8] {
    message(command: command, raw: attributes.map { ($0.0, le32($0.1)) })
  }

  /// Attributes with any payload, each padded to 4 bytes as netlink aligns them.
  static func message(command: UInt8, raw attributes: [(UInt16, [UInt8])]) -> [UInt8] {
    var payload: [UInt8] = []
    for (type, value) in attributes {
      payload += le16(UInt16(4 + value.count))
      payload += le16(type)
      payload += value
      payload += [UInt8](repeating: 0, count: (4 - value.count % 4) % 4)
    }
    let genl: [UInt8] = [command, 1, 0, 0]  // cmd, version, reserved
    let length = UInt32(16 + genl.count + payload.count)
    // nlmsghdr: length, type (the family id), flags, sequence, port.
    return le32(length) + le16(0x1d) + le16(0) + le32(7) + le32(4242) + genl + payload
  }

  func testNAPIReplyDecodes() throws {
    let bytes = Self.message(command: NetdevNetlink.napiGet, attributes: [(1, 2), (2, 8195), (3, 29), (4, 0)])
    let attributes = try XCTUnwrap(GenericNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.napiAttributes))
    XCTAssertEqual(GenericNetlink.u32(attributes[NetdevNetlink.napiID]), 8195)
    XCTAssertEqual(NetdevNetlink.decodeNAPI(attributes), NetdevNetlink.NAPI(ifindex: 2, irq: 29))
  }

  /// Threaded NAPI: napi-get names the polling thread (6.8+), and newer
  /// kernels its own defer-hard-irqs and gro-flush-timeout (a "uint": 8
  /// bytes here).
  func testNAPIReplyNamesItsThread() throws {
    let timeout: [UInt8] = withUnsafeBytes(of: UInt64(200_000).littleEndian) { Array($0) }
    let bytes = Self.message(
      command: NetdevNetlink.napiGet,
      raw: [
        (1, Self.le32(2)), (2, Self.le32(8195)), (3, Self.le32(29)), (4, Self.le32(312)), (5, Self.le32(2)),
        (6, timeout),
      ])
    let attributes = try XCTUnwrap(GenericNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.napiAttributes))
    let napi = try XCTUnwrap(NetdevNetlink.decodeNAPI(attributes))
    XCTAssertEqual(napi.threadPID, 312)
    XCTAssertEqual(napi.deferHardIRQs, 2)
    XCTAssertEqual(napi.groFlushTimeout, 200_000)
  }

  func testNAPIWithoutIRQHasNone() throws {
    let bytes = Self.message(command: NetdevNetlink.napiGet, attributes: [(1, 5), (2, 8193)])
    let attributes = try XCTUnwrap(GenericNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.napiAttributes))
    XCTAssertEqual(NetdevNetlink.decodeNAPI(attributes), NetdevNetlink.NAPI(ifindex: 5, irq: nil))
    let noInterface = try XCTUnwrap(
      GenericNetlink.parse(
        bytes: Self.message(command: NetdevNetlink.napiGet, attributes: [(2, 8193)]),
        maxAttribute: NetdevNetlink.napiAttributes))
    XCTAssertNil(NetdevNetlink.decodeNAPI(noInterface), "a NAPI without its interface is not one")
  }

  func testQueueReplyNamesItsNAPI() throws {
    let bytes = Self.message(command: NetdevNetlink.queueGet, attributes: [(1, 3), (2, 2), (3, 0), (4, 8196)])
    let attributes = try XCTUnwrap(GenericNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.queueAttributes))
    XCTAssertEqual(GenericNetlink.u32(attributes[NetdevNetlink.queueNAPI]), 8196)
    XCTAssertEqual(GenericNetlink.u32(attributes[NetdevNetlink.queueID]), 3)
  }

  func testTruncatedMessageIsRefused() {
    let bytes = Self.message(command: NetdevNetlink.napiGet, attributes: [(1, 2)])
    // A length field larger than the bytes: genlmsg_parse must not read past them.
    var broken = bytes
    broken[0] = 0xff
    XCTAssertNil(GenericNetlink.parse(bytes: Array(broken.prefix(18)), maxAttribute: NetdevNetlink.napiAttributes))
  }

  /// ethtool's RSS_GET reply: the hash function, the table as u32s, the key.
  func testRSSReplyDecodes() throws {
    let table: [UInt32] = [0, 1, 2, 3, 0, 1, 2, 3]
    let key = ToeplitzTests.key
    let bytes = Self.message(
      command: EthtoolNetlink.rssGet,
      raw: [(3, Self.le32(1)), (4, table.flatMap(Self.le32)), (5, key)])
    let attributes = try XCTUnwrap(GenericNetlink.parse(bytes: bytes, maxAttribute: EthtoolNetlink.rssAttributes))
    XCTAssertEqual(
      EthtoolNetlink.decodeRSS(attributes), EthtoolNetlink.RSS(hashFunction: 1, key: key, table: table))
    let noTable = try XCTUnwrap(
      GenericNetlink.parse(
        bytes: Self.message(command: EthtoolNetlink.rssGet, raw: [(3, Self.le32(1))]),
        maxAttribute: EthtoolNetlink.rssAttributes))
    XCTAssertEqual(EthtoolNetlink.decodeRSS(noTable), EthtoolNetlink.RSS(hashFunction: 1, key: [], table: []))
    let odd = try XCTUnwrap(
      GenericNetlink.parse(
        bytes: Self.message(command: EthtoolNetlink.rssGet, raw: [(3, Self.le32(1)), (4, [1, 2, 3, 4, 5, 6])]),
        maxAttribute: EthtoolNetlink.rssAttributes))
    XCTAssertNil(EthtoolNetlink.decodeRSS(odd), "a table that is not whole u32s is refused")
  }
}
