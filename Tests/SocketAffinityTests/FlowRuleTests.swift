import CSockaffShims
import Glibc
import SystemPackage
import XCTest

@testable import SocketAffinity

/// ntuple rules as a driver hands them back (`struct ethtool_rx_flow_spec`,
/// filled here the way `ethtool -N` fills it for the kernel: values and
/// masks in network order, set mask bits compared), decoded and matched
/// against flows as the receiving host sees them (the peer is the source).
final class FlowRuleTests: XCTestCase {
  let peer: [UInt8] = [192, 0, 2, 7]
  let local: [UInt8] = [198, 51, 100, 1]

  func flow(sourcePort: UInt16 = 40000, destinationPort: UInt16 = 9000, tcp: Bool = false) -> ReceivedFlow {
    ReceivedFlow(source: peer, sourcePort: sourcePort, destination: local, destinationPort: destinationPort, tcp: tcp)
  }

  func address(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }

  /// `ethtool -N DEV flow-type udp4 dst-ip 198.51.100.1 dst-port 9000 action 3 loc 7`.
  func udpRule(destinationPort: UInt16 = 9000, cookie: UInt64 = 3, location: UInt32 = 7) -> ethtool_rx_flow_spec {
    var spec = ethtool_rx_flow_spec()
    spec.flow_type = UInt32(UDP_V4_FLOW)
    spec.h_u.udp_ip4_spec.ip4dst = address(local)
    spec.m_u.udp_ip4_spec.ip4dst = 0xffff_ffff
    spec.h_u.udp_ip4_spec.pdst = destinationPort.bigEndian
    spec.m_u.udp_ip4_spec.pdst = 0xffff
    spec.ring_cookie = cookie
    spec.location = location
    return spec
  }

  func testATransportRuleDecodesItsFieldsAndQueue() {
    let rule = FlowRule(spec: udpRule(), context: 0)
    XCTAssertEqual(rule.kind, .transport(tcp: false, ipv4: true))
    XCTAssertEqual(rule.location, 7)
    XCTAssertEqual(rule.action, .queue(3))
    XCTAssertEqual(rule.destination, local)
    XCTAssertEqual(rule.destinationMask, [255, 255, 255, 255])
    XCTAssertEqual(rule.sourceMask, [0, 0, 0, 0], "the source is not compared")
    XCTAssertEqual(rule.destinationPort, 9000)
    XCTAssertEqual(rule.destinationPortMask, 0xffff)
    XCTAssertEqual(rule.unseen, [])
  }

  func testTheRuleTakesOnlyTheFlowsItsMaskedFieldsName() {
    let rule = FlowRule(spec: udpRule(), context: 0)
    XCTAssertEqual(rule.match(flow()), .matches, "any source port, the rule's destination")
    XCTAssertEqual(rule.match(flow(sourcePort: 1)), .matches)
    XCTAssertEqual(rule.match(flow(destinationPort: 9001)), .differs)
    XCTAssertEqual(rule.match(flow(tcp: true)), .differs, "a udp4 rule never takes TCP")
    let v6 = ReceivedFlow(
      source: [UInt8](repeating: 0x20, count: 16), sourcePort: 1, destination: [UInt8](repeating: 1, count: 16),
      destinationPort: 9000, tcp: false)
    XCTAssertEqual(rule.match(v6), .differs)
    var prefix = udpRule()
    // dst-ip 198.51.100.0 m 255.255.255.0 (ethtool turns the CLI's ignore mask into the kernel's compare mask).
    prefix.h_u.udp_ip4_spec.ip4dst = address([198, 51, 100, 0])
    prefix.m_u.udp_ip4_spec.ip4dst = address([255, 255, 255, 0])
    XCTAssertEqual(FlowRule(spec: prefix, context: 0).match(flow()), .matches, "the /24 holds .1")
  }

  func testTheCookieNamesDropVirtualFunctionsAndContexts() {
    XCTAssertEqual(FlowRule(spec: udpRule(cookie: RX_CLS_FLOW_DISC), context: 0).action, .discard)
    XCTAssertEqual(FlowRule(spec: udpRule(cookie: RX_CLS_FLOW_WAKE), context: 0).action, .wakeOnLAN)
    let vf = UInt64(2) << UInt64(ETHTOOL_RX_FLOW_SPEC_RING_VF_OFF) | 5
    XCTAssertEqual(FlowRule(spec: udpRule(cookie: vf), context: 0).action, .virtualFunction(2, queue: 5))
    var spread = udpRule(cookie: 4)
    spread.flow_type |= UInt32(FLOW_RSS)
    let rule = FlowRule(spec: spread, context: 1)
    XCTAssertEqual(rule.action, .rssContext(1, offset: 4), "the context's table entry plus the cookie")
    XCTAssertEqual(rule.kind, .transport(tcp: false, ipv4: true), "FLOW_RSS is a flag, not the flow type")
  }

  func testFieldsASocketDoesNotTellLeaveTheMatchUndecided() {
    var vlan = udpRule()
    vlan.flow_type |= UInt32(FLOW_EXT)
    vlan.h_ext.vlan_tci = UInt16(100).bigEndian
    vlan.m_ext.vlan_tci = 0xffff
    vlan.m_u.udp_ip4_spec.tos = 0xff
    let rule = FlowRule(spec: vlan, context: 0)
    XCTAssertEqual(rule.unseen, ["vlan", "tos"])
    XCTAssertEqual(rule.match(flow()), .undecided(fields: ["vlan", "tos"]))
    XCTAssertEqual(rule.match(flow(destinationPort: 1)), .differs, "a port that differs decides anyway")
  }

  func testIPRulesCompareTheProtocolAndTheTransportBytes() {
    // flow-type ip4 l4proto 6 l4data 0x00002328 m 0x0000ffff: TCP to port 9000.
    var spec = ethtool_rx_flow_spec()
    spec.flow_type = UInt32(IPV4_USER_FLOW)
    spec.h_u.usr_ip4_spec.proto = 6
    spec.m_u.usr_ip4_spec.proto = 0xff
    spec.h_u.usr_ip4_spec.l4_4_bytes = UInt32(9000).bigEndian
    spec.m_u.usr_ip4_spec.l4_4_bytes = UInt32(0xffff).bigEndian
    spec.ring_cookie = 1
    let rule = FlowRule(spec: spec, context: 0)
    XCTAssertEqual(rule.kind, .ip(ipv4: true))
    XCTAssertEqual(rule.match(flow(tcp: true)), .matches, "the first four bytes: source port, then 9000")
    XCTAssertEqual(rule.match(flow(tcp: false)), .differs, "UDP is protocol 17")
    XCTAssertEqual(rule.match(flow(destinationPort: 80, tcp: true)), .differs)
  }

  func testOtherFlowTypesNeverTakeTCPOrUDP() {
    var sctp = udpRule()
    sctp.flow_type = UInt32(SCTP_V4_FLOW)
    XCTAssertEqual(FlowRule(spec: sctp, context: 0).match(flow()), .differs)
    var ether = ethtool_rx_flow_spec()
    ether.flow_type = UInt32(ETHER_FLOW)
    ether.h_u.ether_spec.h_proto = UInt16(0x86dd).bigEndian
    ether.m_u.ether_spec.h_proto = 0xffff
    XCTAssertEqual(FlowRule(spec: ether, context: 0).match(flow()), .differs, "an IPv6 EtherType, an IPv4 flow")
    ether.h_u.ether_spec.h_proto = UInt16(0x0800).bigEndian
    XCTAssertEqual(FlowRule(spec: ether, context: 0).match(flow()), .matches)
  }

  func testTheLowestLocationDecides() {
    let late = FlowRule(spec: udpRule(cookie: 1, location: 9), context: 0)
    let early = FlowRule(spec: udpRule(cookie: 2, location: 3), context: 0)
    let other = FlowRule(spec: udpRule(destinationPort: 53, cookie: 0, location: 0), context: 0)
    XCTAssertEqual(FlowRule.decide(flow(), rules: [late, other, early]), .rule(early))
    XCTAssertEqual(FlowRule.decide(flow(destinationPort: 53), rules: [late, other, early]), .rule(other))
    XCTAssertEqual(FlowRule.decide(flow(destinationPort: 1), rules: [late, other, early]), .none)
    var tos = udpRule(cookie: 0, location: 1)
    tos.m_u.udp_ip4_spec.tos = 0xfc
    let undecided = FlowRule(spec: tos, context: 0)
    XCTAssertEqual(
      FlowRule.decide(flow(), rules: [late, undecided, early]), .undecided(undecided, fields: ["tos"]),
      "an earlier rule that may take the flow leaves the later ones unknown too")
  }

  func testTheRulesOfAnInterfaceWithoutThemAreRefusedByTheKernel() throws {
    // Loopback has no classification rules: the driver's answer, not an empty list.
    let raw = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    XCTAssertGreaterThanOrEqual(raw, 0)
    defer { close(raw) }
    XCTAssertThrowsError(try FlowRule.read(interface: "lo", through: FileDescriptor(rawValue: raw))) {
      XCTAssertTrue("\($0)".contains("ETHTOOL_GRXCLSRLALL(lo)"), "\($0)")
    }
  }
}
