/// `sockaff advise`'s rules: from the NICs (`HostCheck.NIC`) and the traced
/// sockets, the writes that put each RX queue's processing on the node
/// where its flows are read, and each one's effect per socket by the same
/// model as `query --predict` (`InterfaceQueues.processing`), run on the
/// host as the changes would leave it. Nothing is advised whose effect the
/// model cannot give; those cases are `withheld`, with why.
///
/// The rules, per NIC:
/// 0. An RSS table that leaves queues out gets them all back, evenly
///    (`ethtool -X DEV equal N`). Each traced flow's new queue is its NIC
///    hash's bucket in the new table (the hash the tracer kept, as the NIC
///    gave it). That change comes alone: the other rules need each flow's
///    queue, which it moves, so advise is asked again once it is applied.
/// 1. RPS on a queue of an RSS NIC (the table spreads over several queues)
///    is turned off: RSS already spreads, and RPS moves each packet off the
///    IRQ's CPU and cache for nothing.
/// 2. Each queue's processing goes to the node where most of its traced
///    packets are read (by packets, over the in-scope sockets whose holders'
///    threads are all allowed on one node); with no such socket, to the
///    NIC's own node where its IRQ is elsewhere. Where RPS stays on (a NIC
///    without RSS), RPS's mask becomes that node's CPUs; else the IRQ moves
///    to one CPU of that node, the one with the fewest of the NIC's IRQs.
///    Under threaded NAPI the queue's kernel thread (`napi/DEV-ID`) polls
///    it wherever it may run, and the IRQ only wakes it: the thread is
///    pinned to one CPU of that node instead (`taskset -pc CPU PID`).
public struct AdvicePlanning: Sendable {
  public let topology: Topology
  /// The roots the advised files are under (fixture trees in tests).
  public let sys: String
  public let proc: String

  public init(topology: Topology, sys: String = "/sys", proc: String = "/proc") {
    self.topology = topology
    self.sys = sys
    self.proc = proc
  }

  /// `readers`: per socket cookie, every CPU its holders' threads may run
  /// on. `inScope`: the sockets the operator asked about (all by default);
  /// only they decide where a queue goes, and only their queues change.
  public func advise(
    nics: [HostCheck.NIC], sockets: [SocketAffinity], readers: [UInt64: [Int]],
    inScope: (SocketAffinity) -> Bool = { _ in true }, scoped: Bool = false, irqbalanceRunning: Bool
  ) -> ReceiveAdvice {
    var advice = ReceiveAdvice()
    var seen = Set<UInt64>()
    let distinct = sockets.filter { $0.rxQueue != nil && seen.insert($0.cookie).inserted }
    for nic in nics where nic.queues.hasDevice && nic.queues.rxQueues > 0 {
      plan(
        nic, sockets: distinct.filter { $0.interface == nic.queues.interface }, readers: readers,
        inScope: inScope, scoped: scoped, into: &advice)
    }
    let irqs = advice.changes.compactMap { $0.what == .irqAffinity ? $0.irq : nil }
    if advice.changes.contains(where: { $0.what == .rssTable }) {
      advice.notes.append(
        "a table change moves flows to other queues: the IRQ and RPS rules wait for it; ask advise again once it is applied"
      )
    }
    if irqbalanceRunning && !irqs.isEmpty {
      advice.notes.append(
        "irqbalance is running: it moves IRQs (every ~10 s) unless they are banned from it; ban these first "
          + "(IRQBALANCE_ARGS=\""
          + irqs.map { "--banirq=\($0)" }.joined(separator: " ")
          + "\" in /etc/default/irqbalance, then restart it), or the advised affinities will not stay")
    }
    return advice
  }

  private func plan(
    _ nic: HostCheck.NIC, sockets: [SocketAffinity], readers: [UInt64: [Int]],
    inScope: (SocketAffinity) -> Bool, scoped: Bool, into advice: inout ReceiveAdvice
  ) {
    let q = nic.queues
    let name = q.interface
    func withhold(_ queue: Int?, socket: String? = nil, _ why: String) {
      advice.withheld.append(.init(interface: name, rxQueue: queue, socket: socket, why: why))
    }
    // What makes every queue of the NIC unpredictable.
    if nic.ntupleRules > 0 {
      withhold(
        nil,
        "\(nic.ntupleRules) ntuple rules override RSS for their flows: which queue a flow takes is not known, so no "
          + "change's effect is")
      return
    }
    func onQueue(_ queue: Int) -> [SocketAffinity] { sockets.filter { $0.rxQueue.map(Int.init) == queue } }
    let queues = Array(0..<q.rxQueues)
    if let table = nic.table, !table.isEmpty, q.rxQueues > 1, Set(table).count < q.rxQueues {
      if scoped {
        withhold(
          nil,
          "\(name)'s RSS table leaves queues out: a table is the NIC's, for every flow; advise without "
            + "--pid/--port/--cgroup proposes it")
      } else {
        advice.changes.append(evenTable(nic, table: table, sockets: sockets, readers: readers, inScope: inScope))
        return
      }
    }
    // Only queues an in-scope socket is on, when the operator named some.
    let wanted = Set(queues.filter { !scoped || onQueue($0).contains(where: inScope) })
    var after = q
    var changes: [ReceiveAdvice.Change] = []
    func file(_ path: String) -> String { ((try? readTextFile(path)) ?? "").trimmingWhitespace() }
    func rpsPath(_ queue: Int) -> String { "\(sys)/class/net/\(name)/queues/rx-\(queue)/rps_cpus" }

    // 1. RPS where RSS already spreads.
    let spread = Set(nic.table ?? []).count
    for queue in queues where wanted.contains(queue) && !(q.rpsCPUs[queue] ?? []).isEmpty && spread > 1 {
      if q.rfs(queue: queue) { continue }  // said below
      after = after.changing(rpsOf: queue, to: [])
      changes.append(
        .init(
          what: .rpsCPUs, interface: name, rxQueue: queue, irq: nil, path: rpsPath(queue),
          before: file(rpsPath(queue)), after: "0",
          reason: "RSS spreads \(name)'s flows over \(spread) queues: RPS on rx-\(queue) moves its packets off the "
            + "IRQ's CPU for nothing", effects: []))
    }

    // 2. Each queue's processing onto its readers' node.
    var targets: [Int: (node: Int, why: String)] = [:]
    for queue in queues where wanted.contains(queue) {
      if q.rfs(queue: queue) {
        withhold(
          queue,
          "RFS is on for rx-\(queue): it moves the queue's flows to the CPUs that read them, so neither its "
            + "IRQ nor RPS decides; whether to keep it is the operator's call")
        continue
      }
      var votes: [Int: UInt64] = [:]
      for socket in onQueue(queue) where inScope(socket) {
        let label = "pid \(socket.pid) fd \(socket.fd)"
        // The path names busy polling only where it is active.
        if let busy = socket.path?.busyPolling {
          withhold(
            queue, socket: label,
            "busy polling (\(busy.description)): its reader processes the packets while it polls, wherever it runs")
          continue
        }
        let readNodes = topology.nodes(ofCPUs: readers[socket.cookie] ?? [])
        guard readNodes.count == 1 else {
          withhold(
            queue, socket: label,
            readNodes.isEmpty
              ? "where its holders' threads run is not known"
              : "its holders' threads may run on nodes \(CPUList.joined(readNodes)): no one node reads it "
                + "(pin them to one node, then ask again)")
          continue
        }
        votes[readNodes[0], default: 0] += max(socket.packets ?? 0, 1)
      }
      let irqCPUs = q.irqByQueue[queue].flatMap { q.irqCPUs[$0.irq] } ?? []
      if let best = votes.max(by: { ($0.value, -$0.key) < ($1.value, -$1.key) }) {
        let total = votes.values.reduce(0, +)
        targets[queue] = (
          best.key,
          "\(best.value) of the \(total) packets traced on rx-\(queue) are read on node \(best.key)"
        )
      } else if !scoped, let node = q.deviceNode, !irqCPUs.isEmpty, topology.nodes(ofCPUs: irqCPUs) != [node] {
        targets[queue] = (node, "no traced socket on rx-\(queue) is read on one known node: the NIC's own node \(node)")
      }
    }
    // Under threaded NAPI a kernel thread polls each queue wherever it may
    // run, the IRQ only waking it: the thread is what moves.
    if q.threaded {
      var pinned: [Int: Int] = [:]  // CPU: the NIC's threads pinned there
      for thread in q.napiThreads.values { if let cpu = thread.pinnedCPU { pinned[cpu, default: 0] += 1 } }
      for (queue, target) in targets.sorted(by: { $0.key < $1.key }) {
        let napi = q.napiByQueue[queue] ?? onQueue(queue).compactMap(\.napiID).first
        guard let napi, let thread = after.napiThreads[napi] else {
          withhold(
            queue, "threaded NAPI: which kernel thread polls rx-\(queue) is not known (the kernel names no NAPI for it)"
          )
          continue
        }
        if let cpu = thread.pinnedCPU, topology.node(ofCPU: cpu) == target.node { continue }
        guard
          let cpu = (topology.cpusByNode[target.node] ?? []).min(by: { (pinned[$0] ?? 0, $0) < (pinned[$1] ?? 0, $1) })
        else { continue }
        pinned[cpu, default: 0] += 1
        after = after.changing(napiThread: napi, to: [cpu])
        changes.append(
          .init(
            what: .napiThreadAffinity, interface: name, rxQueue: queue, irq: nil, path: "\(proc)/\(thread.pid)",
            before: CPUList.format(thread.allowedCPUs), after: "\(cpu)",
            reason: "threaded NAPI: \(thread.name) polls rx-\(queue) (the IRQ only wakes it): \(target.why)",
            effects: []))
      }
    }
    // Where RPS stays (no RSS spreading), its mask decides; else the IRQ.
    var moving: [(queue: Int, irq: Int, node: Int, why: String)] = []
    for (queue, target) in targets.sorted(by: { $0.key < $1.key }) where !q.threaded {
      let rps = after.rpsCPUs[queue] ?? []
      if !rps.isEmpty {
        guard topology.nodes(ofCPUs: rps) != [target.node], let cpus = topology.cpusByNode[target.node], !cpus.isEmpty
        else {
          continue
        }
        after = after.changing(rpsOf: queue, to: cpus)
        changes.append(
          .init(
            what: .rpsCPUs, interface: name, rxQueue: queue, irq: nil, path: rpsPath(queue),
            before: file(rpsPath(queue)), after: InterfaceQueues.cpuMask(cpus),
            reason: "RPS processes rx-\(queue)'s packets: \(target.why)", effects: []))
        continue
      }
      guard let line = q.irqByQueue[queue] else {
        withhold(queue, "no interrupt of \(name) is known to serve rx-\(queue): nothing to move")
        continue
      }
      let current = after.steadyCPUs(irq: line.irq)
      if !current.isEmpty && topology.nodes(ofCPUs: current) == [target.node] { continue }
      moving.append((queue, line.irq, target.node, target.why))
    }
    // One CPU each, the least loaded by the NIC's other queue IRQs first.
    var load: [Int: Int] = [:]
    let movingIRQs = Set(moving.map(\.irq))
    for queue in queues {
      guard let line = q.irqByQueue[queue], !movingIRQs.contains(line.irq),
        let cpus = after.irqCPUs[line.irq], cpus.count == 1
      else { continue }
      load[cpus[0], default: 0] += 1
    }
    for move in moving {
      guard let cpu = (topology.cpusByNode[move.node] ?? []).min(by: { (load[$0] ?? 0, $0) < (load[$1] ?? 0, $1) })
      else { continue }
      load[cpu, default: 0] += 1
      after = after.changing(irq: move.irq, to: [cpu])
      let path = "\(proc)/irq/\(move.irq)/smp_affinity_list"
      changes.append(
        .init(
          what: .irqAffinity, interface: name, rxQueue: move.queue, irq: move.irq, path: path,
          before: file(path), after: "\(cpu)", reason: move.why, effects: []))
    }

    // The effects: every traced socket on a changed queue, before and
    // after all of the NIC's changes, each queue's once.
    var effects: [Int: [ReceiveAdvice.Effect]] = [:]
    for queue in Set(changes.compactMap(\.rxQueue)) {
      effects[queue] = onQueue(queue).compactMap { socket in
        let readerCPUs = readers[socket.cookie] ?? []
        func processing(_ queues: InterfaceQueues) -> [Int]? {
          try? queues.processing(
            queue: queue, pid: socket.pid, incomingNAPI: socket.napiID, readerCPUs: readerCPUs,
            busyPolling: socket.path?.busyPolling
          ).cpus
        }
        // An unpinned NAPI thread runs wherever the scheduler puts it: any of its CPUs.
        let unpinned = q.threaded ? socket.napiID.flatMap { q.napiThreads[$0]?.allowedCPUs } : nil
        guard let before = processing(q) ?? unpinned, let now = processing(after), before != now else { return nil }
        return .init(
          pid: socket.pid, fd: socket.fd, command: socket.command, local: socket.local, remote: socket.remote,
          rxQueue: queue, beforeCPUs: before, beforeNodes: topology.nodes(ofCPUs: before), afterCPUs: now,
          afterNodes: topology.nodes(ofCPUs: now), readNodes: topology.nodes(ofCPUs: readerCPUs),
          inScope: inScope(socket))
      }
    }
    for index in changes.indices { changes[index].effects = changes[index].rxQueue.flatMap { effects[$0] } ?? [] }
    advice.changes += changes
  }

  /// Rule 0: the table spread evenly over every queue, with each traced
  /// flow's move: its bucket (NIC hash mod table size) now and after.
  private func evenTable(
    _ nic: HostCheck.NIC, table: [UInt32], sockets: [SocketAffinity], readers: [UInt64: [Int]],
    inScope: (SocketAffinity) -> Bool
  ) -> ReceiveAdvice.Change {
    let q = nic.queues
    let even = (0..<table.count).map { UInt32($0 % q.rxQueues) }
    let left = (0..<q.rxQueues).filter { !table.contains(UInt32($0)) }
    let effects = sockets.compactMap { socket -> ReceiveAdvice.Effect? in
      guard let check = socket.hashCheck, check.fromNIC, let hash = check.observedHash else { return nil }
      let bucket = Int(hash % UInt32(table.count))
      let (from, to) = (Int(table[bucket]), Int(even[bucket]))
      let readerCPUs = readers[socket.cookie] ?? []
      func processing(_ queue: Int) -> [Int]? {
        try? q.processing(
          queue: queue, pid: socket.pid, incomingNAPI: nil, readerCPUs: readerCPUs,
          busyPolling: socket.path?.busyPolling
        ).cpus
      }
      guard from != to, let before = processing(from), let now = processing(to) else { return nil }
      var effect = ReceiveAdvice.Effect(
        pid: socket.pid, fd: socket.fd, command: socket.command, local: socket.local, remote: socket.remote,
        rxQueue: from, beforeCPUs: before, beforeNodes: topology.nodes(ofCPUs: before), afterCPUs: now,
        afterNodes: topology.nodes(ofCPUs: now), readNodes: topology.nodes(ofCPUs: readerCPUs), inScope: inScope(socket)
      )
      effect.afterRxQueue = to
      return effect
    }
    let text = { (table: [UInt32]) in table.map(String.init).joined(separator: ",") }
    return ReceiveAdvice.Change(
      what: .rssTable, interface: q.interface, rxQueue: nil, irq: nil, path: "\(sys)/class/net/\(q.interface)",
      before: text(table), after: text(even),
      reason: "\(q.interface)'s RSS table sends no flow to rx-\(left.map(String.init).joined(separator: ", rx-")): "
        + "their IRQs and CPUs sit idle while the others take every flow",
      effects: effects)
  }
}
