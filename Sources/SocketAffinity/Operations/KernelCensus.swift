/// The host's TCP and UDP sockets summed up from the kernel's own fields, no
/// program on the packet path (`serve --source kernel`, `export --source
/// kernel`): by the CPU, node and RX queue of each socket's latest packet,
/// each socket once however many processes hold it. Bounded like the traced
/// scrape's aggregates: CPUs, nodes and queues, not sockets.
///
/// What the kernel keeps is the latest packet's CPU (SO_INCOMING_CPU) and
/// NAPI (SO_INCOMING_NAPI_ID): a socket whose packets arrive on several
/// CPUs counts for the last one only, and the kernel keeps no CPU for TCP
/// listeners and unconnected UDP sockets (`withoutReceiveCPU`).
public struct KernelCensus: Sendable, Equatable {
  /// Sockets (each once) with a receive CPU.
  public var sockets = 0
  /// ... by the CPU of their latest packet.
  public var socketsByCPU: [Int: Int] = [:]
  /// ... by that CPU's node (-1: a CPU the topology does not know).
  public var socketsByNode: [Int: Int] = [:]
  /// ... by the interface and RX queue of their latest packet's NAPI, where
  /// the netdev family names it.
  public var socketsByQueue: [Queue: Int] = [:]
  /// Sockets (one per holder) received on a node where none of the holder's
  /// threads last ran.
  public var crossNUMASockets = 0
  /// TCP and UDP sockets for which the kernel keeps no receive CPU.
  public var withoutReceiveCPU = 0
  /// Processes that could not be read.
  public var skippedProcesses = 0
  /// How the sockets were read (`SocketListing.CensusReader`'s name).
  public var reader: String?

  public struct Queue: Hashable, Sendable, Comparable {
    public let interface: String
    public let queue: UInt32

    public static func < (a: Queue, b: Queue) -> Bool { (a.interface, a.queue) < (b.interface, b.queue) }
  }

  public init() {}

  public init(listing: SocketListing.Result, topology: Topology) {
    var seen = Set<UInt64>(minimumCapacity: listing.sockets.count)
    for socket in listing.sockets {
      if Self.isCrossNUMA(socket, topology: topology) { crossNUMASockets += 1 }
      guard seen.insert(socket.cookie).inserted else { continue }
      sockets += 1
      socketsByCPU[socket.cpu, default: 0] += 1
      socketsByNode[socket.numaNode ?? -1, default: 0] += 1
      if let interface = socket.interface, let queue = socket.rxQueue {
        socketsByQueue[Queue(interface: interface, queue: queue), default: 0] += 1
      }
    }
    withoutReceiveCPU = listing.withoutReceiveCPU
    skippedProcesses = listing.notPermitted.count
    reader = listing.censusReader?.rawValue
  }

  /// Received on a node where none of the holder's threads last ran: no
  /// reads are traced, so the threads decide, by the traced answers' own
  /// sampled rule with the latest packet's CPU as the socket's one share.
  static func isCrossNUMA(_ socket: SocketAffinity, topology: Topology) -> Bool {
    guard socket.numaNode != nil else { return false }
    return SocketInspection.sampledSameNode(
      packetsByCPU: [(socket.cpu, 1)], otherPackets: 0, threadNodes: socket.threadNodes, topology: topology
    ).map(SocketInspection.isCrossNUMA) ?? false
  }
}
