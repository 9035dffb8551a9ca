/// `query --predict`: where RSS will put a socket's received packets before
/// any arrive, from the interface's RSS configuration (the counterpart of
/// what Windows' SIO_QUERY_RSS_PROCESSOR_INFO returns for a new socket).
/// Shares the core field names of `SocketAffinity`; `source` is
/// "predicted". docs/USAGE.md documents the fields.
public struct PredictedAffinity: Sendable, JSONFields {
  public let pid: Int32
  public let fd: Int32
  public let command: String?
  public let transport: SocketKind.TransportProtocol
  public let local: String?
  public let remote: String?
  public let interface: String
  public let rxQueue: Int
  public let irq: Int?
  /// The CPU the queue's interrupt runs on, when that is one CPU and no RPS
  /// moves the packets on; else nil, and `candidateCPUs` names the choice.
  public let cpu: Int?
  public let processor: ProcessorNumber?
  public let numaNode: Int?
  /// The CPUs the packets can be processed on: RPS's CPUs when RPS is on
  /// the queue, else the interrupt's.
  public let candidateCPUs: [Int]
  public let hashFunction: String
  /// Where the RSS configuration came from: "netlink" or "ioctl".
  public let rssSource: String
  public let hash: UInt32
  /// Whether the hash covers the ports (else the addresses alone).
  public let hashedPorts: Bool
  public let tableIndex: Int
  public let tableSize: Int
  public let keyBytes: Int
  /// The ntuple rule that picks the queue, before RSS: its queue, or the
  /// RSS context whose table (hash, table fields) does. Nil: RSS decides.
  public let ntupleRule: FlowRuleSteering?
  public let path: SteeringPath
  /// The prediction's hash against the NIC's, where the tracer kept the
  /// socket's (`HashCheck`); unverifiable before any packet.
  public let hashCheck: HashCheck?
  /// What decides beyond the IRQ and how the prediction took it, or nil.
  public let note: String?

  public init(
    pid: Int32, fd: Int32, command: String?, transport: SocketKind.TransportProtocol, local: String?,
    remote: String?, interface: String, rxQueue: Int, irq: Int?, cpu: Int?, processor: ProcessorNumber?,
    numaNode: Int?, candidateCPUs: [Int], hashFunction: String, rssSource: String, hash: UInt32, hashedPorts: Bool,
    tableIndex: Int,
    tableSize: Int, keyBytes: Int, ntupleRule: FlowRuleSteering? = nil, path: SteeringPath, hashCheck: HashCheck? = nil,
    note: String?
  ) {
    self.hashCheck = hashCheck
    self.pid = pid
    self.fd = fd
    self.command = command
    self.transport = transport
    self.local = local
    self.remote = remote
    self.interface = interface
    self.rxQueue = rxQueue
    self.irq = irq
    self.cpu = cpu
    self.processor = processor
    self.numaNode = numaNode
    self.candidateCPUs = candidateCPUs
    self.hashFunction = hashFunction
    self.rssSource = rssSource
    self.hash = hash
    self.hashedPorts = hashedPorts
    self.tableIndex = tableIndex
    self.tableSize = tableSize
    self.keyBytes = keyBytes
    self.ntupleRule = ntupleRule
    self.path = path
    self.note = note
  }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("pid", pid)
    try visitor.field("fd", fd)
    try visitor.field("command", command)
    try visitor.field("protocol", transport.rawValue)
    try visitor.field("local", local)
    try visitor.field("remote", remote)
    try visitor.field("source", "predicted")
    try visitor.field("interface", interface)
    try visitor.field("rx_queue", rxQueue)
    try visitor.field("irq", irq)
    try visitor.field("cpu", cpu)
    try visitor.field("group", processor?.group)
    try visitor.field("number", processor?.number)
    try visitor.field("numa_node", numaNode)
    try visitor.field("candidate_cpus", candidateCPUs)
    try visitor.field("hash_function", hashFunction)
    try visitor.field("rss_source", rssSource)
    try visitor.field("hash", UInt64(hash))
    try visitor.field("hashed_ports", hashedPorts)
    try visitor.field("table_index", tableIndex)
    try visitor.field("table_size", tableSize)
    try visitor.field("key_bytes", keyBytes)
    try visitor.field("ntuple_rule", ntupleRule)
    try visitor.field("path", path)
    try visitor.field("hash_check", hashCheck)
    try visitor.field("note", note)
  }
}
