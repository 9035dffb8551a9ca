import ArgumentParser
import SocketAffinity

struct QueryCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "query",
    abstract: "Show which CPU and NUMA node process the packets received by one socket.",
    discussion: """
      The socket is fd F of process P, reached through pidfd_getfd: the process is not
      stopped or changed. Needs the tracer ('sockaff trace'); a socket that received
      nothing since then is answered from the kernel's SO_INCOMING_CPU when it has one.
      """)

  @Option(help: "Process id of the socket's owner.")
  var pid: Int32

  @Option(help: "File descriptor number of the socket in that process.")
  var fd: Int32

  @Option(
    help: ArgumentHelp(
      "Wait up to <seconds> for the socket's first traced packet (exit status 10 on time-out).",
      valueName: "seconds"))
  var wait: Double?

  @Flag(help: "Print one JSON document.")
  var json = false

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    if let wait, !(0...86_400).contains(wait) {
      throw ValidationError("--wait takes 0 to 86400 seconds")
    }
  }

  func run() throws {
    try reporting(json: json) {
      let query = AffinityQuery(topology: try topologyOptions.topology())
      let answer =
        try wait.map { (seconds) throws(SockaffError) in
          try query.query(pid: pid, fd: fd, waitingUpTo: seconds)
        } ?? query.query(pid: pid, fd: fd)
      if json {
        try Output.json(answer)
      } else {
        print(AffinityText.render(answer))
      }
    }
  }
}

/// The human-readable form of one socket's answer.
enum AffinityText {
  static func render(_ a: SocketAffinity) -> String {
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

  static func percent(_ share: Double) -> String {
    "\(Int((share * 100).rounded()))%"
  }
}
