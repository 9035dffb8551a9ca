import CSockaffABI

/// A socket's BPF record (struct sockaff_record), decoded: the per-CPU share
/// is reassembled from the slots plus the current run on last_cpu.
public struct ReceiveRecord: Sendable {
  public let cookie: UInt64
  public let packets: UInt64
  public let bytes: UInt64
  public let lastCPU: Int
  public let cpuChanges: UInt32
  /// nil when the driver did not record one (skb->queue_mapping is rx queue + 1).
  public let rxQueue: UInt32?
  public let napiID: UInt32
  public let ifindex: UInt32
  public let firstJiffies: UInt64
  public let lastJiffies: UInt64
  /// Packets per CPU, highest first; CPUs beyond the record's slots are in `otherPackets`.
  public let packetsByCPU: [(cpu: Int, packets: UInt64)]
  public let otherPackets: UInt64
  /// Consumer side (tp_btf/sock_recv_length): CPU of the latest read, if any.
  public let readerCPU: Int?
  /// recvmsg calls that returned data, and those on the receiving CPU / node.
  public let reads: UInt64
  public let readsSameCPU: UInt64
  public let readsSameNode: UInt64

  public init(_ raw: sockaff_record) {
    cookie = raw.cookie
    packets = raw.packets
    bytes = raw.bytes
    lastCPU = Int(raw.last_cpu)
    cpuChanges = raw.cpu_changes
    rxQueue = raw.rx_queue > 0 ? raw.rx_queue - 1 : nil
    napiID = raw.napi_id
    ifindex = raw.ifindex
    firstJiffies = raw.first_jiffies
    lastJiffies = raw.last_jiffies

    var byCPU: [Int: UInt64] = [:]
    let slotCPUs = withUnsafeBytes(of: raw.slot_cpu) { Array($0.bindMemory(to: UInt16.self)) }
    let slotPackets = withUnsafeBytes(of: raw.slot_packets) { Array($0.bindMemory(to: UInt64.self)) }
    for (cpu, count) in zip(slotCPUs, slotPackets) where UInt32(cpu) != SOCKAFF_NO_CPU {
      byCPU[Int(cpu), default: 0] += count
    }
    // The current run on last_cpu has not been credited to a slot yet.
    let currentRun = raw.packets &- raw.run_start_packets
    if currentRun > 0 { byCPU[Int(raw.last_cpu), default: 0] += currentRun }
    packetsByCPU = byCPU.map { (cpu: $0.key, packets: $0.value) }
      .sorted { $0.packets != $1.packets ? $0.packets > $1.packets : $0.cpu < $1.cpu }
    otherPackets = raw.other_packets
    reads = raw.reads_and_cpu & SOCKAFF_READS_COUNT_MASK
    readerCPU = reads > 0 ? Int(raw.reads_and_cpu >> SOCKAFF_READS_COUNT_BITS) : nil
    readsSameCPU = raw.reads_same_cpu
    readsSameNode = raw.reads_same_node
  }

}
