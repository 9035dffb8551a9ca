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
    let queues = inspection.steering.queues(of: interface)
    let queue = prediction.rxQueue
    let line = queues.irqByQueue[queue]
    let irqCPUs = line.flatMap { queues.irqCPUs[$0.irq] } ?? []
    let rps = queues.rpsCPUs[queue] ?? []
    let rfs = queues.rfs(queue: queue)
    if rfs && configuration.ntupleEnabled {
      throw impossible(
        "\(interface) has n-tuple filtering and RFS on rx-\(queue): accelerated RFS steers a flow to "
          + "its reader's queue, not RSS's")
    }
    var notes: [String] = []
    // The queue's NAPI as netdev queue-get names it (6.8+, drivers that
    // link them), else as the socket's latest packet did (SO_INCOMING_NAPI_ID).
    let incomingNAPI = (try? socket.intOption(SOL_SOCKET, SO_INCOMING_NAPI_ID)).flatMap { $0 > 0 ? UInt32($0) : nil }
    // The readers' CPU, where every thread of the holder is pinned to one.
    let readerCPUs = Array(Set(ProcFS.threadAffinities(pid: pid).flatMap { $0 })).sorted()
    let readerCPU = readerCPUs.count == 1 ? readerCPUs[0] : nil
    let busyPolling = inspection.busyPolling(
      socket: socket, interface: interface, namespace: process.networkNamespace)
    let processing: QueueProcessing
    do {
      processing = try queues.processing(
        queue: queue, pid: pid, incomingNAPI: incomingNAPI, readerCPUs: readerCPUs, busyPolling: busyPolling)
    } catch {
      throw impossible(error.why)
    }
    notes += processing.notes
    let candidates = processing.cpus
    let napiThread = processing.napiThread
    let cpu = candidates.count == 1 ? candidates[0] : nil
    let interrupt = line.map {
      SteeringPath.Interrupt(
        number: $0.irq, name: $0.name, cpus: irqCPUs, nodes: topology.nodes(ofCPUs: irqCPUs),
        source: queues.irqSource[prediction.rxQueue] ?? "sysfs")
    }
    let path = SteeringPath(
      interface: interface, deviceNode: queues.deviceNode, rxQueue: prediction.rxQueue,
      napiID: queues.napiByQueue[prediction.rxQueue],
      interrupt: interrupt, rpsCPUs: rps, rfs: rfs, napiThread: napiThread, busyPolling: busyPolling, receiveCPU: cpu,
      receiveNode: cpu.flatMap(topology.node(ofCPU:)), readerCPU: readerCPU,
      readerNode: readerCPU.flatMap(topology.node(ofCPU:)), readerSource: readerCPU == nil ? nil : "affinity",
      readerCPUs: readerCPU.map { [$0] } ?? [],
      unresolved: line == nil ? "no interrupt of \(interface)'s device names RX queue \(prediction.rxQueue)" : nil)
    // The NIC's own hash of the flow, where the tracer kept one: the
    // prediction checked against it.
    let record = (try? PinnedMaps(pins: pins)).flatMap { maps in
      (try? maps.requireAttached()) == nil ? nil : (try? maps.record(socketFD: socket.descriptor.rawValue)) ?? nil
    }
    let hashCheck =
      record.map {
        HashCheck.check(
          observed: $0.rxHash, connected: true, flow: flow, interface: .rss(configuration, fields: fields))
      }
      ?? HashCheck(
        observedHash: nil, fromNIC: configuration.deliversHash, predictedHash: prediction.hash, verdict: .unverifiable,
        reason: "no packet of the socket traced yet: nothing to check the prediction against")
    if hashCheck.verdict == .contradicted {
      notes.append("the NIC's hash contradicts this prediction: every prediction on \(interface) is suspect")
    }
    try handle.requireSameProcess()
    return PredictedAffinity(
      pid: pid, fd: fd, command: process.command, transport: kind.transport, local: socket.address(peer: false),
      remote: socket.address(peer: true), interface: interface, rxQueue: prediction.rxQueue, irq: line?.irq,
      cpu: cpu, processor: cpu.flatMap(topology.processorNumber(ofCPU:)), numaNode: cpu.flatMap(topology.node(ofCPU:)),
      candidateCPUs: candidates, hashFunction: configuration.hashFunction.description,
      rssSource: configuration.source, hash: prediction.hash,
      hashedPorts: prediction.hashedPorts, tableIndex: prediction.tableIndex, tableSize: configuration.table.count,
      keyBytes: configuration.key.count, path: path, hashCheck: hashCheck,
      note: notes.isEmpty ? nil : notes.joined(separator: "; "))
  }

}
