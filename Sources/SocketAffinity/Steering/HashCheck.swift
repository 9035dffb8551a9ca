/// A prediction checked against the NIC itself. A NIC that hashes for RSS
/// hands the hash to the kernel with each packet (skb->hash), the tracer
/// keeps a connected socket's, and the Toeplitz hash of the socket's flow
/// under the key, fields and input transform the driver reports must equal
/// it bit for bit:
///
/// - verified: equal; RSS is what the driver says, so the prediction's
///   queue is the NIC's.
/// - contradicted: the NIC's hash differs. The NIC's function, key, fields
///   or transform are not what the driver reports (or were changed since
///   the packet), so every prediction on that interface is suspect.
/// - unverifiable: nothing to compare: no packet or no hash yet, a hash
///   the kernel computed itself (loopback, veth, a NIC that does not hand
///   over its hash), an unconnected socket (many flows), or a function
///   sockaff does not compute. The observed hash is still shown.
public struct HashCheck: Sendable, Equatable, JSONFields {
  public enum Verdict: String, Sendable, Equatable {
    case verified, contradicted, unverifiable
  }

  /// The hash the socket's latest packet carried (nil: none kept).
  public let observedHash: UInt32?
  /// Whether that hash is the NIC's RSS hash (the interface hands the NIC's
  /// hash over with each packet), else the kernel's own.
  public let fromNIC: Bool
  /// What RSS's function gives for the flow, where it can be computed.
  public let predictedHash: UInt32?
  public let verdict: Verdict
  /// Why, in words, naming what differs or what is missing.
  public let reason: String

  public init(observedHash: UInt32?, fromNIC: Bool, predictedHash: UInt32?, verdict: Verdict, reason: String) {
    self.observedHash = observedHash
    self.fromNIC = fromNIC
    self.predictedHash = predictedHash
    self.verdict = verdict
    self.reason = reason
  }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("observed_hash", observedHash.map(UInt64.init))
    try visitor.field("from_nic", fromNIC)
    try visitor.field("predicted_hash", predictedHash.map(UInt64.init))
    try visitor.field("verdict", verdict.rawValue)
    try visitor.field("reason", reason)
  }

  static func hex(_ hash: UInt32) -> String { "0x" + String(hash, radix: 16) }

  /// What the interface's RSS is, for `check`: its configuration and the
  /// fields it hashes for the flow's type, or why there is none.
  public enum Interface: Sendable {
    /// Loopback, veth: no NIC, no RSS; the hash is the kernel's (or, over
    /// loopback, the sending socket's).
    case software(String)
    /// A device without RSS to report (the kernel's answer).
    case noRSS(String, why: String)
    case rss(RSSConfiguration, fields: HashFields?)
  }

  /// The verdict for a socket whose packets carried `observed` (nil: none
  /// kept), connected or not, whose flow is `flow` (needed only with a
  /// hash), received on `interface`.
  public static func check(observed: UInt32?, connected: Bool, flow: ReceivedFlow?, interface: Interface) -> HashCheck {
    func unverifiable(_ why: String, fromNIC: Bool = false, predicted: UInt32? = nil) -> HashCheck {
      HashCheck(observedHash: observed, fromNIC: fromNIC, predictedHash: predicted, verdict: .unverifiable, reason: why)
    }
    guard connected else {
      return unverifiable("not connected: its packets are many flows, whose hashes are not kept")
    }
    let configuration: RSSConfiguration
    let fields: HashFields?
    switch interface {
    case .software(let name):
      return unverifiable(
        observed == nil
          ? "\(name) has no NIC to hash its packets"
          : "\(name) has no NIC: the hash is the kernel's own (over loopback, the sender's)")
    case .noRSS(let name, let why):
      return unverifiable("\(name) reports no RSS (\(why)): no function to check its hash against")
    case .rss(let rss, let hashed):
      (configuration, fields) = (rss, hashed)
    }
    let name = configuration.interface
    guard configuration.deliversHash else {
      return unverifiable(
        "\(name) does not hand the kernel its RSS hash (receive-hashing off): any hash its packets carry is the kernel's"
      )
    }
    guard let observed else {
      return unverifiable("no hash in its packets yet", fromNIC: true)
    }
    guard let flow else { return unverifiable("its addresses could not be read", fromNIC: true) }
    let predicted: RSSPrediction
    do {
      predicted = try RSSPrediction.predict(flow: flow, configuration: configuration, fields: fields)
    } catch {
      return unverifiable("\(name): \(error.description): the NIC's hash cannot be recomputed here", fromNIC: true)
    }
    if predicted.hash == observed {
      let hashed = predicted.hashedPorts ? "addresses and ports" : "addresses"
      let transform = configuration.inputTransform == .none ? "" : ", \(configuration.inputTransform)"
      return HashCheck(
        observedHash: observed, fromNIC: true, predictedHash: predicted.hash, verdict: .verified,
        reason: "the NIC's hash is \(configuration.hashFunction) of the \(hashed)\(transform) with \(name)'s key")
    }
    // What the NIC did hash, if it is a variant the driver did not report.
    var found: String?
    for (ports, transform) in [false, true].flatMap({ ports in
      [RSSConfiguration.InputTransform.none, .symmetricXor, .symmetricOrXor].map { (ports, $0) }
    }) where (ports, transform) != (predicted.hashedPorts, configuration.inputTransform) {
      let variant = RSSConfiguration(
        interface: name, hashFunction: configuration.hashFunction, key: configuration.key, table: configuration.table,
        rxRings: configuration.rxRings, ntupleRules: configuration.ntupleRules, inputTransform: transform)
      if (try? RSSPrediction.toeplitzHash(flow: flow, configuration: variant, ports: ports)) == observed {
        let hashed = ports ? "addresses and ports" : "addresses only"
        found = "the NIC hashed the \(hashed) with input transform \(transform)"
        break
      }
    }
    let reported =
      "\(predicted.hashedPorts ? "addresses and ports" : "addresses only"), input transform \(configuration.inputTransform)"
    let why =
      found.map { "\($0), not what \(name) reports (\(reported))" }
      ?? "its function, key or fields are not what \(name) reports (\(configuration.hashFunction), "
      + "\(configuration.key.count)-byte key, \(reported)), or changed after the packet"
    return HashCheck(
      observedHash: observed, fromNIC: true, predictedHash: predicted.hash, verdict: .contradicted,
      reason: "the NIC's hash \(hex(observed)) is not the predicted \(hex(predicted.hash)): \(why)")
  }
}
