import ArgumentParser
import FoundationEssentials
import SocketAffinity

struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status",
    abstract: "Show whether the tracer is attached, its counters and the kernel's features.")

  @Flag(help: "Print one JSON document.")
  var json = false

  func run() throws {
    try reporting(json: json) {
      var status = try Tracer().status()
      try? status.countHashChecks()
      if json { return try Output.json(status) }
      if let unreadable = status.unreadable {
        print("attached:        unknown (\(unreadable))")
      } else {
        print("attached:        \(status.attached ? "yes (\(status.mode ?? ""))" : "no")")
      }
      print("cgroup v2 root:  \(status.cgroup ?? "not mounted")")
      print("pins:            \(status.pinDirectory)\(status.bpffsMounted ? "" : " (bpffs not mounted)")")
      for program in status.programs {
        print("program:         \(program.name) id \(program.id)")
      }
      if status.attached {
        let reads =
          switch status.readSampling {
          case nil: "not traced (locality is sampled from thread CPUs)"
          case 1: "every read counted"
          case let n?: "1 in \(n) counted at random, each as \(n) (--sampled-reads): reads and locality are estimates"
          }
        print("reads:           \(reads)")
      }
      if let created = status.recordsCreated {
        print("sockets traced:  \(created) since attach")
      }
      if let live = status.liveRecords {
        print("live records:    \(live) (open sockets with a record)")
      } else if let error = status.liveRecordsError {
        print("live records:    unknown: \(error)")
      }
      if let untracked = status.untrackedPackets {
        print("untracked pkts:  \(untracked) (not a full socket, or no memory for a record)")
      }
      if let slots = status.poolSlots {
        let kib = (status.poolBytes ?? 0) / 1024
        print("per-CPU pool:    \(status.poolSlotsInUse ?? 0) of \(slots) slots in use (\(kib) KiB per-CPU memory)")
        if let full = status.poolExhaustedSockets, full > 0 {
          print("pool full for:   \(full) sockets (their other CPUs' packets are counted, not split by CPU)")
        }
      }
      if let hz = status.kernelHZ { print("kernel HZ:       \(hz)") }
      if let cost = status.nanosecondsPerPacket {
        print("per-packet cost: \(Int(cost.rounded())) ns (kernel.bpf_stats_enabled=1)")
      } else if !status.bpfStatsEnabled {
        print("per-packet cost: unknown (sysctl kernel.bpf_stats_enabled=1 to measure)")
      }
      print("kernel:          \(status.kernel)")
      for feature in status.features {
        print("  \(Self.answer(feature.state)) \(feature.name) (\(Self.explanation(feature)))")
      }
      for nic in status.interfaces {
        let node = nic.deviceNode.map { ", node \($0)" } ?? ""
        var rss = "no RSS" + (nic.rssError.map { " (\($0))" } ?? "")
        if nic.rss, let function = nic.hashFunction {
          rss = "RSS \(function), \(nic.keyBytes ?? 0)-byte key, \(nic.tableSize ?? 0)-entry table"
          if let rules = nic.ntupleRules, rules > 0 { rss += ", \(rules) ntuple rules" }
          if let transform = nic.inputTransform, transform != "none" { rss += ", \(transform)" }
          if nic.rxhash == true { rss += ", hash handed over" }
        }
        if nic.threadedNAPI { rss += ", threaded NAPI" }
        if let checks = status.hashChecks?.first(where: { $0.interface == nic.interface }),
          checks.verified + checks.contradicted + checks.unverifiable > 0
        {
          rss += ", hash checks \(checks.verified) verified, \(checks.unverifiable) unverifiable"
          if checks.contradicted > 0 { rss += ", \(checks.contradicted) CONTRADICTED (its predictions are suspect)" }
        }
        for program in nic.xdp?.programs ?? [] {
          rss += ", xdp program \(program.id) (\(program.mode))"
          for map in program.cpumaps { rss += " cpumap \(map.id) cpus \(CPUList.format(map.cpus))" }
        }
        print(
          "interface \(nic.interface):\(String(repeating: " ", count: max(1, 6 - nic.interface.count)))\(nic.queues) rx queues\(node), \(rss)"
        )
        for queue in nic.rxQueues {
          let irq = queue.irq.map { "irq \($0) \(queue.irqName ?? "")" } ?? "irq unknown"
          let cpus = queue.cpus.map(String.init).joined(separator: ",")
          let nodes = queue.nodes.map(String.init).joined(separator: ",")
          var line =
            "  rx-\(queue.queue): \(irq) -> cpu \(cpus.isEmpty ? "-" : cpus) (node \(nodes.isEmpty ? "-" : nodes))"
          if !queue.rpsCPUs.isEmpty { line += ", rps cpus \(queue.rpsCPUs.map(String.init).joined(separator: ","))" }
          if queue.rfs { line += ", rfs" }
          print(line)
        }
      }
      if let changes = status.steeringChanges {
        let since = status.steeringSince.map { " (\(RFC3339.timestamp(Date(timeIntervalSince1970: $0))))" } ?? ""
        print(
          changes.isEmpty
            ? "steering:        unchanged since the tracer attached\(since)"
            : "steering:        \(changes.count) changes since the tracer attached\(since):")
        for change in changes {
          let queue = change.queue.map { " rx-\($0)" } ?? ""
          print("  \(change.interface)\(queue) \(change.what): \(change.before) -> \(change.after)")
        }
      }
    }
  }

  /// The state column: `yes`, `NO`, `REFUSED`, or `?` (not permitted to probe).
  static func answer(_ state: KernelFeature.State) -> String {
    switch state {
    case .yes: "yes    "
    case .no: "NO     "
    case .refused: "REFUSED"
    case .notPermitted: "?      "
    }
  }

  /// What the feature is for, and for one that is missing, why and what is lost.
  static func explanation(_ feature: KernelFeature) -> String {
    let detail = feature.detail.map { ": \($0)" } ?? ""
    switch feature.state {
    case .yes: return feature.neededFor
    case .no: return "\(feature.neededFor); \(feature.detail ?? "the kernel lacks it")"
    case .refused: return "\(feature.neededFor); refused by the kernel\(detail)"
    case .notPermitted: return "\(feature.neededFor); not permitted to probe: run as root"
    }
  }
}
