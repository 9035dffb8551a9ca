import Glibc
import SystemPackage

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
    // XDP sees each frame before the stack; a cpumap moves the stack to the
    // CPU the program picks per frame, which no configuration tells.
    let xdp = inspection.steering.xdp(of: interface)
    if let xdp, xdp.hasCPUMap {
      let programs = xdp.programs.filter { !$0.cpumaps.isEmpty }.map { program in
        "XDP program \(program.id) (\(program.mode)) redirects through cpumap "
          + program.cpumaps.map { "\($0.id) (cpus \(CPUList.format($0.cpus)))" }.joined(separator: ", ")
      }
      throw impossible(
        "on \(interface), " + programs.joined(separator: "; ")
          + ": the program picks each frame's CPU, and the stack runs there")
    }
    let configuration: RSSConfiguration
    do {
      configuration = try RSSConfiguration.read(interface: interface, through: socket.descriptor)
    } catch {
      throw impossible("\(interface) has no RSS to predict from (\(error.description))")
    }
    let flow = ReceivedFlow(
      source: remote.address, sourcePort: remote.port, destination: local.address, destinationPort: local.port,
      tcp: kind.transport == .tcp)
    var notes: [String] = []
    for program in xdp?.programs ?? [] {
      notes.append(
        "XDP program \(program.id) (\(program.mode)) sees each frame first: the path holds for the frames it passes"
          + (program.xskmapIDs.isEmpty ? "" : ", not those it hands to AF_XDP sockets"))
    }
    // ntuple rules come before RSS: the first that takes the flow names its
    // queue, or the RSS context whose own table does.
    let (ruleSteering, rss) = try ruleDecision(
      flow: flow, configuration: configuration, socket: socket.descriptor, notes: &notes, impossible: impossible)
    // ATR's filters come from what the host sends, and nothing lists them.
    let atr = ApplicationTargetedRouting.reason(
      interface: interface, through: socket.descriptor, ntupleEnabled: configuration.ntupleEnabled)
    if let atr, ruleSteering == nil, flow.tcp {
      throw impossible(
        "ATR (Intel Flow Director) on \(interface) re-steers a TCP flow once its socket has sent (\(atr)): "
          + "its packets then come to the RX queue paired with the TX queue of its sender's CPU, not RSS's")
    }
    let fields = RSSConfiguration.hashFields(interface: interface, flow: flow.flowType, through: socket.descriptor)
    let prediction: RSSPrediction
    do {
      prediction = try RSSPrediction.predict(flow: flow, configuration: rss, fields: fields)
    } catch {
      throw impossible("\(interface): \(error.description)")
    }
    let queues = inspection.steering.queues(of: interface)
    var ruleQueue: FlowRuleSteering?
    if let ruleSteering {
      switch ruleSteering.action {
      case .queue(let queue): ruleQueue = FlowRuleSteering(rule: ruleSteering, rxQueue: queue)
      case .rssContext(_, let offset):
        ruleQueue = FlowRuleSteering(rule: ruleSteering, rxQueue: prediction.rxQueue + offset)
      default: break
      }
    }
    let queue = ruleQueue?.rxQueue ?? prediction.rxQueue
    let line = queues.irqByQueue[queue]
    let irqCPUs = line.flatMap { queues.irqCPUs[$0.irq] } ?? []
    let rps = queues.rpsCPUs[queue] ?? []
    let rfs = queues.rfs(queue: queue)
    if rfs && configuration.ntupleEnabled {
      throw impossible(
        "\(interface) has n-tuple filtering and RFS on rx-\(queue): accelerated RFS steers a flow to "
          + "its reader's queue, not RSS's")
    }
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
        source: queues.irqSource[queue] ?? "sysfs")
    }
    let path = SteeringPath(
      interface: interface, deviceNode: queues.deviceNode, rxQueue: queue,
      napiID: queues.napiByQueue[queue],
      interrupt: interrupt, rpsCPUs: rps, rfs: rfs, napiThread: napiThread, busyPolling: busyPolling, xdp: xdp,
      mayResteer: (configuration.ntupleRules > 0 ? ["ntuple_rules"] : []) + (atr == nil ? [] : ["atr"]),
      receiveCPU: cpu,
      receiveNode: cpu.flatMap(topology.node(ofCPU:)), readerCPU: readerCPU,
      readerNode: readerCPU.flatMap(topology.node(ofCPU:)), readerSource: readerCPU == nil ? nil : "affinity",
      readerCPUs: readerCPU.map { [$0] } ?? [],
      unresolved: line == nil ? "no interrupt of \(interface)'s device names RX queue \(queue)" : nil)
    // The NIC's own hash of the flow, where the tracer kept one: the
    // prediction checked against it.
    let record = (try? PinnedMaps(pins: pins)).flatMap { maps in
      (try? maps.requireAttached()) == nil ? nil : (try? maps.record(socketFD: socket.descriptor.rawValue)) ?? nil
    }
    let hashCheck =
      ruleQueue.flatMap { steering -> HashCheck? in
        guard case .queue = steering.rule.action else { return nil }
        return HashCheck(
          observedHash: record?.rxHash, fromNIC: rss.deliversHash, predictedHash: nil, verdict: .unverifiable,
          reason: "ntuple rule \(steering.rule.location), not RSS, picks its queue: the NIC need not hash its packets")
      }
      ?? record.map {
        HashCheck.check(observed: $0.rxHash, connected: true, flow: flow, interface: .rss(rss, fields: fields))
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
      candidateCPUs: candidates, hashFunction: rss.hashFunction.description,
      rssSource: rss.source, hash: prediction.hash,
      hashedPorts: prediction.hashedPorts, tableIndex: prediction.tableIndex, tableSize: rss.table.count,
      keyBytes: rss.key.count, ntupleRule: ruleQueue, path: path, hashCheck: hashCheck,
      note: notes.isEmpty ? nil : notes.joined(separator: "; "))
  }

  /// The ntuple rule that takes `flow`, if one does, and the RSS
  /// configuration its packets are hashed under: an RSS context's own for
  /// a rule that spreads over one, else the default context's. Throws where
  /// a rule sends the flow off this host's queues, or where the rules
  /// cannot be read or the flow cannot tell whether one takes it.
  private func ruleDecision(
    flow: ReceivedFlow, configuration: RSSConfiguration, socket: FileDescriptor, notes: inout [String],
    impossible: (String) -> SockaffError
  ) throws(SockaffError) -> (FlowRule?, RSSConfiguration) {
    let interface = configuration.interface
    guard configuration.ntupleRules > 0 else { return (nil, configuration) }
    let rules: [FlowRule]
    do {
      rules = try FlowRule.read(interface: interface, through: socket)
    } catch {
      throw impossible(
        "\(interface) has \(configuration.ntupleRules) ntuple rules, which override RSS for their flows, "
          + "and it does not list them (\(error.description))")
    }
    switch FlowRule.decide(flow, rules: rules) {
    case .none:
      notes.append("none of \(interface)'s \(rules.count) ntuple rules takes the flow: RSS decides")
      return (nil, configuration)
    case .undecided(let rule, let fields):
      throw impossible(
        "ntuple rule \(rule.location) of \(interface) takes the flow if its \(fields.joined(separator: ", ")) "
          + "match, which a socket does not tell")
    case .rule(let rule):
      let which = "ntuple rule \(rule.location) of \(interface)"
      switch rule.action {
      case .queue:
        return (rule, configuration)
      case .rssContext(let context, _):
        do {
          return (rule, try RSSConfiguration.read(interface: interface, through: socket, context: context))
        } catch {
          throw impossible("\(which) spreads the flow over rss context \(context), unreadable (\(error.description))")
        }
      case .discard: throw impossible("\(which) drops the flow's packets")
      case .wakeOnLAN: throw impossible("\(which) takes the flow's packets for wake-on-lan")
      case .virtualFunction(let vf, let queue):
        throw impossible("\(which) sends the flow to virtual function \(vf)'s queue \(queue), not this host's")
      }
    }
  }
}
