import SocketAffinity

/// `list --reuseport`'s text: per group a heading (protocol, address,
/// namespace, member count, how the kernel picks a member and why sockaff
/// says so), then a row per member.
public enum ReuseportTable {
  public static func render(_ groups: [ReuseportGroup]) -> String {
    groups.map(render).joined(separator: "\n\n")
  }

  static func render(_ group: ReuseportGroup) -> String {
    var heading = "\(group.transport.rawValue) \(group.local)"
    if let interface = group.boundInterface { heading += " on \(interface)" }
    heading += "  netns \(group.networkNamespace.map(String.init) ?? "-")  \(group.members.count) members"
    heading += "  steering: \(group.steering.kind.rawValue)"
    let offNode = group.offNodeMembers.count
    if offNode > 0 { heading += "  \(offNode) received off their threads' node" }
    let rows =
      [
        [
          "HOLDERS", "COMMAND", "THREADS", "THREAD CPUS", "THREAD NODES", "PINNED", "PACKETS", "RECEIVED ON",
          "RX NODES", "LOCAL%", "MAP SLOT", "OFF-NODE",
        ]
      ]
      + group.members.map(row)
    let table = SocketTable.format(rows, rightAligned: [5, 6]).split(separator: "\n").map { "  " + $0 }
    return ([heading, "  " + group.steering.detail] + table).joined(separator: "\n")
  }

  static func row(_ member: ReuseportGroup.Member) -> [String] {
    let holders =
      member.holders.prefix(3).map { "\($0.pid)/\($0.fd)" }.joined(separator: ",")
      + (member.holders.count > 3 ? ",+\(member.holders.count - 3)" : "")
    let commands = Array(Set(member.holders.compactMap(\.command))).sorted().joined(separator: ",")
    return [
      holders.isEmpty ? "-" : holders, commands.isEmpty ? "-" : commands, member.threads.rawValue,
      member.threadCPUs.isEmpty ? "-" : CPUList.format(member.threadCPUs),
      member.threadNodes.isEmpty ? "-" : CPUList.format(member.threadNodes),
      member.incomingCPU.map(String.init) ?? "-", member.packets.map(String.init) ?? "-",
      member.cpus.isEmpty
        ? "-" : member.cpus.prefix(3).map { "\($0.cpu):\(Int(($0.share * 100).rounded()))%" }.joined(separator: " "),
      member.receivedNodes.isEmpty ? "-" : CPUList.format(member.receivedNodes),
      member.locality.map { "\(Int(($0.sameNode * 100).rounded()))% \($0.source == .recvmsg ? "rx" : "thr")" } ?? "-",
      member.slots.isEmpty ? "-" : member.slots.map { "\($0.mapID):\($0.key)" }.joined(separator: ","),
      member.offNode.map { $0 ? "yes !" : "no" } ?? "-",
    ]
  }
}
