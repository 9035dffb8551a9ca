import FoundationEssentials
import Glibc

/// One socket's receive affinity: the answer to `sockaff query`, and the
/// Linux counterpart of Windows' SOCKET_PROCESSOR_AFFINITY, with more.
/// Encoded with the stable snake_case field names of DESIGN.md; fields that
/// are unknown are present as null rather than missing.
public struct SocketAffinity: Sendable, Encodable {
  public enum Source: String, Sendable, Codable {
    /// From sockaff's BPF record of the socket's received packets.
    case bpf
    /// From the kernel's SO_INCOMING_CPU: nothing traced for this socket yet.
    case kernel
  }

  public struct CPUShare: Sendable, Encodable, Equatable {
    public let cpu: Int
    public let numaNode: Int?
    public let packets: UInt64
    /// packets / all packets of the socket, 0...1.
    public let share: Double

    enum CodingKeys: String, CodingKey {
      case cpu, packets, share
      case numaNode = "numa_node"
    }
  }

  /// Where the socket's data is consumed compared with where it is received.
  public struct Locality: Sendable, Encodable, Equatable {
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

    enum CodingKeys: String, CodingKey {
      case source
      case sameCPU = "same_cpu"
      case sameNode = "same_node"
    }

    public func encode(to encoder: any Encoder) throws {
      var c = encoder.container(keyedBy: CodingKeys.self)
      try c.encode(sameCPU, forKey: .sameCPU)
      try c.encode(sameNode, forKey: .sameNode)
      try c.encode(source, forKey: .source)
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
  /// Packets received on CPUs beyond the record's bounded per-CPU slots.
  public let otherCPUsPackets: UInt64?
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

  /// Packets received per NUMA node, from `cpus` (nil node: CPU unknown).
  public var packetsByNode: [Int: UInt64] {
    cpus.reduce(into: [:]) { totals, share in totals[share.numaNode ?? -1, default: 0] += share.packets }
  }

  enum CodingKeys: String, CodingKey {
    case pid, fd, cookie, family, local, remote, connected, cpu, group, number, interface
    case ifindex, packets, bytes, cpus, source, reads, locality, command
    case networkNamespace = "netns"
    case consumerCPU = "consumer_cpu"
    case threadNodes = "thread_nodes"
    case crossNUMA = "cross_numa"
    case transport = "protocol"
    case numaNode = "numa_node"
    case rxQueue = "rx_queue"
    case napiID = "napi_id"
    case cpuChanges = "cpu_changes"
    case otherCPUsPackets = "other_cpus_packets"
    case firstSeen = "first_seen"
    case lastSeen = "last_seen"
    case kernelIncomingCPU = "kernel_incoming_cpu"
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(pid, forKey: .pid)
    try c.encode(fd, forKey: .fd)
    try c.encode(command, forKey: .command)
    try c.encode(networkNamespace, forKey: .networkNamespace)
    try c.encode(cookie, forKey: .cookie)
    try c.encode(family, forKey: .family)
    try c.encode(transport, forKey: .transport)
    try c.encode(local, forKey: .local)
    try c.encode(remote, forKey: .remote)
    try c.encode(connected, forKey: .connected)
    try c.encode(cpu, forKey: .cpu)
    try c.encode(processor?.group, forKey: .group)
    try c.encode(processor?.number, forKey: .number)
    try c.encode(numaNode, forKey: .numaNode)
    try c.encode(rxQueue, forKey: .rxQueue)
    try c.encode(napiID, forKey: .napiID)
    try c.encode(ifindex, forKey: .ifindex)
    try c.encode(interface, forKey: .interface)
    try c.encode(packets, forKey: .packets)
    try c.encode(bytes, forKey: .bytes)
    try c.encode(cpuChanges, forKey: .cpuChanges)
    try c.encode(cpus, forKey: .cpus)
    try c.encode(otherCPUsPackets, forKey: .otherCPUsPackets)
    try c.encode(firstSeen.map(Self.timestamp), forKey: .firstSeen)
    try c.encode(lastSeen.map(Self.timestamp), forKey: .lastSeen)
    try c.encode(kernelIncomingCPU, forKey: .kernelIncomingCPU)
    try c.encode(source, forKey: .source)
    try c.encode(consumerCPU, forKey: .consumerCPU)
    try c.encode(reads, forKey: .reads)
    try c.encode(threadNodes, forKey: .threadNodes)
    try c.encode(locality, forKey: .locality)
    try c.encode(crossNUMA, forKey: .crossNUMA)
  }

  /// RFC 3339 UTC with milliseconds, e.g. "2026-11-25T10:41:07.123Z".
  /// Written by hand from gmtime_r: a format style per call was a large
  /// part of a 100k-socket `list --json`.
  public static func timestamp(_ date: Date) -> String {
    let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func padded(_ value: Int32, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(width - digits.count, 0)) + digits
    }
    let millis = Int32(milliseconds - Int64(seconds) * 1000)
    return padded(parts.tm_year + 1900, 4) + "-" + padded(parts.tm_mon + 1, 2) + "-" + padded(parts.tm_mday, 2) + "T"
      + padded(parts.tm_hour, 2) + ":" + padded(parts.tm_min, 2) + ":" + padded(parts.tm_sec, 2) + "."
      + padded(millis, 3) + "Z"
  }
}
