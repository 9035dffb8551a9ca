import CSockaffShims
import Glibc
import SystemPackage

/// The transport and family of a flow, as ethtool names flow types.
public enum FlowType: String, Sendable, Codable {
  case tcp4, udp4, tcp6, udp6

  var ethtoolFlowType: UInt32 {
    switch self {
    case .tcp4: UInt32(TCP_V4_FLOW)
    case .udp4: UInt32(UDP_V4_FLOW)
    case .tcp6: UInt32(TCP_V6_FLOW)
    case .udp6: UInt32(UDP_V6_FLOW)
    }
  }
}

/// What an interface's RSS does with received packets, read from the
/// kernel's ethtool interface (the SIOCETHTOOL ioctl, in the socket's
/// network namespace): the hash function, its key, the indirection table
/// that maps a hash to an RX queue, the queues RSS spreads over, and the
/// ntuple rules that override it.
public struct RSSConfiguration: Sendable, Equatable {
  /// The kernel's `enum ethtool_rss_hash_funcs` bits (not in the uapi
  /// headers of every distribution).
  public enum HashFunction: Sendable, Equatable, CustomStringConvertible {
    case toeplitz, xor, crc32
    case other(UInt8)

    public init(bits: UInt8) {
      switch bits {
      case 1 << 0: self = .toeplitz
      case 1 << 1: self = .xor
      case 1 << 2: self = .crc32
      default: self = .other(bits)
      }
    }

    public var description: String {
      switch self {
      case .toeplitz: "toeplitz"
      case .xor: "xor"
      case .crc32: "crc32"
      case .other(let bits): "unknown (0x\(String(bits, radix: 16)))"
      }
    }
  }

  /// How the flow's fields are combined before hashing (ethtool's
  /// `input_xfrm`, 6.8+). The symmetric transforms give both directions of
  /// a flow one hash, as the kernel's uapi header defines them: each
  /// source and destination field of one type XORed, and both copies of
  /// the XOR hashed (symmetric-xor), or the first copy replaced by the two
  /// fields ORed (symmetric-or-xor, 6.15).
  public enum InputTransform: Sendable, Equatable, CustomStringConvertible {
    case none, symmetricXor, symmetricOrXor
    case other(UInt32)

    public init(bits: UInt32) {
      switch bits {
      case 0: self = .none
      case 1 << 0: self = .symmetricXor
      case 1 << 1: self = .symmetricOrXor
      default: self = .other(bits)
      }
    }

    public var description: String {
      switch self {
      case .none: "none"
      case .symmetricXor: "symmetric-xor"
      case .symmetricOrXor: "symmetric-or-xor"
      case .other(let bits): "unknown (0x\(String(bits, radix: 16)))"
      }
    }
  }

  public let interface: String
  public let hashFunction: HashFunction
  public let inputTransform: InputTransform
  /// The NIC hands its RSS hash to the kernel with each packet (the
  /// interface's receive-hashing feature, NETIF_F_RXHASH): then skb->hash
  /// is the NIC's own. Without it a packet's hash is the kernel's.
  public let deliversHash: Bool
  public let key: [UInt8]
  /// Hash modulo the table's size picks an entry; the entry is the queue.
  public let table: [UInt32]
  public let rxRings: Int?
  /// ntuple (flow steering) rules: each overrides RSS for the flows it matches.
  public let ntupleRules: Int
  /// n-tuple filtering is on: with RFS configured, the NIC itself may steer
  /// a flow to its reader's queue (accelerated RFS), whatever RSS says.
  public let ntupleEnabled: Bool
  /// Where hash function, key and table came from: "netlink" (ethtool's
  /// RSS_GET, 6.3+) or "ioctl" (`ETHTOOL_GRSSH`).
  public let source: String

  public init(
    interface: String, hashFunction: HashFunction, key: [UInt8], table: [UInt32], rxRings: Int?,
    ntupleRules: Int, ntupleEnabled: Bool = false, source: String = "ioctl", inputTransform: InputTransform = .none,
    deliversHash: Bool = false
  ) {
    self.inputTransform = inputTransform
    self.deliversHash = deliversHash
    self.ntupleEnabled = ntupleEnabled
    self.source = source
    self.interface = interface
    self.hashFunction = hashFunction
    self.key = key
    self.table = table
    self.rxRings = rxRings
    self.ntupleRules = ntupleRules
  }

  /// Reads `interface`'s configuration through socket `socket` (any socket
  /// of the right network namespace). Throws with the kernel's errno when
  /// the interface has no RSS to report (loopback, veth: EOPNOTSUPP).
  /// `netlink: false` asks the ioctl only (the tests compare the two).
  /// `context` names an RSS context other than the default one (an ntuple
  /// rule's, `FlowRule`), read through the ioctl.
  public static func read(
    interface: String, through socket: FileDescriptor, netlink: Bool = true, context: UInt32 = 0
  ) throws(SockaffError) -> RSSConfiguration {
    // ethtool's netlink family where the kernel has RSS_GET (it asks this
    // process's namespace: only for a socket known to be in it), else the
    // ioctl on the socket itself.
    let fromNetlink =
      netlink && context == 0 && sockaff_socket_in_own_netns(socket.rawValue) == 1
      ? EthtoolNetlink.rss(interface: interface) : nil
    var function: UInt8 = 0
    var transform: UInt8 = 0
    var keySize: UInt32 = 0
    var tableSize: UInt32 = 0
    var key: [UInt8]
    var table: [UInt32]
    if let fromNetlink {
      (function, key, table) = (fromNetlink.hashFunction, fromNetlink.key, fromNetlink.table)
      transform = UInt8(truncatingIfNeeded: fromNetlink.inputTransform)
    } else {
      let operation = "SIOCETHTOOL ETHTOOL_GRSSH(\(interface)\(context == 0 ? "" : ", context \(context)"))"
      guard
        sockaff_ethtool_rss(socket.rawValue, interface, context, &function, &transform, nil, &keySize, nil, &tableSize)
          == 0
      else {
        throw .lastErrno(operation: operation, hint: "no RSS configuration on this interface")
      }
      key = [UInt8](repeating: 0, count: Int(keySize))
      table = [UInt32](repeating: 0, count: Int(tableSize))
      let result = key.withUnsafeMutableBufferPointer { keyBuffer in
        table.withUnsafeMutableBufferPointer { tableBuffer in
          sockaff_ethtool_rss(
            socket.rawValue, interface, context, &function, &transform, keyBuffer.baseAddress, &keySize,
            tableBuffer.baseAddress,
            &tableSize)
        }
      }
      guard result == 0 else { throw .lastErrno(operation: operation) }
      // Sizes can only have changed in between if the driver was reconfigured.
      key = Array(key.prefix(Int(keySize)))
      table = Array(table.prefix(Int(tableSize)))
    }
    var rings: UInt64 = 0
    let rxRings = sockaff_ethtool_rx_rings(socket.rawValue, interface, &rings) == 0 ? Int(rings) : nil
    var rules: UInt32 = 0
    let ntupleRules = sockaff_ethtool_rule_count(socket.rawValue, interface, &rules) == 0 ? Int(rules) : 0
    var flags: UInt32 = 0
    let haveFlags = sockaff_ethtool_flags(socket.rawValue, interface, &flags) == 0
    return RSSConfiguration(
      interface: interface, hashFunction: HashFunction(bits: function), key: key, table: table, rxRings: rxRings,
      ntupleRules: ntupleRules, ntupleEnabled: haveFlags && flags & UInt32(ETH_FLAG_NTUPLE.rawValue) != 0,
      source: fromNetlink == nil ? "ioctl" : "netlink", inputTransform: InputTransform(bits: UInt32(transform)),
      deliversHash: haveFlags && flags & UInt32(ETH_FLAG_RXHASH.rawValue) != 0)
  }

  /// RSS context 0's indirection table of `interface` in sockaff's own
  /// network namespace, through a socket of its own.
  static func table(interface: String) throws(SockaffError) -> [UInt32] {
    try withControlSocket { (socket) throws(SockaffError) in
      try read(interface: interface, through: socket, netlink: false).table
    }
  }

  /// Writes that table (its size must be the driver's); key and hash
  /// function stay.
  static func setTable(_ table: [UInt32], interface: String) throws(SockaffError) {
    try withControlSocket { (socket) throws(SockaffError) in
      let status = table.withUnsafeBufferPointer {
        sockaff_ethtool_set_rss_table(socket.rawValue, interface, $0.baseAddress, UInt32($0.count))
      }
      guard status == 0 else { throw .lastErrno(operation: "SIOCETHTOOL ETHTOOL_SRSSH(\(interface))") }
    }
  }

  private static func withControlSocket<T>(_ body: (FileDescriptor) throws(SockaffError) -> T) throws(SockaffError)
    -> T
  {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard socket >= 0 else { throw .lastErrno(operation: "socket(AF_INET)") }
    defer { close(socket) }
    return try body(FileDescriptor(rawValue: socket))
  }

  /// The fields the NIC hashes for `flow` (RXH_* bits); nil when the driver
  /// does not say.
  public static func hashFields(interface: String, flow: FlowType, through socket: FileDescriptor) -> HashFields? {
    var bits: UInt64 = 0
    guard sockaff_ethtool_hash_fields(socket.rawValue, interface, flow.ethtoolFlowType, &bits) == 0 else { return nil }
    return HashFields(rawValue: bits)
  }
}

/// RXH_* bits: which parts of a flow the hash covers.
public struct HashFields: OptionSet, Sendable, Equatable {
  public let rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }

  public static let sourceAddress = HashFields(rawValue: UInt64(RXH_IP_SRC))
  public static let destinationAddress = HashFields(rawValue: UInt64(RXH_IP_DST))
  public static let sourcePort = HashFields(rawValue: UInt64(RXH_L4_B_0_1))
  public static let destinationPort = HashFields(rawValue: UInt64(RXH_L4_B_2_3))

  public static let addresses: HashFields = [.sourceAddress, .destinationAddress]
  public static let addressesAndPorts: HashFields = [
    .sourceAddress, .destinationAddress, .sourcePort, .destinationPort,
  ]
}
