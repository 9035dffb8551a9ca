import Foundation

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

  public let pid: Int32
  public let fd: Int32
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

  enum CodingKeys: String, CodingKey {
    case pid, fd, cookie, family, local, remote, connected, cpu, group, number, interface
    case ifindex, packets, bytes, cpus, source
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
  }

  /// RFC 3339 UTC with milliseconds, e.g. "2026-11-25T10:41:07.123Z".
  public static func timestamp(_ date: Date) -> String {
    Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
  }
}
