import CSockaffABI

/// A socket's BPF record (struct sockaff_record) with its pool slot's
/// per-CPU shares (struct sockaff_cpu_share), decoded: the owner CPU's
/// packets from the record, every other CPU's from its own share.
public struct ReceiveRecord: Sendable {
  public let cookie: UInt64
  /// All packets of the socket: every CPU's, plus the unattributed ones.
  public let packets: UInt64
  public let bytes: UInt64
  /// CPU of the latest packet (with several CPUs receiving at once: one
  /// that received in the latest jiffy).
  public let lastCPU: Int
  public let cpuChanges: UInt32
  /// nil when the driver did not record one (skb->queue_mapping is rx queue + 1).
  public let rxQueue: UInt32?
  public let napiID: UInt32
  public let ifindex: UInt32
  /// The hash a connected socket's latest packet carried (skb->hash),
  /// nil when none was kept: an unconnected socket, or no hash (0) in its
  /// packets. `HashCheck` says whether it is the NIC's and what RSS predicts.
  public let rxHash: UInt32?
  /// Times the kept hash changed, its first value included.
  public let rxHashChanges: UInt32
  public let firstJiffies: UInt64
  public let lastJiffies: UInt64
  /// Packets per CPU, highest first: every CPU that received the socket,
  /// exactly, unless some packets are in `otherPackets`.
  public let packetsByCPU: [(cpu: Int, packets: UInt64)]
  /// Packets on CPUs other than the owner while the socket had no pool slot
  /// (the pool was full): counted, but not split by CPU.
  public let otherPackets: UInt64
  /// Consumer side (tp_btf/sock_recv_length): CPU of the latest read, if any.
  public let readerCPU: Int?
  /// recvmsg calls that returned data, and those on the receiving CPU / node.
  public let reads: UInt64
  public let readsSameCPU: UInt64
  public let readsSameNode: UInt64

  /// `shares` holds the pool slot's value on every possible CPU, index = CPU
  /// (empty when the socket has no slot); entries of another socket that
  /// held the slot before (cookie differs) are not this socket's.
  public init(_ raw: sockaff_record, shares: [sockaff_cpu_share] = []) {
    cookie = raw.cookie
    let owner = Int(raw.owner_cpu) - 1
    var byCPU: [Int: UInt64] = [:]
    if raw.owner.packets > 0 { byCPU[owner] = raw.owner.packets }
    var totalPackets = raw.owner.packets &+ raw.unpooled_packets
    var totalBytes = raw.owner.bytes &+ raw.unpooled_bytes
    // What the latest packet said about its queue, NAPI and interface is
    // kept by the CPU that received it.
    var latest = raw.owner
    Self.forEachShare(of: raw.cookie, in: shares) { cpu, rx in
      byCPU[cpu, default: 0] += rx.packets
      totalPackets &+= rx.packets
      totalBytes &+= rx.bytes
      latest.last_jiffies = max(latest.last_jiffies, rx.last_jiffies)
      if cpu == Int(raw.latest_cpu) {
        (latest.rx_queue, latest.napi_id, latest.ifindex) = (rx.rx_queue, rx.napi_id, rx.ifindex)
      }
    }
    packets = totalPackets
    bytes = totalBytes
    lastCPU = Int(raw.latest_cpu)
    cpuChanges = raw.cpu_changes
    rxQueue = latest.rx_queue > 0 ? latest.rx_queue - 1 : nil
    napiID = latest.napi_id
    ifindex = latest.ifindex
    rxHash = raw.rx_hash_changes > 0 && raw.rx_hash != 0 ? raw.rx_hash : nil
    rxHashChanges = raw.rx_hash_changes
    firstJiffies = raw.first_jiffies
    lastJiffies = latest.last_jiffies
    packetsByCPU = byCPU.map { (cpu: $0.key, packets: $0.value) }
      .sorted { $0.packets != $1.packets ? $0.packets > $1.packets : $0.cpu < $1.cpu }
    otherPackets = raw.unpooled_packets
    reads = raw.reads_and_cpu & SOCKAFF_READS_COUNT_MASK
    readerCPU = reads > 0 ? Int(raw.reads_and_cpu >> SOCKAFF_READS_COUNT_BITS) : nil
    readsSameCPU = raw.reads_same_cpu
    readsSameNode = raw.reads_same_node
  }
}

extension ReceiveRecord {
  /// The one rule for a socket's pool shares, for every reader (`query`
  /// through this decoder, a scrape's summary through its held-socket
  /// entries): a CPU's copy of the slot counts when it carries the socket's
  /// cookie (a reused slot's stale copies carry the one before) and has
  /// packets. `body` gets each such CPU and its counts, in CPU order.
  static func forEachShare(of cookie: UInt64, in shares: [sockaff_cpu_share], _ body: (Int, sockaff_rx) -> Void) {
    for (cpu, share) in shares.enumerated() where share.cookie == cookie && share.rx.packets > 0 { body(cpu, share.rx) }
  }
}
