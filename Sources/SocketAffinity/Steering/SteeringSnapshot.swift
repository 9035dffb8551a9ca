import FoundationEssentials
import Glibc

/// What decides where each NIC's packets go, as `trace` found it when it
/// attached: RSS's hash function, input transform, key and table, the RX
/// queues, and each queue's IRQ CPUs. Kept in a file beside the pins
/// (`PinLayout.steeringSnapshot`), so that `status` and the metrics can say
/// what changed since: a new key, table, function or channel count
/// (`ethtool -X`, `ethtool -L`), an IRQ moved (irqbalance, a hand-set
/// affinity). Predictions and paths always read the host as it is now; the
/// snapshot only tells an operator that it is not what it was.
public struct SteeringSnapshot: Codable, Sendable, Equatable {
  public struct NIC: Codable, Sendable, Equatable {
    public let interface: String
    public let rxQueues: Int
    public let hashFunction: String?
    public let inputTransform: String?
    /// The key, in hex; nil without RSS.
    public let key: String?
    public let table: [UInt32]?
    /// "rx-N" → the CPUs its IRQ is delivered to.
    public let irqCPUs: [String: [Int]]

    enum CodingKeys: String, CodingKey {
      case interface, key, table
      case rxQueues = "rx_queues"
      case hashFunction = "hash_function"
      case inputTransform = "input_transform"
      case irqCPUs = "irq_cpus"
    }

    init(queues: InterfaceQueues, configuration: RSSConfiguration?) {
      interface = queues.interface
      rxQueues = queues.rxQueues
      hashFunction = configuration?.hashFunction.description
      inputTransform = configuration?.inputTransform.description
      key = configuration.map { $0.key.map { String($0, radix: 16).leftPadded(to: 2) }.joined() }
      table = configuration?.table
      var cpus: [String: [Int]] = [:]
      for (queue, line) in queues.irqByQueue { cpus["rx-\(queue)"] = queues.irqCPUs[line.irq] ?? [] }
      irqCPUs = cpus
    }

    public init(
      interface: String, rxQueues: Int, hashFunction: String?, inputTransform: String?, key: String?,
      table: [UInt32]?, irqCPUs: [String: [Int]]
    ) {
      self.interface = interface
      self.rxQueues = rxQueues
      self.hashFunction = hashFunction
      self.inputTransform = inputTransform
      self.key = key
      self.table = table
      self.irqCPUs = irqCPUs
    }
  }

  /// One difference between the snapshot and the host now.
  public struct Change: Codable, Sendable, Equatable {
    public let interface: String
    /// `rss_key`, `rss_table`, `hash_function`, `input_transform`,
    /// `rx_queues`, `irq_cpus` (with `queue`), `interface` (gone or new).
    public let what: String
    public let queue: Int?
    public let before: String
    public let after: String
  }

  /// When it was taken (Unix seconds).
  public let takenAt: Double
  public let nics: [NIC]

  enum CodingKeys: String, CodingKey {
    case nics
    case takenAt = "taken_at"
  }

  public init(takenAt: Double, nics: [NIC]) {
    self.takenAt = takenAt
    self.nics = nics
  }

  /// The host's NICs now, from `InterfaceSteering.all`'s reading.
  public static func now(_ interfaces: [InterfaceSteering]) -> SteeringSnapshot {
    var clock = timespec()
    clock_gettime(CLOCK_REALTIME, &clock)
    return SteeringSnapshot(
      takenAt: Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9, nics: interfaces.compactMap(\.snapshot))
  }

  /// What differs in `now`, NIC by NIC, in a fixed order.
  public func changes(to now: SteeringSnapshot) -> [Change] {
    var changes: [Change] = []
    let current = Dictionary(now.nics.map { ($0.interface, $0) }, uniquingKeysWith: { a, _ in a })
    let before = Dictionary(nics.map { ($0.interface, $0) }, uniquingKeysWith: { a, _ in a })
    func describe(_ table: [UInt32]?) -> String {
      guard let table else { return "none" }
      return "\(table.count) entries over queues \(Set(table).sorted().map(String.init).joined(separator: ","))"
    }
    for old in nics {
      guard let new = current[old.interface] else {
        changes.append(
          Change(interface: old.interface, what: "interface", queue: nil, before: "present", after: "gone"))
        continue
      }
      func add(_ what: String, _ a: String?, _ b: String?) {
        if a != b {
          changes.append(
            Change(interface: old.interface, what: what, queue: nil, before: a ?? "none", after: b ?? "none"))
        }
      }
      add("rx_queues", "\(old.rxQueues)", "\(new.rxQueues)")
      add("hash_function", old.hashFunction, new.hashFunction)
      add("input_transform", old.inputTransform, new.inputTransform)
      // A key is secret enough not to print whole: its first bytes tell,
      // and keys alike in those are told apart by their order.
      if old.key != new.key {
        let (a, b) = (old.key.map { String($0.prefix(8)) + "…" }, new.key.map { String($0.prefix(8)) + "…" })
        let alike = a == b
        changes.append(
          Change(
            interface: old.interface, what: "rss_key", queue: nil, before: alike ? "the first key" : a ?? "none",
            after: alike ? "another key" : b ?? "none"))
      }
      if old.table != new.table {
        changes.append(
          Change(
            interface: old.interface, what: "rss_table", queue: nil, before: describe(old.table),
            after: describe(new.table)))
      }
      let queues = Set(old.irqCPUs.keys).union(new.irqCPUs.keys).sorted {
        (Int($0.dropFirst(3)) ?? 0) < (Int($1.dropFirst(3)) ?? 0)
      }
      for queue in queues where old.irqCPUs[queue] != new.irqCPUs[queue] {
        func cpus(_ list: [Int]?) -> String {
          list.map { "cpus " + $0.map(String.init).joined(separator: ",") } ?? "none"
        }
        changes.append(
          Change(
            interface: old.interface, what: "irq_cpus", queue: Int(queue.dropFirst(3)),
            before: cpus(old.irqCPUs[queue]), after: cpus(new.irqCPUs[queue])))
      }
    }
    for new in now.nics where before[new.interface] == nil {
      changes.append(
        Change(interface: new.interface, what: "interface", queue: nil, before: "absent", after: "present"))
    }
    return changes
  }

  /// The snapshot at `path`, nil when there is none (or it cannot be read).
  public static func load(_ path: String) -> SteeringSnapshot? {
    guard let text = try? readTextFile(path) else { return nil }
    return try? JSONDecoder().decode(SteeringSnapshot.self, from: Data(text.utf8))
  }

  /// Writes it to `path` (0600, its directory made 0700), whole or not at all.
  public func save(_ path: String) throws(SockaffError) {
    let bytes: [UInt8]
    do { bytes = Array(try JSONEncoder().encode(self)) } catch {
      throw SockaffError(.other, operation: "encode the steering snapshot", hint: "\(error)")
    }
    try writeWholeFile(path, bytes)
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}
