/// The path of a socket's received packets, hop by hop, with the NUMA node
/// at each: interface → RX queue → NAPI → IRQ → the IRQ's CPUs → RPS/RFS →
/// the CPU that processed them → the CPU that read them. Each hop is what
/// the kernel says now (sysfs, procfs, ethtool) about what sockaff observed
/// (the record's queue, NAPI id and CPUs). `query` shows it; docs/USAGE.md
/// documents its fields.
public struct SteeringPath: Sendable, Equatable, JSONFields {
  /// The queue's interrupt: its number, the driver's name for it, the CPUs
  /// it is delivered to (effective affinity) and their nodes.
  public struct Interrupt: Sendable, Equatable, JSONFields {
    public let number: Int
    public let name: String
    public let cpus: [Int]
    public let nodes: [Int]
    /// Where the queue → IRQ mapping came from: "sysfs" (the device's MSI
    /// vectors and the IRQ's name in /proc/interrupts).
    public let source: String

    public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
      try visitor.field("number", number)
      try visitor.field("name", name)
      try visitor.field("cpus", cpus)
      try visitor.field("nodes", nodes)
      try visitor.field("source", source)
    }
  }

  public let interface: String
  /// Loopback, veth and other interfaces without a device: no RX queue
  /// interrupts, RSS or NIC node to show (the path is interface → CPUs).
  public let softwareInterface: Bool
  /// The NIC's node (`device/numa_node`); nil for a software interface or
  /// a host that does not say.
  public let deviceNode: Int?
  public let rxQueue: Int?
  public let napiID: UInt32?
  public let interrupt: Interrupt?
  /// RPS's CPUs on this queue (empty: off) and whether RFS steers it.
  public let rpsCPUs: [Int]
  public let rfs: Bool
  /// Under threaded NAPI, the kernel thread that polls the queue's NAPI:
  /// it, not the IRQ's CPU, processes the packets.
  public let napiThread: NAPIThread?
  /// Busy polling, when it applies to the socket: its reader processes
  /// the packets while it polls.
  public let busyPolling: BusyPolling?
  /// XDP programs on the interface: they see each frame first, and one
  /// with a cpumap moves the stack to the CPU it picks per frame.
  public let xdp: InterfaceXDP?
  /// What may send the flow to another queue than RSS's, which the path
  /// cannot see per flow: "ntuple_rules" (the interface has some),
  /// "atr" (Intel's Flow Director ATR), "arfs" (n-tuple filtering with RFS
  /// on the queue: accelerated RFS).
  public let mayResteer: [String]
  public let receiveCPU: Int?
  public let receiveNode: Int?
  public let readerCPU: Int?
  public let readerNode: Int?
  /// Where the reader's CPU came from: "recvmsg" (the read tracepoint,
  /// each read) or "threads" (every thread of the holder last ran there:
  /// kernels without the read tracepoint); nil with no reader known.
  public let readerSource: String?
  /// Why the packets were processed off the IRQ's CPUs: "napi_thread",
  /// "xdp_cpumap", "busy_poll", "rfs", "rps", or "unknown"; nil when they
  /// were not.
  public let movedOffInterruptCause: String?
  /// The hops that cost locality: the packets were processed on a CPU the
  /// IRQ does not go to (`movedOffInterruptCause` says what moved them); the IRQ's CPUs are on another
  /// node than the NIC; the reader is on another node than the receiver.
  /// nil: not known.
  public let movedOffInterruptCPU: Bool?
  public let interruptOffDeviceNode: Bool?
  public let readerOffReceiveNode: Bool?
  /// What could not be resolved, and why (nil: everything was).
  public let unresolved: String?

  /// `readerCPUs`: where the socket's readers run (the traced reader, or
  /// the holder's threads), to tell busy polling and RFS apart from the rest.
  public init(
    interface: String, softwareInterface: Bool = false, deviceNode: Int?, rxQueue: Int?, napiID: UInt32?,
    interrupt: Interrupt?, rpsCPUs: [Int],
    rfs: Bool, napiThread: NAPIThread? = nil, busyPolling: BusyPolling? = nil, xdp: InterfaceXDP? = nil,
    mayResteer: [String] = [], receiveCPU: Int?, receiveNode: Int?,
    readerCPU: Int?, readerNode: Int?, readerSource: String? = nil, readerCPUs: [Int] = [], unresolved: String?
  ) {
    self.interface = interface
    self.softwareInterface = softwareInterface
    self.deviceNode = deviceNode
    self.rxQueue = rxQueue
    self.napiID = napiID
    self.interrupt = interrupt
    self.rpsCPUs = rpsCPUs
    self.rfs = rfs
    self.receiveCPU = receiveCPU
    self.receiveNode = receiveNode
    self.readerCPU = readerCPU
    self.readerNode = readerNode
    self.unresolved = unresolved
    self.napiThread = napiThread
    self.busyPolling = busyPolling
    self.xdp = xdp
    self.mayResteer = mayResteer
    self.readerSource = readerSource
    let moved = interrupt.flatMap { irq in
      receiveCPU.flatMap { irq.cpus.isEmpty ? nil : !irq.cpus.contains($0) }
    }
    movedOffInterruptCPU = moved
    let readers = Set(readerCPUs + (readerCPU.map { [$0] } ?? []))
    movedOffInterruptCause =
      moved == true
      ? receiveCPU.map { cpu in
        if let thread = napiThread, thread.lastCPU == cpu || thread.allowedCPUs.contains(cpu) { return "napi_thread" }
        if xdp?.cpumapCPUs.contains(cpu) == true { return "xdp_cpumap" }
        if busyPolling?.active == true && readers.contains(cpu) { return "busy_poll" }
        if rfs && readers.contains(cpu) { return "rfs" }
        if rpsCPUs.contains(cpu) { return "rps" }
        return "unknown"
      } : nil
    interruptOffDeviceNode = interrupt.flatMap { irq in
      deviceNode.flatMap { irq.nodes.isEmpty ? nil : !irq.nodes.contains($0) }
    }
    readerOffReceiveNode = readerNode.flatMap { reader in receiveNode.map { $0 != reader } }
  }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("interface", interface)
    try visitor.field("software_interface", softwareInterface)
    try visitor.field("device_node", deviceNode)
    try visitor.field("rx_queue", rxQueue)
    try visitor.field("napi_id", napiID)
    try visitor.field("irq", interrupt)
    try visitor.field("rps_cpus", rpsCPUs)
    try visitor.field("rfs", rfs)
    try visitor.field("napi_thread", napiThread)
    try visitor.field("busy_polling", busyPolling)
    try visitor.field("xdp", xdp)
    try visitor.field("may_resteer", mayResteer)
    try visitor.field("receive_cpu", receiveCPU)
    try visitor.field("receive_node", receiveNode)
    try visitor.field("reader_cpu", readerCPU)
    try visitor.field("reader_node", readerNode)
    try visitor.field("reader_source", readerSource)
    try visitor.field("moved_off_irq_cpu", movedOffInterruptCPU)
    try visitor.field("moved_off_irq_cpu_cause", movedOffInterruptCause)
    try visitor.field("irq_off_device_node", interruptOffDeviceNode)
    try visitor.field("reader_off_receive_node", readerOffReceiveNode)
    try visitor.field("unresolved", unresolved)
  }
}
