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
      lines.append("  source: kernel SO_INCOMING_CPU (no packet traced since the tracer was attached)")
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
      text += locality.source == .recvmsg ? " (\(a.reads ?? 0) reads" : " (sampled from thread cpus"
      text += a.consumerCPU.map { ", last read on cpu \($0))" } ?? ")"
      if a.crossNUMA == true { text += "  CROSS-NUMA" }
      lines.append(text)
    }
    lines.append("  source: bpf (kernel SO_INCOMING_CPU: \(a.kernelIncomingCPU))")
    return lines.joined(separator: "\n")
  }

  public static func percent(_ share: Double) -> String {
    "\(Int((share * 100).rounded()))%"
  }
}
