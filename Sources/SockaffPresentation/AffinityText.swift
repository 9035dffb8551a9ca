import SocketAffinity

/// The human-readable form of one socket's answer.
/// `query`'s text answer.
public enum AffinityText {
  public static func render(_ a: SocketAffinity) -> String {
    func optional<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "-" }
    var lines: [String] = []
    let peer = a.remote.map { " -> \($0)" } ?? ""
    let state = a.connected ? "" : " (unconnected)"
    let command = a.command.map { " (\($0))" } ?? ""
    lines.append("pid \(a.pid)\(command) fd \(a.fd): \(a.transport.rawValue) \(a.local ?? "-")\(peer)\(state)")
    let processor = a.processor.map { "group \($0.group) number \($0.number)" } ?? "group -"
    lines.append("  cpu \(a.cpu) (\(processor)), numa node \(optional(a.numaNode))")
    if a.source == .kernel {
      if a.napiID != nil || a.interface != nil {
        lines.append("  napi id \(optional(a.napiID)), interface \(a.interface ?? "-")")
      }
      if let path = a.path { lines.append("  path: " + Self.path(path)) }
      let why = a.limits ?? "no packet traced since the tracer was attached"
      lines.append("  source: kernel SO_INCOMING_CPU (\(why))")
      return lines.joined(separator: "\n")
    }
    lines.append(
      "  rx queue \(optional(a.rxQueue)), napi id \(optional(a.napiID)), interface \(a.interface ?? optional(a.ifindex))"
    )
    lines.append("  packets \(optional(a.packets)), bytes \(optional(a.bytes)), cpu changes \(optional(a.cpuChanges))")
    let shares = a.cpus.map { "cpu \($0.cpu) \(percent($0.share)) (\($0.packets))" }
    var distribution = shares.joined(separator: ", ")
    if let other = a.otherCPUsPackets, other > 0 { distribution += ", not split by CPU (pool full) (\(other))" }
    lines.append("  share: \(distribution)")
    if let first = a.firstSeen, let last = a.lastSeen {
      lines.append("  first seen \(RFC3339.timestamp(first)), last seen \(RFC3339.timestamp(last))")
    }
    if let locality = a.locality {
      var text = "  locality: \(percent(locality.sameNode)) on the consumers' node"
      if let sameCPU = locality.sameCPU { text += ", \(percent(sameCPU)) on the receiving cpu" }
      let sampled = locality.readSampling.map { $0 > 1 ? "~" : "" } ?? ""
      text += locality.source == .recvmsg ? " (\(sampled)\(a.reads ?? 0) reads" : " (sampled from thread cpus"
      if let n = locality.readSampling, n > 1 { text += ", 1 in \(n) sampled" }
      text += a.consumerCPU.map { ", last read on cpu \($0))" } ?? ")"
      if a.crossNUMA == true { text += "  CROSS-NUMA" }
      lines.append(text)
    }
    if let path = a.path { lines.append("  path: " + Self.path(path)) }
    if let check = a.hashCheck { lines.append("  hash: " + Self.hashCheck(check)) }
    lines.append("  source: bpf (kernel SO_INCOMING_CPU: \(a.kernelIncomingCPU))")
    return lines.joined(separator: "\n")
  }

  /// One line, hop by hop, the node of each hop in brackets:
  /// `eth0 [node 1] -> rx-2 -> irq 29 virtio0-input.2 -> cpu 2 [node 1] -> rps cpus 0,7 -> received on cpu 7 [node 3] -> read on cpu 6 [node 3]`,
  /// then the hops that cost locality, or what could not be resolved.
  public static func path(_ p: SteeringPath) -> String {
    func node(_ value: Int?) -> String { value.map { " [node \($0)]" } ?? "" }
    func cpus(_ list: [Int]) -> String { list.map(String.init).joined(separator: ",") }
    var hops = ["\(p.interface)\(p.softwareInterface ? " (software interface)" : node(p.deviceNode))"]
    if let queue = p.rxQueue { hops.append("rx-\(queue)") }
    if let napi = p.napiID { hops.append("napi \(napi)") }
    if let irq = p.interrupt {
      let nodes = irq.nodes.isEmpty ? "" : " [node \(cpus(irq.nodes))]"
      hops.append("irq \(irq.number) \(irq.name) -> cpu \(cpus(irq.cpus))\(nodes)")
    }
    if let thread = p.napiThread {
      let on = thread.pinnedCPU.map { "on cpu \($0)" } ?? "on cpus \(cpus(thread.allowedCPUs))"
      let last = thread.lastCPU.map { ", last on cpu \($0)" } ?? ""
      hops.append("napi thread \(thread.name) pid \(thread.pid) \(on)\(last)")
    }
    for program in p.xdp?.programs ?? [] {
      var hop = "xdp program \(program.id)\(program.name.isEmpty ? "" : " \(program.name)") (\(program.mode))"
      for map in program.cpumaps { hop += " -> cpumap \(map.id) cpus \(cpus(map.cpus))" }
      if !program.xskmapIDs.isEmpty {
        hop += " -> af_xdp (xskmap \(program.xskmapIDs.map(String.init).joined(separator: ",")))"
      }
      hops.append(hop)
    }
    if let polling = p.busyPolling { hops.append("busy-polled by the reader (\(polling.description))") }
    if !p.rpsCPUs.isEmpty { hops.append("rps cpus \(cpus(p.rpsCPUs))") }
    if p.rfs { hops.append("rfs") }
    if let cpu = p.receiveCPU { hops.append("received on cpu \(cpu)\(node(p.receiveNode))") }
    if let cpu = p.readerCPU {
      let threads = p.readerSource == "threads" ? " (its threads' last cpu)" : ""
      hops.append("read on cpu \(cpu)\(node(p.readerNode))\(threads)")
    }
    var text = hops.joined(separator: " -> ")
    var costs: [String] = []
    if p.movedOffInterruptCPU == true {
      let cause =
        switch p.movedOffInterruptCause {
        case "napi_thread": "by its napi thread"
        case "xdp_cpumap": "by xdp, to a cpumap's cpu"
        case "busy_poll": "by busy polling"
        case "rfs": "by RFS, to its reader"
        case "rps": "by RPS"
        default: "by something sockaff cannot name"
        }
      costs.append("moved off the irq's cpu \(cause)")
    }
    if p.interruptOffDeviceNode == true { costs.append("irq off the nic's node") }
    if p.readerOffReceiveNode == true { costs.append("read on another node") }
    if !p.mayResteer.isEmpty {
      let names = p.mayResteer.map { name in
        switch name {
        case "ntuple_rules": "ntuple rules"
        case "atr": "ATR"
        case "arfs": "aRFS"
        default: name
        }
      }
      costs.append("may be re-steered by \(names.joined(separator: ", "))")
    }
    if !costs.isEmpty { text += "  (" + costs.joined(separator: "; ") + ")" }
    if let unresolved = p.unresolved { text += "  (unresolved: \(unresolved))" }
    return text
  }

  /// `0x5c2b394a from the NIC = predicted: verified (the NIC's hash is ...)`.
  public static func hashCheck(_ c: HashCheck) -> String {
    func hex(_ hash: UInt32) -> String { "0x" + String(hash, radix: 16) }
    var text = c.observedHash.map { hex($0) + (c.fromNIC ? " from the NIC" : " (the kernel's)") } ?? "none kept"
    if let predicted = c.predictedHash {
      text += (c.observedHash == predicted ? " = " : ", ") + "predicted \(hex(predicted))"
    }
    let verdict = c.verdict == .contradicted ? "CONTRADICTED" : c.verdict.rawValue
    return text + ": \(verdict) (\(c.reason))"
  }

  /// `query --predict`'s text answer.
  public static func render(_ p: PredictedAffinity) -> String {
    let peer = p.remote.map { " -> \($0)" } ?? ""
    let command = p.command.map { " (\($0))" } ?? ""
    var lines = ["pid \(p.pid)\(command) fd \(p.fd): \(p.transport.rawValue) \(p.local ?? "-")\(peer)"]
    if let cpu = p.cpu {
      let processor = p.processor.map { "group \($0.group) number \($0.number)" } ?? "group -"
      lines.append("  cpu \(cpu) (\(processor)), numa node \(p.numaNode.map(String.init) ?? "-") (predicted)")
    } else {
      lines.append("  cpu one of \(p.candidateCPUs.map(String.init).joined(separator: ",")) (predicted)")
    }
    let irq = p.irq.map { "irq \($0)" } ?? "irq unknown"
    lines.append("  rx queue \(p.rxQueue), \(irq), interface \(p.interface)")
    let hashed = p.hashedPorts ? "addresses and ports" : "addresses"
    lines.append(
      "  rss: \(p.hashFunction) hash 0x\(String(p.hash, radix: 16)) of the \(hashed), table entry \(p.tableIndex) of \(p.tableSize)"
    )
    if let rule = p.ntupleRule {
      lines.append("  ntuple rule \(rule.rule.location): \(rule.rule.action) -> rx queue \(rule.rxQueue) (before RSS)")
    }
    lines.append("  path: " + path(p.path))
    if let check = p.hashCheck, check.observedHash != nil { lines.append("  hash: " + hashCheck(check)) }
    if let note = p.note { lines.append("  note: \(note)") }
    let checked = p.hashCheck?.observedHash != nil
    lines.append("  source: predicted (\(checked ? "checked against the traced packets' hash" : "no packet observed"))")
    return lines.joined(separator: "\n")
  }

  public static func percent(_ share: Double) -> String {
    "\(Int((share * 100).rounded()))%"
  }
}
