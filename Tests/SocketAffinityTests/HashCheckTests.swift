import XCTest

@testable import SocketAffinity

/// The verdict on a NIC's hash, from Microsoft's published vectors
/// (ToeplitzTests): the first IPv4 flow hashes to 0x51ccc178 over addresses
/// and ports and to 0x323e8fc2 over the addresses alone. And the symmetric
/// input transforms, against their definition worked out by hand.
final class HashCheckTests: XCTestCase {
  static let flow = ReceivedFlow(
    source: ToeplitzTests.bytes("66.9.149.187"), sourcePort: 2794,
    destination: ToeplitzTests.bytes("161.142.100.80"), destinationPort: 1766, tcp: true)

  static func nic(
    _ function: RSSConfiguration.HashFunction = .toeplitz, deliversHash: Bool = true,
    transform: RSSConfiguration.InputTransform = .none
  ) -> RSSConfiguration {
    RSSConfiguration(
      interface: "eth0", hashFunction: function, key: ToeplitzTests.key, table: (0..<128).map { UInt32($0 % 4) },
      rxRings: 4, ntupleRules: 0, inputTransform: transform, deliversHash: deliversHash)
  }

  func check(_ observed: UInt32?, _ interface: HashCheck.Interface, connected: Bool = true) -> HashCheck {
    HashCheck.check(observed: observed, connected: connected, flow: Self.flow, interface: interface)
  }

  func testTheNICsOwnHashIsVerified() {
    let result = check(0x51cc_c178, .rss(Self.nic(), fields: .addressesAndPorts))
    XCTAssertEqual(result.verdict, .verified)
    XCTAssertEqual(result.predictedHash, 0x51cc_c178)
    XCTAssertTrue(result.fromNIC)
    let addresses = check(0x323e_8fc2, .rss(Self.nic(), fields: .addresses))
    XCTAssertEqual(addresses.verdict, .verified, addresses.reason)
  }

  /// The NIC hashed the addresses alone while the driver reports ports too:
  /// contradicted, and the reason names what the NIC did hash.
  func testAHashOverOtherFieldsIsContradictedAndNamed() {
    let result = check(0x323e_8fc2, .rss(Self.nic(), fields: .addressesAndPorts))
    XCTAssertEqual(result.verdict, .contradicted)
    XCTAssertEqual(result.predictedHash, 0x51cc_c178)
    XCTAssertTrue(result.reason.contains("the NIC hashed the addresses only with input transform none"), result.reason)
  }

  func testAnUnexplainedHashIsContradicted() {
    let result = check(0x1234_5678, .rss(Self.nic(), fields: .addressesAndPorts))
    XCTAssertEqual(result.verdict, .contradicted)
    XCTAssertTrue(result.reason.contains("function, key or fields are not what eth0 reports"), result.reason)
  }

  func testNothingToCompareIsUnverifiableAndSaysWhy() {
    let cases: [(HashCheck, String)] = [
      (check(0x51cc_c178, .software("lo")), "lo has no NIC"),
      (check(0x51cc_c178, .rss(Self.nic(deliversHash: false), fields: .addressesAndPorts)), "receive-hashing off"),
      (check(nil, .rss(Self.nic(), fields: .addressesAndPorts)), "no hash in its packets"),
      (
        check(0x51cc_c178, .rss(Self.nic(.crc32), fields: .addressesAndPorts)),
        "the hash function is crc32: sockaff recomputes Toeplitz only"
      ),
      (check(0x51cc_c178, .rss(Self.nic(), fields: nil)), "does not say which fields"),
      (check(0x51cc_c178, .rss(Self.nic(), fields: .addressesAndPorts), connected: false), "not connected"),
      (check(0x51cc_c178, .noRSS("eth1", why: "Operation not supported")), "eth1 reports no RSS"),
    ]
    for (result, why) in cases {
      XCTAssertEqual(result.verdict, .unverifiable, result.reason)
      XCTAssertTrue(result.reason.contains(why), "\(result.reason) should say \(why)")
    }
    XCTAssertEqual(cases[0].0.observedHash, 0x51cc_c178, "the observed hash is still shown")
    XCTAssertEqual(cases[3].0.fromNIC, true, "a function sockaff cannot compute is still the NIC's hash")
  }

  /// symmetric-xor hashes (src ^ dst, src ^ dst, sport ^ dport, sport ^
  /// dport); symmetric-or-xor puts the OR in the first copy: worked out
  /// by hand for 66.9.149.187:2794 -> 161.142.100.80:1766.
  func testSymmetricTransformsBuildTheirDefinedInput() {
    func input(_ transform: RSSConfiguration.InputTransform) -> [UInt8]? {
      Toeplitz.input(
        source: Self.flow.source, destination: Self.flow.destination, sourcePort: 2794, destinationPort: 1766,
        ports: true, transform: transform)
    }
    let xor: [UInt8] = [0xe3, 0x87, 0xf1, 0xeb]
    let or: [UInt8] = [0xe3, 0x8f, 0xf5, 0xfb]
    XCTAssertEqual(input(.symmetricXor), xor + xor + [0x0c, 0x0c, 0x0c, 0x0c])
    XCTAssertEqual(input(.symmetricOrXor), or + xor + [0x0e, 0xee, 0x0c, 0x0c])
    XCTAssertNil(input(.other(4)), "a transform not known here builds nothing")
  }

  /// Both directions of every published flow hash alike under either
  /// symmetric transform (and, for these flows, differently without one).
  func testSymmetricTransformsGiveBothDirectionsOneHash() throws {
    let toeplitz = try XCTUnwrap(Toeplitz(key: ToeplitzTests.key))
    for vector in ToeplitzTests.ipv4 + ToeplitzTests.ipv6 {
      let (a, b) = (ToeplitzTests.bytes(vector.source), ToeplitzTests.bytes(vector.destination))
      for transform in [RSSConfiguration.InputTransform.symmetricXor, .symmetricOrXor, .none] {
        let forward = try XCTUnwrap(
          Toeplitz.input(
            source: a, destination: b, sourcePort: vector.sourcePort, destinationPort: vector.destinationPort,
            ports: true, transform: transform))
        let backward = try XCTUnwrap(
          Toeplitz.input(
            source: b, destination: a, sourcePort: vector.destinationPort, destinationPort: vector.sourcePort,
            ports: true, transform: transform))
        if transform == .none {
          XCTAssertNotEqual(toeplitz.hash(forward), toeplitz.hash(backward), vector.source)
        } else {
          XCTAssertEqual(toeplitz.hash(forward), toeplitz.hash(backward), "\(transform) \(vector.source)")
        }
      }
    }
  }

  /// A NIC in symmetric-xor mode whose driver reports no transform: the
  /// verdict names the transform the hash came from.
  func testASymmetricHashTheDriverDidNotReportIsNamed() throws {
    let symmetric = try XCTUnwrap(
      try? RSSPrediction.toeplitzHash(
        flow: Self.flow, configuration: Self.nic(transform: .symmetricXor), ports: true))
    XCTAssertEqual(
      check(symmetric, .rss(Self.nic(transform: .symmetricXor), fields: .addressesAndPorts)).verdict, .verified)
    let result = check(symmetric, .rss(Self.nic(), fields: .addressesAndPorts))
    XCTAssertEqual(result.verdict, .contradicted)
    XCTAssertTrue(result.reason.contains("input transform symmetric-xor"), result.reason)
  }
}
