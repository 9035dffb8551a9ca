import Glibc

/// `sockaff check`: the host's receive layout in one pass, as findings an
/// operator can act on, each with its evidence (numbers, the queues and
/// sockets it concerns) and a severity. The rules take what sockaff already
/// reads (`InterfaceQueues`, the RSS table `status` read, the traced sockets, the
/// steering snapshot) and judge nothing they cannot show.
public struct HostCheck: Sendable {
  public struct Finding: Sendable, Equatable, Encodable {
    public enum Severity: String, Sendable, Equatable, Encodable {
      /// Costs locality or work now.
      case warning
      /// Worth knowing; may be intended.
      case notice
    }

    /// A stable name (docs/USAGE.md lists them).
    public let id: String
    public let severity: Severity
    public let interface: String?
    public let message: String
    /// The numbers behind it, one line each.
    public let evidence: [String]
  }

  /// One NIC as the rules see it: its queues, RSS's indirection table
  /// (nil without RSS), and its ntuple rules (which override RSS).
  public struct NIC: Sendable {
    public let queues: InterfaceQueues
    public let table: [UInt32]?
    public let ntupleRules: Int

    public init(queues: InterfaceQueues, table: [UInt32]?, ntupleRules: Int = 0) {
      self.queues = queues
      self.table = table
      self.ntupleRules = ntupleRules
    }
  }

  public let topology: Topology

  public init(topology: Topology) { self.topology = topology }

  /// The rules over the NICs alone.
  public func findings(nics: [NIC], irqbalanceRunning: Bool) -> [Finding] {
    var found: [Finding] = []
    var queuesOfIRQ: [Int: [String]] = [:]
    for nic in nics {
      let q = nic.queues
      let name = q.interface
      let queueNumbers = Array(0..<q.rxQueues)
      func irqCPUs(_ queue: Int) -> [Int] { q.irqByQueue[queue].flatMap { q.irqCPUs[$0.irq] } ?? [] }
      for queue in queueNumbers {
        if let line = q.irqByQueue[queue] { queuesOfIRQ[line.irq, default: []].append("\(name) rx-\(queue)") }
      }

      // IRQs on another node than the NIC's own.
      if let node = q.deviceNode {
        let off = queueNumbers.filter { !irqCPUs($0).isEmpty && !topology.nodes(ofCPUs: irqCPUs($0)).contains(node) }
        if !off.isEmpty {
          found.append(
            Finding(
              id: "irq_off_nic_node", severity: .warning, interface: name,
              message:
                "\(off.count) of \(q.rxQueues) RX queue interrupts run on another node than the NIC (node \(node))",
              evidence: off.map {
                "rx-\($0): irq \(q.irqByQueue[$0]?.irq ?? -1) on cpus \(CPUList.joined(irqCPUs($0))) (node \(CPUList.joined(topology.nodes(ofCPUs: irqCPUs($0)))))"
              }))
        }
      }

      // RPS where RSS already spreads, and RPS masks over several nodes.
      let rpsQueues = queueNumbers.filter { !(q.rpsCPUs[$0] ?? []).isEmpty }
      let spreadQueues = Set(nic.table ?? []).count
      if !rpsQueues.isEmpty && spreadQueues > 1 {
        found.append(
          Finding(
            id: "rps_on_rss_nic", severity: .warning, interface: name,
            message:
              "RPS moves packets that RSS already spreads over \(spreadQueues) queues: work moved for nothing, and off the IRQ's cache",
            evidence: rpsQueues.map {
              "rx-\($0): rps cpus \(CPUList.joined(q.rpsCPUs[$0] ?? [])), irq on cpus \(CPUList.joined(irqCPUs($0)))"
            }))
      }
      let spanning = rpsQueues.filter { topology.nodes(ofCPUs: q.rpsCPUs[$0] ?? []).count > 1 }
      if !spanning.isEmpty {
        found.append(
          Finding(
            id: "rps_spans_nodes", severity: .warning, interface: name,
            message: "RPS masks span NUMA nodes: packets are processed on a node other than their IRQ's",
            evidence: spanning.map {
              "rx-\($0): rps cpus \(CPUList.joined(q.rpsCPUs[$0] ?? [])) (nodes \(CPUList.joined(topology.nodes(ofCPUs: q.rpsCPUs[$0] ?? []))))"
            }))
      }
      // Receive modes set on some queues and not the others.
      let rfsQueues = queueNumbers.filter { q.rfs(queue: $0) }
      for (mode, on, effect) in [
        ("rps", rpsQueues, "flows are processed differently by queue"),
        ("rfs", rfsQueues, "only those flows follow their readers"),
      ] where !on.isEmpty && on.count < q.rxQueues {
        found.append(
          Finding(
            id: "\(mode)_inconsistent", severity: .notice, interface: name,
            message: "\(mode.uppercased()) is on for \(on.count) of \(q.rxQueues) RX queues: \(effect)",
            evidence: ["\(mode) on rx-" + on.map(String.init).joined(separator: ",rx-")]))
      }

      // An indirection table that leaves queues out.
      if let table = nic.table, !table.isEmpty {
        let used = Set(table.map(Int.init))
        let unused = queueNumbers.filter { !used.contains($0) }
        if !unused.isEmpty {
          found.append(
            Finding(
              id: "table_leaves_queues_out", severity: .warning, interface: name,
              message: "the RSS indirection table sends no flow to \(unused.count) of \(q.rxQueues) RX queues",
              evidence: [
                "\(table.count) entries over queues \(CPUList.joined(used.sorted())); unused: rx-\(unused.map(String.init).joined(separator: ",rx-"))"
              ]))
        }
      }

      // One queue taking most of the interrupts (its IRQ's counts since boot).
      let counts = queueNumbers.compactMap { queue in q.irqByQueue[queue].map { (queue, $0.counts.reduce(0, +)) } }
      let total = counts.reduce(0) { $0 + $1.1 }
      if counts.count > 1, total >= 1_000, let busiest = counts.max(by: { $0.1 < $1.1 }),
        Double(busiest.1) > 2 * Double(total) / Double(counts.count)
      {
        found.append(
          Finding(
            id: "queue_imbalance", severity: .notice, interface: name,
            message:
              "rx-\(busiest.0) took \(Int((Double(busiest.1) / Double(total) * 100).rounded()))% of the queues' interrupts, more than twice its share",
            evidence: counts.map { "rx-\($0.0): \($0.1) interrupts since boot" }))
      }

      // irqbalance moves IRQs every ~10 s: an affinity pinned to one CPU by
      // hand does not stay.
      let pinned = queueNumbers.filter { irqCPUs($0).count == 1 }
      if irqbalanceRunning && !pinned.isEmpty {
        found.append(
          Finding(
            id: "irqbalance_running", severity: .notice, interface: name,
            message:
              "irqbalance is running: it moves IRQs (every ~10 s by default) unless they are banned from it, so a queue's CPU may not stay",
            evidence: pinned.map {
              "rx-\($0): irq \(q.irqByQueue[$0]?.irq ?? -1) on cpu \(CPUList.joined(irqCPUs($0)))"
            }))
      }
    }
    for (irq, queues) in queuesOfIRQ.sorted(by: { $0.key < $1.key }) {
      let interfaces = Set(queues.map { $0.split(separator: " ")[0] })
      guard interfaces.count > 1 else { continue }
      found.append(
        Finding(
          id: "irq_shared", severity: .warning, interface: nil,
          message:
            "irq \(irq) serves RX queues of \(interfaces.count) interfaces: their packets share one CPU's interrupt",
          evidence: queues))
    }
    return found
  }

  /// The rules over the traced sockets: cross-NUMA sockets, busiest first,
  /// and hash checks that contradict RSS.
  /// SO_REUSEPORT groups whose kernel choice hands members packets
  /// received on a node none of their threads run on: the group's steering
  /// (the hash, a program, SO_INCOMING_CPU) does not follow the workers.
  public func findings(reuseportGroups groups: [ReuseportGroup]) -> [Finding] {
    groups.filter { !$0.offNodeMembers.isEmpty }.map { group in
      let off = group.offNodeMembers
      return Finding(
        id: "reuseport_member_off_node", severity: .warning, interface: nil,
        message:
          "\(off.count) of \(group.members.count) members of the SO_REUSEPORT group \(group.transport.rawValue) \(group.local) (netns \(group.networkNamespace.map(String.init) ?? "?")) are handed packets received on a node their threads do not run on; steering: \(group.steering.kind.rawValue)",
        evidence: off.prefix(10).map { member in
          let holders = member.holders.prefix(3).map { "pid \($0.pid) fd \($0.fd) (\($0.command ?? "?"))" }
          let share = Int(((member.locality?.sameNode ?? 0) * 100).rounded())
          let basis = member.locality?.source == .recvmsg ? "of its reads" : "of its packets"
          let threads = member.threads == .waiting ? "threads waiting on it" : "its holders' threads"
          return "\(holders.joined(separator: ", ")): \(threads) on node \(CPUList.joined(member.threadNodes)), "
            + "\(member.packets ?? 0) packets received on node \(CPUList.joined(member.receivedNodes)), "
            + "\(share)% \(basis) on the same node"
        })
    }
  }

  public func findings(sockets: [SocketAffinity]) -> [Finding] {
    var found: [Finding] = []
    var seen = Set<UInt64>()
    let distinct = sockets.filter { seen.insert($0.cookie).inserted }
    let crossing = distinct.filter { $0.crossNUMA == true }.sorted { ($0.packets ?? 0) > ($1.packets ?? 0) }
    if !crossing.isEmpty {
      found.append(
        Finding(
          id: "cross_numa_sockets", severity: .warning, interface: nil,
          message: "\(crossing.count) traced sockets are received on one NUMA node and read on another (busiest first)",
          evidence: crossing.prefix(10).map { socket in
            // The verdict's own numbers: the share on the receiving node
            // over every read (or packet) since attach; then the latest hops.
            let share =
              socket.locality.map { locality in
                let basis =
                  locality.source == .recvmsg ? "of \(socket.reads ?? 0) reads" : "of its packets (thread sampling)"
                return "\(Int((locality.sameNode * 100).rounded()))% \(basis) on the receiving node"
              } ?? "locality unknown"
            let read = socket.path?.readerNode.map { ", latest read on node \($0)" } ?? ""
            return "pid \(socket.pid) fd \(socket.fd) (\(socket.command ?? "?")) \(socket.local ?? "-"): \(share); "
              + "latest received on node \(socket.numaNode.map(String.init) ?? "?")\(read), \(socket.packets ?? 0) packets"
          }))
    }
    var contradicted: [String: [SocketAffinity]] = [:]
    for socket in distinct where socket.hashCheck?.verdict == .contradicted {
      contradicted[socket.interface ?? "?", default: []].append(socket)
    }
    for (interface, sockets) in contradicted.sorted(by: { $0.key < $1.key }) {
      found.append(
        Finding(
          id: "hash_contradicted", severity: .warning, interface: interface,
          message:
            "the NIC's hash contradicts RSS's prediction for \(sockets.count) flows: its function, key or fields are not what the driver reports, and every prediction on \(interface) is suspect",
          evidence: sockets.prefix(10).map {
            "pid \($0.pid) fd \($0.fd) \($0.local ?? "-") -> \($0.remote ?? "-"): \($0.hashCheck?.reason ?? "")"
          }))
    }
    return found
  }

  /// What changed in the NICs' steering since the tracer attached.
  public func findings(changes: [SteeringSnapshot.Change], since: Double?) -> [Finding] {
    var byInterface: [String: [SteeringSnapshot.Change]] = [:]
    for change in changes { byInterface[change.interface, default: []].append(change) }
    return byInterface.sorted(by: { $0.key < $1.key }).map { interface, changes in
      Finding(
        id: "steering_changed", severity: .notice, interface: interface,
        message:
          "\(changes.count) changes to the NIC's steering since the tracer attached: counts taken before belong to the old layout",
        evidence: changes.map { change in
          "\(change.what)\(change.queue.map { " rx-\($0)" } ?? ""): \(change.before) -> \(change.after)"
        })
    }
  }

  /// Whether an irqbalance daemon runs on the host (by command name).
  public static func irqbalanceRunning(proc: String = "/proc") -> Bool {
    ProcFS.numericEntries(proc).contains { pid in
      (try? readTextFile("\(proc)/\(pid)/comm"))?.trimmingWhitespace() == "irqbalance"
    }
  }

  /// The NICs `status` read (`InterfaceSteering.all`: one RSS read per
  /// interface), with their queues from the same cache.
  public static func nics(_ interfaces: [InterfaceSteering], steering: SteeringInspection) -> [NIC] {
    interfaces.map {
      NIC(queues: steering.queues(of: $0.interface), table: $0.snapshot?.table, ntupleRules: $0.ntupleRules ?? 0)
    }
  }
}
