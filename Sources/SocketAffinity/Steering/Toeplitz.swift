/// The Toeplitz hash that RSS NICs compute over a received packet's flow,
/// as Microsoft specifies it ("RSS hashing functions"): for each bit of the
/// input, from the first byte's most significant bit on, XOR the key's
/// current leftmost 32 bits into the result when the bit is set, then shift
/// the key left by one. The input is the flow as the receiving host sees it:
/// source address, destination address, then source and destination port
/// when the hash covers ports, all in network byte order.
public struct Toeplitz: Sendable {
  public let key: [UInt8]

  /// A key must cover the input plus 32 bits: 40 bytes (the common size)
  /// hash IPv6 with ports (36 bytes) and everything shorter.
  public init?(key: [UInt8]) {
    guard key.count >= 8 else { return nil }
    self.key = key
  }

  /// The longest input this key can hash.
  public var maximumInputBytes: Int { key.count - 4 }

  public func hash(_ input: [UInt8]) -> UInt32? {
    guard input.count <= maximumInputBytes else { return nil }
    var result: UInt32 = 0
    // The key's leftmost 32 bits, and the next key byte to shift in.
    var window = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
    for (index, byte) in input.enumerated() {
      let next = key[index + 4]
      for bit in 0..<8 {
        if byte & (0x80 >> bit) != 0 { result ^= window }
        window = window << 1 | UInt32((next >> (7 - bit)) & 1)
      }
    }
    return result
  }

  /// The input for a flow: addresses (4 or 16 bytes each, network order),
  /// then the ports when `ports` is true, combined by `transform` first
  /// (`RSSConfiguration.InputTransform`); nil for a transform not known here.
  public static func input(
    source: [UInt8], destination: [UInt8], sourcePort: UInt16, destinationPort: UInt16, ports: Bool,
    transform: RSSConfiguration.InputTransform = .none
  ) -> [UInt8]? {
    func bytes(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xff)] }
    let first: [UInt8]
    let second: [UInt8]
    let firstPort: UInt16
    let secondPort: UInt16
    switch transform {
    case .none:
      (first, second, firstPort, secondPort) = (source, destination, sourcePort, destinationPort)
    case .symmetricXor:
      let xor = zip(source, destination).map { $0 ^ $1 }
      (first, second) = (xor, xor)
      (firstPort, secondPort) = (sourcePort ^ destinationPort, sourcePort ^ destinationPort)
    case .symmetricOrXor:
      (first, second) = (zip(source, destination).map { $0 | $1 }, zip(source, destination).map { $0 ^ $1 })
      (firstPort, secondPort) = (sourcePort | destinationPort, sourcePort ^ destinationPort)
    case .other:
      return nil
    }
    return first + second + (ports ? bytes(firstPort) + bytes(secondPort) : [])
  }
}
