/// What `sockaff advise` proposes: changes to the host's receive layout,
/// each a write of one sysfs or procfs file with its value before and
/// after, and the effect the prediction model (`QueueProcessing`) gives it
/// per traced socket; and what it does not propose, and why.
public struct ReceiveAdvice: Sendable, Equatable, Encodable {
  public struct Change: Sendable, Equatable, Encodable {
    public enum What: String, Sendable, Codable {
      /// /proc/irq/N/smp_affinity_list: where a queue's interrupt (and so
      /// its NAPI poll) runs.
      case irqAffinity = "irq_affinity"
      /// /sys/class/net/DEV/queues/rx-Q/rps_cpus: RPS's CPUs (0: off).
      case rpsCPUs = "rps_cpus"
    }

    public let what: What
    public let interface: String
    public let rxQueue: Int
    public let irq: Int?
    /// The file written, its value now, and the value written.
    public let path: String
    public let before: String
    public let after: String
    /// Why, in one line.
    public let reason: String
    /// The traced sockets on `rxQueue` whose processing CPUs this advice
    /// (all of its changes together) moves.
    public internal(set) var effects: [Effect]

    /// The shell line that makes the change by hand.
    public var command: String { "echo \(after) > \(path)" }

    enum CodingKeys: String, CodingKey {
      case what, interface, irq, path, before, after, reason, effects, command
      case rxQueue = "rx_queue"
    }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(what, forKey: .what)
      try container.encode(interface, forKey: .interface)
      try container.encode(rxQueue, forKey: .rxQueue)
      try container.encode(irq, forKey: .irq)
      try container.encode(path, forKey: .path)
      try container.encode(before, forKey: .before)
      try container.encode(after, forKey: .after)
      try container.encode(command, forKey: .command)
      try container.encode(reason, forKey: .reason)
      try container.encode(effects, forKey: .effects)
    }
  }

  /// One socket's processing before and after, by the model.
  public struct Effect: Sendable, Equatable, Encodable {
    public let pid: Int32
    public let fd: Int32
    public let command: String?
    public let local: String?
    public let remote: String?
    public let rxQueue: Int
    public let beforeCPUs: [Int]
    public let beforeNodes: [Int]
    public let afterCPUs: [Int]
    public let afterNodes: [Int]
    /// The nodes its holders' threads may run on.
    public let readNodes: [Int]
    /// Whether the socket is one the command was asked about (--pid,
    /// --port, --cgroup); others on the same queue move with it.
    public let inScope: Bool

    enum CodingKeys: String, CodingKey {
      case pid, fd, command, local, remote
      case rxQueue = "rx_queue"
      case beforeCPUs = "before_cpus"
      case beforeNodes = "before_nodes"
      case afterCPUs = "after_cpus"
      case afterNodes = "after_nodes"
      case readNodes = "read_nodes"
      case inScope = "in_scope"
    }

    /// "pid 812 fd 9 10.0.0.2:7000 <- 10.0.0.1:4000: received on CPU 4 (node
    /// 2) instead of CPU 1 (node 0); read on node 2"
    public var line: String {
      func cpus(_ cpus: [Int], _ nodes: [Int]) -> String {
        let c = cpus.map(String.init).joined(separator: ",")
        let n = nodes.map(String.init).joined(separator: ",")
        return "\(cpus.count == 1 ? "CPU" : "CPUs") \(c) (\(nodes.count == 1 ? "node" : "nodes") \(n))"
      }
      let read = readNodes.map(String.init).joined(separator: ",")
      return "pid \(pid) fd \(fd) \(local ?? "-") <- \(remote ?? "-"): received on "
        + "\(cpus(afterCPUs, afterNodes)) instead of \(cpus(beforeCPUs, beforeNodes)); read on node \(read)"
    }
  }

  /// Something not advised, and why: the model cannot predict its effect,
  /// or the change is not sockaff's to make.
  public struct Withheld: Sendable, Equatable, Encodable {
    public let interface: String?
    public let rxQueue: Int?
    /// "pid P fd F" where it concerns one socket.
    public let socket: String?
    public let why: String

    enum CodingKeys: String, CodingKey {
      case interface, socket, why
      case rxQueue = "rx_queue"
    }
  }

  public internal(set) var changes: [Change] = []
  public internal(set) var withheld: [Withheld] = []
  /// Host-wide remarks (irqbalance).
  public internal(set) var notes: [String] = []

  public init() {}
}
