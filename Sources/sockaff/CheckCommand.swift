import ArgumentParser
import SocketAffinity

/// `sockaff check`: the host's receive layout judged in one command
/// (`HostCheck`), each finding with its evidence; exit 21 when there is one.
struct CheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Check the host's receive layout: IRQs, RSS, RPS/RFS, traced sockets; exit 21 on findings.",
    discussion: paragraphs(
      """
      Reads every NIC of sockaff's network namespace (queues, their IRQs and CPUs, RSS's
      table, RPS and RFS), whether irqbalance runs, and, while the tracer is attached, every
      traced socket, every SO_REUSEPORT group (as list --reuseport shows them) and what
      changed in the NICs' steering since it attached. Each finding
      has an id, a severity (warning: costs locality or work now; notice: worth knowing),
      and its evidence. docs/USAGE.md lists the ids.

      Exit 0 when there is nothing to report, 21 when there are findings.
      """))

  @Flag(help: "Print one JSON document: findings, limits, and what was checked.")
  var json = false

  @OptionGroup var topologyOptions: TopologyOptions

  struct Report: Encodable {
    let findings: [HostCheck.Finding]
    /// What could not be checked, and why.
    let limits: [String]
    let interfaces: [String]
    let sockets: Int?
  }

  func run() throws {
    try reporting(json: json) {
      let topology = try topologyOptions.topology()
      let steering = SteeringInspection(topology: topology)
      let check = HostCheck(topology: topology)
      let status = try Tracer(topology: topology).status(steering: steering)
      let nics = HostCheck.nics(status.interfaces, steering: steering)
      var findings = check.findings(nics: nics, irqbalanceRunning: HostCheck.irqbalanceRunning())
      var limits: [String] = []
      var socketCount: Int?
      if status.attached {
        let listing = try SocketListing(topology: topology).listReportingSkipped(steering: steering)
        socketCount = listing.sockets.count
        findings += check.findings(sockets: listing.sockets)
        let groups = try ReuseportListing(topology: topology).groups()
        findings += check.findings(reuseportGroups: groups.groups)
        if groups.unreadableMembers > 0 {
          limits.append("\(groups.unreadableMembers) SO_REUSEPORT candidate sockets could not be read")
        }
        if !listing.notPermitted.isEmpty {
          limits.append("\(listing.notPermitted.count) processes' sockets could not be read")
        }
        if let changes = status.steeringChanges {
          findings += check.findings(changes: changes, since: status.steeringSince)
        }
      } else {
        limits.append(
          "the tracer is not attached: no traced sockets (cross-NUMA, hash checks) or steering changes to check "
            + "('sockaff trace' for those)")
      }
      let report = Report(
        findings: findings, limits: limits, interfaces: nics.map(\.queues.interface), sockets: socketCount)
      if json {
        try Output.json(report)
      } else {
        let warnings = findings.filter { $0.severity == .warning }.count
        print(
          "sockaff check: \(nics.count) NICs, \(socketCount.map { "\($0) traced sockets" } ?? "no tracer"): "
            + (findings.isEmpty
              ? "nothing to report" : "\(findings.count) findings (\(warnings) warnings)"))
        for finding in findings {
          let severity = finding.severity == .warning ? "WARNING" : "notice "
          print("\(severity) \(finding.id)\(finding.interface.map { " \($0)" } ?? ""): \(finding.message)")
          for line in finding.evidence { print("  \(line)") }
        }
        for limit in limits { print("limit: \(limit)") }
      }
      if !findings.isEmpty { throw ExitCode(SockaffError.Kind.findings.exitStatus) }
    }
  }
}
