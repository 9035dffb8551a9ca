import XCTest

@testable import SocketAffinity

/// Decoding of the netdev family's replies from bytes laid out as the kernel
/// writes them (netdev_nl_napi_fill_one: ifindex, id, irq, pid, each a u32
/// attribute after the netlink and generic netlink headers).
final class NetdevNetlinkTests: XCTestCase {
  static func message(command: UInt8, attributes: [(UInt16, UInt32)]) -> [UInt8] {
    func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    let payload = attributes.flatMap { le16(8) + le16($0.0) + le32($0.1) }
    let genl: [UInt8] = [command, 1, 0, 0]  // cmd, version, reserved
    let length = UInt32(16 + genl.count + payload.count)
    // nlmsghdr: length, type (the family id), flags, sequence, port.
    return le32(length) + le16(0x1d) + le16(0) + le32(7) + le32(4242) + genl + payload
  }

  func testNAPIReplyDecodes() throws {
    let bytes = Self.message(command: NetdevNetlink.napiGet, attributes: [(1, 2), (2, 8195), (3, 29), (4, 0)])
    let attributes = try XCTUnwrap(NetdevNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.napiAttributes))
    XCTAssertEqual(attributes[NetdevNetlink.napiID], 8195)
    XCTAssertEqual(NetdevNetlink.decodeNAPI(attributes), NetdevNetlink.NAPI(ifindex: 2, irq: 29))
  }

  func testNAPIWithoutIRQHasNone() throws {
    let bytes = Self.message(command: NetdevNetlink.napiGet, attributes: [(1, 5), (2, 8193)])
    let attributes = try XCTUnwrap(NetdevNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.napiAttributes))
    XCTAssertEqual(NetdevNetlink.decodeNAPI(attributes), NetdevNetlink.NAPI(ifindex: 5, irq: nil))
    let noInterface = try XCTUnwrap(
      NetdevNetlink.parse(
        bytes: Self.message(command: NetdevNetlink.napiGet, attributes: [(2, 8193)]),
        maxAttribute: NetdevNetlink.napiAttributes))
    XCTAssertNil(NetdevNetlink.decodeNAPI(noInterface), "a NAPI without its interface is not one")
  }

  func testQueueReplyNamesItsNAPI() throws {
    let bytes = Self.message(command: NetdevNetlink.queueGet, attributes: [(1, 3), (2, 2), (3, 0), (4, 8196)])
    let attributes = try XCTUnwrap(NetdevNetlink.parse(bytes: bytes, maxAttribute: NetdevNetlink.queueAttributes))
    XCTAssertEqual(attributes[NetdevNetlink.queueNAPI], 8196)
    XCTAssertEqual(attributes[NetdevNetlink.queueID], 3)
  }

  func testTruncatedMessageIsRefused() {
    let bytes = Self.message(command: NetdevNetlink.napiGet, attributes: [(1, 2)])
    // A length field larger than the bytes: genlmsg_parse must not read past them.
    var broken = bytes
    broken[0] = 0xff
    XCTAssertNil(NetdevNetlink.parse(bytes: Array(broken.prefix(18)), maxAttribute: NetdevNetlink.napiAttributes))
  }
}
