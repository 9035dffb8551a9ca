import Glibc

/// Packet rates between successive listings, for `sockaff watch`: each
/// socket (pid, fd, cookie) is compared with its previous sample.
public struct ReceiveRates: Sendable {
  public struct Entry: Sendable, JSONFields {
    public let socket: SocketAffinity
    /// Packets per second since the previous sample; nil for a new socket.
    public let packetRate: Double?
    /// The receiving CPU at the previous sample, when it has changed since.
    public let previousCPU: Int?

    /// The socket's own fields, plus packet_rate and previous_cpu.
    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try socket.visitFields(&visitor)
      try visitor.field("packet_rate", packetRate)
      try visitor.field("previous_cpu", previousCPU)
    }
  }

  struct Key: Hashable {
    let pid: Int32
    let fd: Int32
    let cookie: UInt64
  }

  private var previous: [Key: (packets: UInt64, cpu: Int)] = [:]
  private var previousTime: Int64?

  public init() {}

  /// Rates for `sockets`, sampled now, highest rate first (then most packets).
  public mutating func update(_ sockets: [SocketAffinity]) -> [Entry] {
    let now = SystemClock.nanoseconds(CLOCK_MONOTONIC)
    let seconds = previousTime.map { Double(now - $0) / 1e9 } ?? 0
    var next: [Key: (packets: UInt64, cpu: Int)] = [:]
    let entries = sockets.map { socket -> Entry in
      let key = Key(pid: socket.pid, fd: socket.fd, cookie: socket.cookie)
      let packets = socket.packets ?? 0
      next[key] = (packets, socket.cpu)
      guard let before = previous[key], seconds > 0 else {
        return Entry(socket: socket, packetRate: nil, previousCPU: nil)
      }
      return Entry(
        socket: socket, packetRate: Double(packets &- before.packets) / seconds,
        previousCPU: before.cpu == socket.cpu ? nil : before.cpu)
    }
    previous = next
    previousTime = now
    return entries.sorted {
      ($0.packetRate ?? -1, $0.socket.packets ?? 0) > ($1.packetRate ?? -1, $1.socket.packets ?? 0)
    }
  }
}

extension JSONLines {
  /// The watch entries as a JSON array, one object per line.
  public static func document(_ values: [ReceiveRates.Entry], write: ([UInt8]) throws -> Void) throws {
    try parallelDocument(values, write: write)
  }
}
