import Glibc
import SocketAffinity
import XCTest

final class SocketKindTests: XCTestCase {
  let stream = Int32(SOCK_STREAM.rawValue)
  let datagram = Int32(SOCK_DGRAM.rawValue)

  func testTCPAndUDPOverBothFamilies() {
    XCTAssertEqual(
      try SocketKind.classify(domain: AF_INET, type: stream, protocol: Int32(IPPROTO_TCP)).get(),
      SocketKind(family: .inet, transport: .tcp))
    XCTAssertEqual(
      try SocketKind.classify(domain: AF_INET6, type: datagram, protocol: Int32(IPPROTO_UDP)).get(),
      SocketKind(family: .inet6, transport: .udp))
  }

  func testOtherSocketsAreDescribed() {
    let cases: [(Int32, Int32, Int32, String)] = [
      (AF_UNIX, stream, 0, "unix stream socket"),
      (AF_NETLINK, Int32(SOCK_RAW.rawValue), 0, "netlink raw socket"),
      (AF_PACKET, Int32(SOCK_RAW.rawValue), 768, "packet raw socket"),
      (AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMP), "inet raw protocol 1 socket"),
      (AF_INET, stream, 262, "inet stream protocol 262 socket"),  // MPTCP
    ]
    for (domain, type, proto, description) in cases {
      switch SocketKind.classify(domain: domain, type: type, protocol: proto) {
      case .success(let kind): XCTFail("\(description) classified as \(kind)")
      case .failure(let unsupported): XCTAssertEqual(unsupported.description, description)
      }
    }
  }
}
