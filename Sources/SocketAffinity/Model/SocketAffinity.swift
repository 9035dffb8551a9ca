import FoundationEssentials

/// One socket's receive affinity: the answer to `sockaff query`, and the
/// Linux counterpart of Windows' SOCKET_PROCESSOR_AFFINITY, with more.
/// Encoded with the stable snake_case field names of docs/USAGE.md's table; fields that
/// are unknown are present as null rather than missing.
public struct SocketAffinity: Sendable, JSONFields {
  public enum Source: String, Sendable, Codable {
    /// From sockaff's BPF record of the socket's received packets.
    case bpf
    /// From the kernel's SO_INCOMING_CPU: nothing traced for this socket yet.
    case kernel
  }

  public struct CPUShare: Sendable, JSONFields, Equatable {
    public let cpu: Int
    public let numaNode: Int?
    public let packets: UInt64
    /// packets / all packets of the socket, 0...1.
    public let share: Double

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("cpu", cpu)
      try visitor.field("numa_node", numaNode)
      try visitor.field("packets", packets)
      try visitor.field("share", share)
    }
  }

  /// Where the socket's data is consumed compared with where it is received.
  public struct Locality: Sendable, JSONFields, Equatable {
    public enum Source: String, Sendable, Codable {
      /// Exact: every read (recvmsg) compared with the receiving CPU, in the kernel.
      case recvmsg
      /// Approximate: the CPUs the process's threads last ran on, sampled now.
      case threadSampling = "thread_sampling"
    }
    /// Share of reads on the CPU that received the latest packet (recvmsg only).
    public let sameCPU: Double?
    /// Share of reads (recvmsg) or of received packets (thread sampling) on
    /// the NUMA node where the reading threads are.
    public let sameNode: Double
    public let source: Source
    /// recvmsg only: 1 when every read was compared, SOCKAFF_READ_SAMPLE
    /// when one in that many was (`trace --sampled-reads`): then `reads` and
    /// the shares are estimates. nil for thread sampling.
    public let readSampling: Int?

    public init(sameCPU: Double?, sameNode: Double, source: Source, readSampling: Int? = nil) {
      self.sameCPU = sameCPU
      self.sameNode = sameNode
      self.source = source
      self.readSampling = source == .recvmsg ? (readSampling ?? 1) : nil
    }

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("same_cpu", sameCPU)
      try visitor.field("same_node", sameNode)
      try visitor.field("source", source.rawValue)
      try visitor.field("read_sampling", readSampling)
    }
  }

  public let pid: Int32
  public let fd: Int32
  /// The process's command name (/proc/P/comm).
  public let command: String?
  /// Inode of the process's network namespace (as lsns shows it).
  public let networkNamespace: UInt64?
  public let cookie: UInt64
  public let family: SocketKind.Family
  public let transport: SocketKind.TransportProtocol
  public let local: String?
  public let remote: String?
  /// Has a peer: a connected UDP socket, or a TCP socket past connect/accept.
  public let connected: Bool
  /// Last receiving CPU (Linux id).
  public let cpu: Int
  public let processor: ProcessorNumber?
  public let numaNode: Int?
  public let rxQueue: UInt32?
  public let napiID: UInt32?
  public let ifindex: UInt32?
  public let interface: String?
  public let packets: UInt64?
  public let bytes: UInt64?
  public let cpuChanges: UInt32?
  public let cpus: [CPUShare]
  /// Packets received on CPUs other than the first one while the per-CPU
  /// pool was full: counted in `packets`, not split by CPU (0 normally).
  public let otherCPUsPackets: UInt64?
  /// `cpus` holds every packet, each on the CPU that received it (false:
  /// `other_cpus_packets` are unattributed); nil without a record.
  public var cpusComplete: Bool? { otherCPUsPackets.map { $0 == 0 } }
  public let firstSeen: Date?
  public let lastSeen: Date?
  /// The kernel's SO_INCOMING_CPU for the same socket (-1: not set), for comparison.
  public let kernelIncomingCPU: Int32
  public let source: Source
  /// CPU of the latest read of this socket's data (recvmsg), when traced.
  public let consumerCPU: Int?
  /// Reads (recvmsg calls that returned data) traced since attach.
  public let reads: UInt64?
  /// NUMA nodes where the process's threads last ran.
  public let threadNodes: [Int]
  public let locality: Locality?
  /// Most of the socket's data is consumed (or, without recvmsg tracing,
  /// received) on a NUMA node other than its consumers'.
  public let crossNUMA: Bool?
  /// The interrupt of the queue the latest packet came from (`path.irq`'s number).
  public var irq: Int? { path?.interrupt?.number }
  /// Where the packets went from the NIC to the reader; nil when no packet
  /// was traced (nothing to follow) or the path was not asked for.
  public var path: SteeringPath? {
    get { pathBox?.path }
    set { pathBox = newValue.map(PathBox.init) }
  }
  /// The path behind one reference: a listing moves and sorts 100k answers,
  /// and the path inline would make each ~200 bytes larger.
  var pathBox: PathBox? = nil
  /// The packets' hash against RSS's prediction for the flow: verified,
  /// contradicted or unverifiable, with both hashes. nil when no interface
  /// is known to check against.
  public var hashCheck: HashCheck? {
    get { hashCheckBox?.check }
    set { hashCheckBox = newValue.map(HashCheckBox.init) }
  }
  /// Behind one reference, as the path is.
  var hashCheckBox: HashCheckBox? = nil
  /// The holder's cgroup (v2), relative to the cgroup2 root: which
  /// container or service holds the socket. nil without one.
  public var cgroup: String? = nil
  /// What this answer cannot tell, and why (the tracer is not attached), or nil.
  public var limits: String? = nil

  /// Packets received per NUMA node, from `cpus` (nil node: CPU unknown).
  public var packetsByNode: [Int: UInt64] {
    cpus.reduce(into: [:]) { totals, share in totals[share.numaNode ?? -1, default: 0] += share.packets }
  }

  /// The documented field names (docs/USAGE.md), in the order every JSON output shows them.
  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("pid", pid)
    try visitor.field("fd", fd)
    try visitor.field("command", command)
    try visitor.field("netns", networkNamespace)
    try visitor.field("cgroup", cgroup)
    try visitor.field("cookie", cookie)
    try visitor.field("family", family.rawValue)
    try visitor.field("protocol", transport.rawValue)
    try visitor.field("local", local)
    try visitor.field("remote", remote)
    try visitor.field("connected", connected)
    try visitor.field("cpu", cpu)
    try visitor.field("group", processor?.group)
    try visitor.field("number", processor?.number)
    try visitor.field("numa_node", numaNode)
    try visitor.field("rx_queue", rxQueue)
    try visitor.field("napi_id", napiID)
    try visitor.field("ifindex", ifindex)
    try visitor.field("interface", interface)
    try visitor.field("irq", irq)
    try visitor.field("packets", packets)
    try visitor.field("bytes", bytes)
    try visitor.field("cpu_changes", cpuChanges)
    try visitor.field("cpus", cpus)
    try visitor.field("other_cpus_packets", otherCPUsPackets)
    try visitor.field("cpus_complete", cpusComplete)
    try visitor.field("first_seen", firstSeen)
    try visitor.field("last_seen", lastSeen)
    try visitor.field("kernel_incoming_cpu", kernelIncomingCPU)
    try visitor.field("source", source.rawValue)
    try visitor.field("consumer_cpu", consumerCPU)
    try visitor.field("reads", reads)
    try visitor.field("thread_nodes", threadNodes)
    try visitor.field("locality", locality)
    try visitor.field("cross_numa", crossNUMA)
    try visitor.field("path", path)
    try visitor.field("hash_check", hashCheck)
    try visitor.field("limits", limits)
  }
}

extension JSONLines {
  /// The answers as a JSON array, one object per line, in parts (see `parallelDocument`).
  public static func document(_ values: [SocketAffinity], write: ([UInt8]) throws -> Void) throws {
    try parallelDocument(values, write: write)
  }

  /// One answer as a compact JSON object.
  public static func encode(_ value: SocketAffinity) throws -> String { try object(value) }
}

/// `SocketAffinity.path`'s storage.
final class PathBox: Sendable {
  let path: SteeringPath
  init(_ path: SteeringPath) { self.path = path }
}

/// `SocketAffinity.hashCheck`'s storage.
final class HashCheckBox: Sendable {
  let check: HashCheck
  init(_ check: HashCheck) { self.check = check }
}
