/// A flow as the receiving host's NIC sees it: the peer is the packet's
/// source, the socket's own address its destination. IPv4 addresses are 4
/// bytes (an IPv4-mapped IPv6 socket receives IPv4 packets, so its
/// addresses are given as IPv4), IPv6 16.
public struct ReceivedFlow: Sendable, Equatable {
  public let source: [UInt8]
  public let sourcePort: UInt16
  public let destination: [UInt8]
  public let destinationPort: UInt16
  public let tcp: Bool

  public init(source: [UInt8], sourcePort: UInt16, destination: [UInt8], destinationPort: UInt16, tcp: Bool) {
    self.source = source
    self.sourcePort = sourcePort
    self.destination = destination
    self.destinationPort = destinationPort
    self.tcp = tcp
  }

  public var flowType: FlowType {
    switch (source.count == 4, tcp) {
    case (true, true): .tcp4
    case (true, false): .udp4
    case (false, true): .tcp6
    case (false, false): .udp6
    }
  }
}

/// What RSS will do with a flow's packets: the Toeplitz hash over the
/// fields the NIC hashes, the indirection table entry it picks, and that
/// entry's queue. Nil fields of the reason say why there is no prediction.
public struct RSSPrediction: Sendable, Equatable {
  public let hash: UInt32
  public let tableIndex: Int
  public let rxQueue: Int
  public let hashedPorts: Bool

  /// Why RSS cannot be predicted for a flow on this configuration.
  public enum Impossible: Error, Equatable, CustomStringConvertible {
    case notToeplitz(RSSConfiguration.HashFunction)
    case emptyTable
    case keyTooShort(bytes: Int, needed: Int)
    case unknownHashFields
    case unknownInputTransform(RSSConfiguration.InputTransform)

    public var description: String {
      switch self {
      case .notToeplitz(let function):
        // mlx5's XOR8 and ENA's CRC32 are defined by firmware: no driver
        // publishes their input order, seed and test vectors.
        "the hash function is \(function): sockaff recomputes Toeplitz only, as no driver publishes "
          + "its XOR or CRC32 input, seed and test vectors"
      case .emptyTable: "the indirection table is empty"
      case .keyTooShort(let bytes, let needed): "the RSS key has \(bytes) bytes, the flow needs \(needed)"
      case .unknownHashFields: "the driver does not say which fields it hashes"
      case .unknownInputTransform(let transform): "the input transform is \(transform), not one sockaff knows"
      }
    }
  }

  /// `fields` from `RSSConfiguration.hashFields` (nil: the driver did not
  /// say). A hash over addresses alone ignores the ports; one that covers
  /// neither addresses nor ports is not a hash this predicts.
  public static func predict(flow: ReceivedFlow, configuration: RSSConfiguration, fields: HashFields?)
    throws(Impossible)
    -> RSSPrediction
  {
    guard configuration.hashFunction == .toeplitz else { throw .notToeplitz(configuration.hashFunction) }
    guard !configuration.table.isEmpty else { throw .emptyTable }
    guard let fields, fields == .addresses || fields == .addressesAndPorts else { throw .unknownHashFields }
    let ports = fields == .addressesAndPorts
    let hash = try toeplitzHash(flow: flow, configuration: configuration, ports: ports)
    // Drivers take the hash's low bits: the table sizes are powers of two
    // (the kernel's ethtool_rxfh_indir_default is `index % queues`).
    let index = Int(hash % UInt32(configuration.table.count))
    return RSSPrediction(
      hash: hash, tableIndex: index, rxQueue: Int(configuration.table[index]), hashedPorts: ports)
  }

  /// The Toeplitz hash of `flow` under `configuration`'s key and input
  /// transform, over the addresses and, when `ports`, the ports.
  static func toeplitzHash(flow: ReceivedFlow, configuration: RSSConfiguration, ports: Bool) throws(Impossible)
    -> UInt32
  {
    guard
      let input = Toeplitz.input(
        source: flow.source, destination: flow.destination, sourcePort: flow.sourcePort,
        destinationPort: flow.destinationPort, ports: ports, transform: configuration.inputTransform)
    else { throw .unknownInputTransform(configuration.inputTransform) }
    guard let toeplitz = Toeplitz(key: configuration.key), let hash = toeplitz.hash(input) else {
      throw .keyTooShort(bytes: configuration.key.count, needed: input.count + 4)
    }
    return hash
  }
}
