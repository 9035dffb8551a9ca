/// What `sockaff advise` proposes: changes to the host's receive layout,
/// each a write of one sysfs or procfs file with its value before and
/// after, and the effect the prediction model (`QueueProcessing`) gives it
/// per traced socket; and what it does not propose, and why.
public struct ReceiveAdvice: Sendable, Equatable {
  public struct Change: Sendable, Equatable, JSONFields {
    public enum What: String, Sendable, Codable {
      /// /proc/irq/N/smp_affinity_list: where a queue's interrupt (and so
      /// its NAPI poll) runs.
      case irqAffinity = "irq_affinity"
      /// /sys/class/net/DEV/queues/rx-Q/rps_cpus: RPS's CPUs (0: off).
      case rpsCPUs = "rps_cpus"
      /// RSS context 0's indirection table of the device at `path`
      /// (/sys/class/net/DEV), through ethtool (ETHTOOL_SRSSH): which queue
      /// each hash bucket's flows go to. Its values are the table's queue
      /// numbers, comma-separated.
      case rssTable = "rss_table"
      /// The affinity of the kernel thread at `path` (/proc/PID) that
      /// polls a queue under threaded NAPI (`napi/DEV-ID`): where its
      /// packets are processed, the IRQ only waking it.
      case napiThreadAffinity = "napi_thread_affinity"
    }

    public let what: What
    public let interface: String
    /// The queue it concerns; nil for a table change (every queue's flows).
    public let rxQueue: Int?
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
    public var command: String {
      switch what {
      case .rssTable: return "ethtool -X \(interface) \(Self.tableInWords(after))"
      case .napiThreadAffinity: return "taskset -pc \(after) \(path.split(separator: "/").last ?? "")"
      case .irqAffinity, .rpsCPUs: return "echo \(after) > \(path)"
      }
    }

    /// A table's value as ethtool's arguments would make it: "equal 4" or
    /// "weight 1 1 0 0" (the queues' shares; not the order of the buckets).
    public static func tableInWords(_ value: String) -> String {
      let queues = value.split(separator: ",").compactMap { Int($0) }
      let count = (queues.max() ?? 0) + 1
      if queues.enumerated().allSatisfy({ $0.element == $0.offset % count }) { return "equal \(count)" }
      var weights = (0..<count).map { queue in queues.filter { $0 == queue }.count }
      // The smallest weights of the same shares: 64 64 is 1 1.
      func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
      let divisor = max(weights.reduce(0, gcd), 1)
      weights = weights.map { $0 / divisor }
      return "weight \(weights.map(String.init).joined(separator: " "))"
    }

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("what", what.rawValue)
      try visitor.field("interface", interface)
      try visitor.field("rx_queue", rxQueue)
      try visitor.field("irq", irq)
      try visitor.field("path", path)
      try visitor.field("before", before)
      try visitor.field("after", after)
      try visitor.field("command", command)
      try visitor.field("reason", reason)
      try visitor.field("effects", effects)
    }
  }

  /// One socket's processing before and after, by the model.
  public struct Effect: Sendable, Equatable, JSONFields {
    public let pid: Int32
    public let fd: Int32
    public let command: String?
    public let local: String?
    public let remote: String?
    public let rxQueue: Int
    /// The queue it moves to (a table change); nil: it stays on `rxQueue`.
    public var afterRxQueue: Int? = nil
    public let beforeCPUs: [Int]
    public let beforeNodes: [Int]
    public let afterCPUs: [Int]
    public let afterNodes: [Int]
    /// The nodes its holders' threads may run on.
    public let readNodes: [Int]
    /// Whether the socket is one the command was asked about (--pid,
    /// --port, --cgroup); others on the same queue move with it.
    public let inScope: Bool

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("pid", pid)
      try visitor.field("fd", fd)
      try visitor.field("command", command)
      try visitor.field("local", local)
      try visitor.field("remote", remote)
      try visitor.field("rx_queue", rxQueue)
      try visitor.field("after_rx_queue", afterRxQueue)
      try visitor.field("before_cpus", beforeCPUs)
      try visitor.field("before_nodes", beforeNodes)
      try visitor.field("after_cpus", afterCPUs)
      try visitor.field("after_nodes", afterNodes)
      try visitor.field("read_nodes", readNodes)
      try visitor.field("in_scope", inScope)
    }

    /// "pid 812 fd 9 10.0.0.2:7000 <- 10.0.0.1:4000: received on CPU 4 (node
    /// 2) instead of CPU 1 (node 0); read on node 2"
    public var line: String {
      func cpus(_ cpus: [Int], _ nodes: [Int]) -> String {
        let c = CPUList.format(cpus)
        let n = CPUList.format(nodes)
        return "\(cpus.count == 1 ? "CPU" : "CPUs") \(c) (\(nodes.count == 1 ? "node" : "nodes") \(n))"
      }
      let read = CPUList.joined(readNodes)
      let queue = afterRxQueue.map { " on rx-\($0) (now rx-\(rxQueue))" } ?? ""
      return "pid \(pid) fd \(fd) \(local ?? "-") <- \(remote ?? "-"): received\(queue) on "
        + "\(cpus(afterCPUs, afterNodes)) instead of \(cpus(beforeCPUs, beforeNodes)); read on node \(read)"
    }
  }

  /// Something not advised, and why: the model cannot predict its effect,
  /// or the change is not sockaff's to make.
  public struct Withheld: Sendable, Equatable, JSONFields {
    public let interface: String?
    public let rxQueue: Int?
    /// "pid P fd F" where it concerns one socket.
    public let socket: String?
    public let why: String

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("interface", interface)
      try visitor.field("rx_queue", rxQueue)
      try visitor.field("socket", socket)
      try visitor.field("why", why)
    }
  }

  public internal(set) var changes: [Change] = []
  public internal(set) var withheld: [Withheld] = []
  /// Host-wide remarks (irqbalance).
  public internal(set) var notes: [String] = []

  public init() {}
}
