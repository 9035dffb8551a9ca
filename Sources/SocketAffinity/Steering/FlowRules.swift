import CSockaffShims
import SystemPackage

/// One ntuple rule (`ethtool -N DEV flow-type ...`, flow classification)
/// as the driver reports it: the packets it matches and where it sends
/// them. Rules come before RSS. A flow one of them matches goes to its
/// queue, or through its RSS context's own table; of several, the lowest
/// location wins (the uapi's rule for `location`).
public struct FlowRule: Sendable, Equatable {
  /// Where the rule sends what it matches (its ring cookie).
  public enum Action: Sendable, Equatable, CustomStringConvertible {
    case queue(Int)
    /// A virtual function's queue (the cookie's VF byte, 1-based): not a
    /// queue of this interface.
    case virtualFunction(Int, queue: Int)
    /// Through RSS context `context`'s table; the table's entry plus
    /// `offset` is the queue.
    case rssContext(UInt32, offset: Int)
    case discard
    case wakeOnLAN

    public var description: String {
      switch self {
      case .queue(let queue): "rx queue \(queue)"
      case .virtualFunction(let vf, let queue): "virtual function \(vf)'s queue \(queue)"
      case .rssContext(let context, let offset):
        "rss context \(context)" + (offset == 0 ? "" : " (its table's queue + \(offset))")
      case .discard: "drop"
      case .wakeOnLAN: "wake-on-lan"
      }
    }
  }

  /// Which packets a rule can match at all, by its flow type.
  public enum Kind: Sendable, Equatable {
    /// TCP_V4_FLOW, UDP_V6_FLOW...: one transport, addresses and ports.
    case transport(tcp: Bool, ipv4: Bool)
    /// IPV4_USER_FLOW, IPV6_USER_FLOW: addresses, an optional protocol,
    /// the transport header's first four bytes (a TCP or UDP packet's ports).
    case ip(ipv4: Bool)
    /// ETHER_FLOW: the Ethernet header.
    case ethernet
    /// SCTP, AH, ESP: never a TCP or UDP packet.
    case other(UInt32)
  }

  public let location: UInt32
  public let kind: Kind
  public let action: Action
  /// Packet source (the peer) and destination (this host), network order,
  /// with masks whose set bits are compared (the uapi's `m_u`).
  public let source: [UInt8]
  public let sourceMask: [UInt8]
  public let destination: [UInt8]
  public let destinationMask: [UInt8]
  public let sourcePort: UInt16
  public let sourcePortMask: UInt16
  public let destinationPort: UInt16
  public let destinationPortMask: UInt16
  /// An IP rule's protocol (IPPROTO_*), when it masks one.
  public let ipProtocol: UInt8?
  /// An IP rule's first four transport bytes and their mask.
  public let transportBytes: UInt32
  public let transportBytesMask: UInt32
  /// Ethernet rules: the EtherType compared (nil: not masked).
  public let etherType: UInt16?
  /// Matched fields that a socket's flow does not tell (TOS, VLAN, MAC
  /// addresses, user data): a flow that matches the rest may or may not
  /// match the rule.
  public let unseen: [String]

  public init(
    location: UInt32, kind: Kind, action: Action, source: [UInt8] = [], sourceMask: [UInt8] = [],
    destination: [UInt8] = [], destinationMask: [UInt8] = [], sourcePort: UInt16 = 0, sourcePortMask: UInt16 = 0,
    destinationPort: UInt16 = 0, destinationPortMask: UInt16 = 0, ipProtocol: UInt8? = nil,
    transportBytes: UInt32 = 0, transportBytesMask: UInt32 = 0, etherType: UInt16? = nil, unseen: [String] = []
  ) {
    self.location = location
    self.kind = kind
    self.action = action
    self.source = source
    self.sourceMask = sourceMask
    self.destination = destination
    self.destinationMask = destinationMask
    self.sourcePort = sourcePort
    self.sourcePortMask = sourcePortMask
    self.destinationPort = destinationPort
    self.destinationPortMask = destinationPortMask
    self.ipProtocol = ipProtocol
    self.transportBytes = transportBytes
    self.transportBytesMask = transportBytesMask
    self.etherType = etherType
    self.unseen = unseen
  }

  /// Whether the rule takes a flow's packets.
  public enum Match: Sendable, Equatable {
    case matches
    case differs
    /// Everything the flow tells matches; `fields` it does not tell decide.
    case undecided(fields: [String])
  }

  public func match(_ flow: ReceivedFlow) -> Match {
    let ipv4 = flow.source.count == 4
    switch kind {
    case .other:
      return .differs
    case .ethernet:
      if let etherType, etherType != (ipv4 ? 0x0800 : 0x86dd) { return .differs }
      return unseen.isEmpty ? .matches : .undecided(fields: unseen)
    case .transport(let tcp, let ruleIPv4):
      guard tcp == flow.tcp, ruleIPv4 == ipv4 else { return .differs }
      guard flow.sourcePort & sourcePortMask == sourcePort & sourcePortMask,
        flow.destinationPort & destinationPortMask == destinationPort & destinationPortMask
      else { return .differs }
    case .ip(let ruleIPv4):
      guard ruleIPv4 == ipv4 else { return .differs }
      if let ipProtocol, ipProtocol != (flow.tcp ? 6 : 17) { return .differs }
      let ports = UInt32(flow.sourcePort) << 16 | UInt32(flow.destinationPort)
      guard ports & transportBytesMask == transportBytes & transportBytesMask else { return .differs }
    }
    guard Self.masked(flow.source, equals: source, mask: sourceMask),
      Self.masked(flow.destination, equals: destination, mask: destinationMask)
    else { return .differs }
    return unseen.isEmpty ? .matches : .undecided(fields: unseen)
  }

  static func masked(_ value: [UInt8], equals rule: [UInt8], mask: [UInt8]) -> Bool {
    for (index, bits) in mask.enumerated() where bits != 0 {
      guard index < value.count, index < rule.count, value[index] & bits == rule[index] & bits else { return false }
    }
    return true
  }

  /// What a set of rules does with a flow: the first (lowest location)
  /// that takes it, none, or the first whose answer the flow cannot tell.
  public enum Decision: Sendable, Equatable {
    case none
    case rule(FlowRule)
    case undecided(FlowRule, fields: [String])
  }

  public static func decide(_ flow: ReceivedFlow, rules: [FlowRule]) -> Decision {
    for rule in rules.sorted(by: { $0.location < $1.location }) {
      switch rule.match(flow) {
      case .differs: continue
      case .matches: return .rule(rule)
      case .undecided(let fields): return .undecided(rule, fields: fields)
      }
    }
    return .none
  }

  /// `interface`'s rules through `socket` (a socket of its network
  /// namespace): ETHTOOL_GRXCLSRLALL, then each rule. Throws with the
  /// kernel's errno where the driver does not list them.
  public static func read(interface: String, through socket: FileDescriptor) throws(SockaffError) -> [FlowRule] {
    let operation = "SIOCETHTOOL ETHTOOL_GRXCLSRLALL(\(interface))"
    var count: UInt32 = 0
    guard sockaff_ethtool_rules(socket.rawValue, interface, nil, nil, &count) == 0 else {
      throw .lastErrno(operation: operation)
    }
    guard count > 0 else { return [] }
    // A rule added in between is read on the next ask; one deleted shortens the list.
    var specs = [ethtool_rx_flow_spec](repeating: ethtool_rx_flow_spec(), count: Int(count))
    var contexts = [UInt32](repeating: 0, count: Int(count))
    let status = specs.withUnsafeMutableBufferPointer { specBuffer in
      contexts.withUnsafeMutableBufferPointer { contextBuffer in
        sockaff_ethtool_rules(socket.rawValue, interface, specBuffer.baseAddress, contextBuffer.baseAddress, &count)
      }
    }
    guard status == 0 else { throw .lastErrno(operation: operation) }
    return (0..<min(Int(count), specs.count)).map { FlowRule(spec: specs[$0], context: contexts[$0]) }
  }
}

extension FlowRule {
  /// Decodes the driver's `struct ethtool_rx_flow_spec` (its union by flow
  /// type) and the rule's RSS context.
  init(spec: ethtool_rx_flow_spec, context: UInt32) {
    func bytes<T>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
    let flagBits = UInt32(FLOW_EXT) | UInt32(FLOW_MAC_EXT) | UInt32(FLOW_RSS)
    let flags = spec.flow_type & flagBits
    let base = spec.flow_type & ~flagBits
    var unseen: [String] = []
    if flags & UInt32(FLOW_EXT) != 0 {
      if spec.m_ext.vlan_etype != 0 { unseen.append("vlan-etype") }
      if spec.m_ext.vlan_tci != 0 { unseen.append("vlan") }
      if bytes(spec.m_ext.data).contains(where: { $0 != 0 }) { unseen.append("user-def") }
    }
    if flags & UInt32(FLOW_MAC_EXT) != 0, bytes(spec.m_ext.h_dest).contains(where: { $0 != 0 }) {
      unseen.append("dst-mac")
    }
    let action: Action
    switch spec.ring_cookie {
    case RX_CLS_FLOW_DISC: action = .discard
    case RX_CLS_FLOW_WAKE: action = .wakeOnLAN
    default:
      let queue = Int(spec.ring_cookie & UInt64(ETHTOOL_RX_FLOW_SPEC_RING))
      let vf = Int(
        (spec.ring_cookie & UInt64(ETHTOOL_RX_FLOW_SPEC_RING_VF)) >> UInt64(ETHTOOL_RX_FLOW_SPEC_RING_VF_OFF))
      if flags & UInt32(FLOW_RSS) != 0 {
        action = .rssContext(context, offset: queue)
      } else {
        action = vf == 0 ? .queue(queue) : .virtualFunction(vf, queue: queue)
      }
    }
    let h = spec.h_u
    let m = spec.m_u
    switch Int32(base) {
    case TCP_V4_FLOW, UDP_V4_FLOW:
      let (value, mask) =
        Int32(base) == TCP_V4_FLOW ? (h.tcp_ip4_spec, m.tcp_ip4_spec) : (h.udp_ip4_spec, m.udp_ip4_spec)
      if mask.tos != 0 { unseen.append("tos") }
      self.init(
        location: spec.location, kind: .transport(tcp: Int32(base) == TCP_V4_FLOW, ipv4: true), action: action,
        source: bytes(value.ip4src), sourceMask: bytes(mask.ip4src), destination: bytes(value.ip4dst),
        destinationMask: bytes(mask.ip4dst), sourcePort: UInt16(bigEndian: value.psrc),
        sourcePortMask: UInt16(bigEndian: mask.psrc), destinationPort: UInt16(bigEndian: value.pdst),
        destinationPortMask: UInt16(bigEndian: mask.pdst), unseen: unseen)
    case TCP_V6_FLOW, UDP_V6_FLOW:
      let (value, mask) =
        Int32(base) == TCP_V6_FLOW ? (h.tcp_ip6_spec, m.tcp_ip6_spec) : (h.udp_ip6_spec, m.udp_ip6_spec)
      if mask.tclass != 0 { unseen.append("tclass") }
      self.init(
        location: spec.location, kind: .transport(tcp: Int32(base) == TCP_V6_FLOW, ipv4: false), action: action,
        source: bytes(value.ip6src), sourceMask: bytes(mask.ip6src), destination: bytes(value.ip6dst),
        destinationMask: bytes(mask.ip6dst), sourcePort: UInt16(bigEndian: value.psrc),
        sourcePortMask: UInt16(bigEndian: mask.psrc), destinationPort: UInt16(bigEndian: value.pdst),
        destinationPortMask: UInt16(bigEndian: mask.pdst), unseen: unseen)
    case IPV4_USER_FLOW:
      let (value, mask) = (h.usr_ip4_spec, m.usr_ip4_spec)
      if mask.tos != 0 { unseen.append("tos") }
      self.init(
        location: spec.location, kind: .ip(ipv4: true), action: action, source: bytes(value.ip4src),
        sourceMask: bytes(mask.ip4src), destination: bytes(value.ip4dst), destinationMask: bytes(mask.ip4dst),
        ipProtocol: mask.proto == 0 ? nil : value.proto, transportBytes: UInt32(bigEndian: value.l4_4_bytes),
        transportBytesMask: UInt32(bigEndian: mask.l4_4_bytes), unseen: unseen)
    case IPV6_USER_FLOW:
      let (value, mask) = (h.usr_ip6_spec, m.usr_ip6_spec)
      if mask.tclass != 0 { unseen.append("tclass") }
      self.init(
        location: spec.location, kind: .ip(ipv4: false), action: action, source: bytes(value.ip6src),
        sourceMask: bytes(mask.ip6src), destination: bytes(value.ip6dst), destinationMask: bytes(mask.ip6dst),
        ipProtocol: mask.l4_proto == 0 ? nil : value.l4_proto, transportBytes: UInt32(bigEndian: value.l4_4_bytes),
        transportBytesMask: UInt32(bigEndian: mask.l4_4_bytes), unseen: unseen)
    case ETHER_FLOW:
      let (value, mask) = (h.ether_spec, m.ether_spec)
      if bytes(mask.h_source).contains(where: { $0 != 0 }) { unseen.append("src-mac") }
      if bytes(mask.h_dest).contains(where: { $0 != 0 }) { unseen.append("dst-mac") }
      self.init(
        location: spec.location, kind: .ethernet, action: action,
        etherType: mask.h_proto == 0 ? nil : UInt16(bigEndian: value.h_proto), unseen: unseen)
    default:
      self.init(location: spec.location, kind: .other(base), action: action, unseen: unseen)
    }
  }
}

/// `query --predict`'s `ntuple_rule`: the rule that decides a flow's queue.
public struct FlowRuleSteering: Sendable, Equatable, JSONFields {
  public let rule: FlowRule
  public let rxQueue: Int

  public init(rule: FlowRule, rxQueue: Int) {
    self.rule = rule
    self.rxQueue = rxQueue
  }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    var context: UInt32?
    if case .rssContext(let number, _) = rule.action { context = number }
    try visitor.field("location", rule.location)
    try visitor.field("action", rule.action.description)
    try visitor.field("rss_context", context)
    try visitor.field("rx_queue", rxQueue)
  }
}
