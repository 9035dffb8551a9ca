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
        let c = CPUList.joined(cpus)
        let n = CPUList.joined(nodes)
        return "\(cpus.count == 1 ? "CPU" : "CPUs") \(c) (\(nodes.count == 1 ? "node" : "nodes") \(n))"
      }
      let read = CPUList.joined(readNodes)
      return "pid \(pid) fd \(fd) \(local ?? "-") <- \(remote ?? "-"): received on "
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
