import Glibc

extension AffinityQuery {
  /// Where RSS will deliver socket `fd` of process `pid`'s packets, from the
  /// receiving interface's RSS configuration: the Toeplitz hash of the
  /// socket's flow, the indirection table's entry, that queue's interrupt
  /// and its CPU and node. Needs no tracer. Throws notPredictable, saying
  /// why, where RSS does not decide (loopback, veth, no connected peer,
  /// another hash function, ntuple rules).
  public func predict(pid: Int32, fd: Int32) throws(SockaffError) -> PredictedAffinity {
    let handle = try ProcessHandle(pid: pid)
    let socket = try TargetSocket(process: handle, fd: fd)
    let inspection = SocketInspection(topology: topology)
    let kind = try inspection.kind(of: socket)
    let operation = "predict pid \(pid) fd \(fd)"
    func impossible(_ why: String) -> SockaffError { SockaffError(.notPredictable, operation: operation, hint: why) }
    guard let local = socket.endpoint(peer: false), let remote = socket.endpoint(peer: true) else {
      throw impossible(
        kind.transport == .tcp
          ? "not connected (a listener's connections are flows of their own: ask for an accepted socket)"
          : "not connected: its flows are not known before they arrive")
    }
    let process = inspection.facts(pid: pid)
    if let namespace = process.networkNamespace, namespace != ProcFS.ownNetworkNamespace {
      throw impossible("in network namespace \(namespace): run sockaff in that namespace to read its interfaces")
    }
    guard let interface = InterfaceAddresses.interface(holding: local.address) else {
      throw impossible("no interface holds the socket's address \(socket.address(peer: false) ?? "?")")
    }
    let configuration: RSSConfiguration
    do {
      configuration = try RSSConfiguration.read(interface: interface, through: socket.descriptor)
    } catch {
      throw impossible("\(interface) has no RSS to predict from (\(error.description))")
    }
    if configuration.ntupleRules > 0 {
      throw impossible("\(interface) has \(configuration.ntupleRules) ntuple rules, which override RSS for their flows")
    }
    let flow = ReceivedFlow(
      source: remote.address, sourcePort: remote.port, destination: local.address, destinationPort: local.port,
      tcp: kind.transport == .tcp)
    let fields = RSSConfiguration.hashFields(interface: interface, flow: flow.flowType, through: socket.descriptor)
    let prediction: RSSPrediction
    do {
      prediction = try RSSPrediction.predict(flow: flow, configuration: configuration, fields: fields)
    } catch {
      throw impossible("\(interface): \(error.description)")
    }
    let queues = InterfaceQueues(interface: interface)
    let line = queues.irqByQueue[prediction.rxQueue]
    let irqCPUs = line.flatMap { queues.irqCPUs[$0.irq] } ?? []
    let rps = queues.rpsCPUs[prediction.rxQueue] ?? []
    let candidates = rps.isEmpty ? irqCPUs : rps
    let cpu = candidates.count == 1 ? candidates[0] : nil
    let interrupt = line.map {
      SteeringPath.Interrupt(
        number: $0.irq, name: $0.name, cpus: irqCPUs, nodes: Set(irqCPUs.compactMap(topology.node(ofCPU:))).sorted(),
        source: queues.irqSource[prediction.rxQueue] ?? "sysfs")
    }
    let rfs = queues.rfs(queue: prediction.rxQueue)
    if rfs && configuration.ntupleEnabled {
      throw impossible(
        "\(interface) has n-tuple filtering and RFS on rx-\(prediction.rxQueue): accelerated RFS steers a flow to "
          + "its reader's queue, not RSS's")
    }
    var notes: [String] = []
    if !rps.isEmpty { notes.append("RPS on rx-\(prediction.rxQueue) spreads its packets over cpus \(rps)") }
    if rfs { notes.append("RFS on rx-\(prediction.rxQueue) moves a flow to the CPU that last read it") }
    let path = SteeringPath(
      interface: interface, deviceNode: queues.deviceNode, rxQueue: prediction.rxQueue,
      napiID: queues.napiByQueue[prediction.rxQueue],
      interrupt: interrupt, rpsCPUs: rps, rfs: rfs, receiveCPU: cpu, receiveNode: cpu.flatMap(topology.node(ofCPU:)),
      readerCPU: nil, readerNode: nil,
      unresolved: line == nil ? "no interrupt of \(interface)'s device names RX queue \(prediction.rxQueue)" : nil)
    try handle.requireSameProcess()
    return PredictedAffinity(
      pid: pid, fd: fd, command: process.command, transport: kind.transport, local: socket.address(peer: false),
      remote: socket.address(peer: true), interface: interface, rxQueue: prediction.rxQueue, irq: line?.irq,
      cpu: cpu, processor: cpu.flatMap(topology.processorNumber(ofCPU:)), numaNode: cpu.flatMap(topology.node(ofCPU:)),
      candidateCPUs: candidates, hashFunction: configuration.hashFunction.description,
      rssSource: configuration.source, hash: prediction.hash,
      hashedPorts: prediction.hashedPorts, tableIndex: prediction.tableIndex, tableSize: configuration.table.count,
      keyBytes: configuration.key.count, path: path, note: notes.isEmpty ? nil : notes.joined(separator: "; "))
  }
}
