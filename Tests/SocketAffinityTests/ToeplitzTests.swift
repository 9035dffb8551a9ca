import Glibc
import XCTest

@testable import SocketAffinity

/// The Toeplitz hash against Microsoft's published RSS verification suite
/// ("Verifying the RSS Hash Calculation"; the same vectors are in the Intel
/// 82599 datasheet, 7.1.2.8.3): its key, and for each flow the hash over the
/// addresses alone and over addresses and ports.
final class ToeplitzTests: XCTestCase {
  static let key: [UInt8] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
  ]

  struct Vector {
    let source: String
    let sourcePort: UInt16
    let destination: String
    let destinationPort: UInt16
    let addressesOnly: UInt32
    let withPorts: UInt32
  }

  static let ipv4: [Vector] = [
    Vector(
      source: "66.9.149.187", sourcePort: 2794, destination: "161.142.100.80", destinationPort: 1766,
      addressesOnly: 0x323e_8fc2, withPorts: 0x51cc_c178),
    Vector(
      source: "199.92.111.2", sourcePort: 14230, destination: "65.69.140.83", destinationPort: 4739,
      addressesOnly: 0xd718_262a, withPorts: 0xc626_b0ea),
    Vector(
      source: "24.19.198.95", sourcePort: 12898, destination: "12.22.207.184", destinationPort: 38024,
      addressesOnly: 0xd2d0_a5de, withPorts: 0x5c2b_394a),
    Vector(
      source: "38.27.205.30", sourcePort: 48228, destination: "209.142.163.6", destinationPort: 2217,
      addressesOnly: 0x8298_9176, withPorts: 0xafc7_327f),
    Vector(
      source: "153.39.163.191", sourcePort: 44251, destination: "202.188.127.2", destinationPort: 1303,
      addressesOnly: 0x5d18_09c5, withPorts: 0x10e8_28a2),
  ]

  static let ipv6: [Vector] = [
    Vector(
      source: "3ffe:2501:200:1fff::7", sourcePort: 2794, destination: "3ffe:2501:200:3::1", destinationPort: 1766,
      addressesOnly: 0x2cc1_8cd5, withPorts: 0x4020_7d3d),
    Vector(
      source: "3ffe:501:8::260:97ff:fe40:efab", sourcePort: 14230, destination: "ff02::1", destinationPort: 4739,
      addressesOnly: 0x0f0c_461c, withPorts: 0xdde5_1bbf),
    Vector(
      source: "3ffe:1900:4545:3:200:f8ff:fe21:67cf", sourcePort: 44251, destination: "fe80::200:f8ff:fe21:67cf",
      destinationPort: 38024, addressesOnly: 0x4b61_e985, withPorts: 0x02d1_feef),
  ]

  static func bytes(_ address: String) -> [UInt8] {
    if address.contains(":") {
      var raw = in6_addr()
      precondition(inet_pton(AF_INET6, address, &raw) == 1)
      return withUnsafeBytes(of: &raw) { Array($0) }
    }
    var raw = in_addr()
    precondition(inet_pton(AF_INET, address, &raw) == 1)
    return withUnsafeBytes(of: &raw) { Array($0) }
  }

  func check(_ vectors: [Vector], file: StaticString = #filePath, line: UInt = #line) throws {
    let toeplitz = try XCTUnwrap(Toeplitz(key: Self.key))
    for vector in vectors {
      for ports in [false, true] {
        let input = try XCTUnwrap(
          Toeplitz.input(
            source: Self.bytes(vector.source), destination: Self.bytes(vector.destination),
            sourcePort: vector.sourcePort, destinationPort: vector.destinationPort, ports: ports))
        XCTAssertEqual(
          toeplitz.hash(input), ports ? vector.withPorts : vector.addressesOnly,
          "\(vector.source) -> \(vector.destination), ports \(ports)", file: file, line: line)
      }
    }
  }

  func testIPv4VerificationSuite() throws { try check(Self.ipv4) }

  func testIPv6VerificationSuite() throws { try check(Self.ipv6) }

  func testInputLongerThanTheKeyCoversIsRefused() throws {
    let short = try XCTUnwrap(Toeplitz(key: Array(Self.key.prefix(16))))
    XCTAssertEqual(short.maximumInputBytes, 12)
    XCTAssertNotNil(short.hash([UInt8](repeating: 1, count: 12)))
    XCTAssertNil(short.hash([UInt8](repeating: 1, count: 13)), "the key has no bits left for the 13th byte")
    XCTAssertNil(Toeplitz(key: [1, 2, 3]))
  }
}
