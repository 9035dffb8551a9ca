import ArgumentParser
import FoundationEssentials
import Glibc
import SocketAffinity

/// `sockaff advise`: the writes that put each RX queue's processing where
/// its flows are read (`AdvicePlanning`), each with its predicted effect
/// per socket; `--apply` makes them, saving an undo file first, and
/// measures before and after; `--undo` restores what it saved.
struct AdviseCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "advise",
    abstract:
      "Advise IRQ, RPS and RSS table changes that make flows node-local, with each one's effect; apply and undo them.",
    discussion: paragraphs(
      """
      Reads what 'sockaff check' reads and proposes, per RX queue: RPS off where RSS already
      spreads the NIC's flows over several queues, and the queue's processing (its IRQ, or
      RPS's mask on a NIC without RSS) on the node where most of its traced packets are read.
      An RSS table that leaves queues out is spread evenly over them all first ('ethtool -X
      DEV equal N'), alone: it moves flows between queues, each to its NIC hash's bucket,
      so advise is asked again once it is applied.
      Each change is one write, shown as its shell command, with the effect the
      prediction model of 'query --predict' gives it for every traced socket on that queue:
      "received on CPU c (node n) instead of CPU c' (node n')". Under threaded NAPI the
      queue's kernel thread is pinned instead (taskset), the IRQ only waking it. What the
      model cannot predict (busy polling, RFS, ntuple rules, readers not pinned to one
      node) is not advised: the output says what and why. Without the tracer only the NICs
      decide (RPS, IRQs off the NIC's node).

      --pid, --port and --cgroup limit the advice to the queues those sockets are on, and
      only they decide where a queue goes; other sockets on those queues are shown moving
      with them.

      --apply needs the tracer and every process readable (else exit 8 or 25, nothing
      changed). It saves every file's value to the undo file (\(AdviceApplication.defaultUndoPath))
      before it writes, reads each write back, rolls back on a failure, then measures
      --measure seconds before and after: per socket, the nodes it was received on, the
      node it is read on, and the share received on another node. --undo restores the saved
      values exactly (exit 23 with no undo file, 24 when it is stale: another boot, or a
      file changed since; nothing changed then).
      """))

  @Option(parsing: .unconditional, help: "Only the queues of this process's traced sockets.")
  var pid: Int32?

  @OptionGroup var selection: SocketSelection

  @Option(
    help: ArgumentHelp(
      "Only the queues of traced sockets held by processes in this cgroup (v2) or below it.", valueName: "path"))
  var cgroup: String?

  @Flag(help: "Print one JSON document: changes with their effects, what is not advised, limits.")
  var json = false

  @Flag(help: "Make the advised changes (undo file first), then measure before and after.")
  var apply = false

  @Flag(help: "Restore the values the last --apply saved, and remove the undo file.")
  var undo = false

  @Option(help: ArgumentHelp("With --apply: seconds measured before and after the change (1 to 60).", valueName: "s"))
  var measure: Double = 3

  @Option(name: .customLong("undo-file"), help: ArgumentHelp("The undo file.", valueName: "path"))
  var undoFile: String = AdviceApplication.defaultUndoPath

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    if let pid, pid <= 0 { throw ValidationError("--pid takes a process id (1 or more), not \(pid)") }
    if apply && undo { throw ValidationError("--apply and --undo go alone, not together") }
    if undo && (pid != nil || selection.port != nil || cgroup != nil) {
      throw ValidationError(
        "--undo restores everything the last --apply changed: it takes no --pid, --port or --cgroup")
    }
    if !(1...60).contains(measure) { throw ValidationError("--measure takes 1 to 60 seconds, not \(measure)") }
  }

  struct Report: Encodable {
    let changes: [ReceiveAdvice.Change]
    let withheld: [ReceiveAdvice.Withheld]
    let notes: [String]
    let limits: [String]
    let interfaces: [String]
    let sockets: Int?
    var applied: Applied? = nil
  }

  struct Applied: Encodable {
    let undoFile: String
    let measuredSeconds: Double
    let sockets: [AdviceMeasurement.Row]

    enum CodingKeys: String, CodingKey {
      case sockets
      case undoFile = "undo_file"
      case measuredSeconds = "measured_seconds"
    }
  }

  struct Undone: Encodable {
    let undoFile: String
    let restored: [AdviceApplication.UndoFile.Entry]

    enum CodingKeys: String, CodingKey {
      case restored
      case undoFile = "undo_file"
    }
  }

  func run() throws {
    try reporting(json: json) {
      let application = AdviceApplication(undoPath: undoFile)
      if undo { return try restore(application) }
      let within = try cgroup.map { (path) throws(SockaffError) in try ListCommand.cgroupPath(path, command: "advise") }
      if let pid, access("/proc/\(pid)", F_OK) != 0 {
        throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "pid \(pid)")
      }
      let topology = try topologyOptions.topology()
      let steering = SteeringInspection(topology: topology)
      let status = try Tracer(topology: topology).status(steering: steering)
      let nics = HostCheck.nics(status.interfaces, steering: steering)
      var limits: [String] = []
      var sockets: [SocketAffinity] = []
      let listing = SocketListing(topology: topology)
      if status.attached {
        let result = try listing.listReportingSkipped(steering: steering)
        sockets = result.sockets
        if !result.notPermitted.isEmpty {
          if apply {
            throw SockaffError(
              .unreadable, operation: "--apply",
              hint: "\(result.notPermitted.count) processes' sockets could not be read (pids "
                + result.notPermitted.prefix(10).map(String.init).joined(separator: ", ")
                + "): a change would move sockets sockaff cannot see; nothing changed")
          }
          limits.append("\(result.notPermitted.count) processes' sockets could not be read: their flows do not count")
        }
      } else if apply {
        throw SockaffError(
          .notAttached, operation: "--apply",
          hint: "tracer not attached: nothing to measure the change by ('sockaff trace' first); nothing changed")
      } else {
        limits.append(
          "the tracer is not attached: advice from the NICs alone (RPS, IRQs off the NIC's node); where flows are "
            + "read needs the traced sockets ('sockaff trace')")
      }
      let readers = Self.readers(of: sockets)
      let scoped = pid != nil || selection.port != nil || within != nil
      let inScope: (SocketAffinity) -> Bool = { socket in
        (pid == nil || socket.pid == pid) && selection.selects(socket)
          && (within.map(socket.isHeld(within:)) ?? true)
      }
      if scoped && status.attached && !sockets.contains(where: inScope) {
        var asked: [String] = []
        if let pid { asked.append("pid \(pid)") }
        if selection.port != nil { asked.append(selection.described) }
        if let cgroup { asked.append("cgroup \(cgroup)") }
        throw SockaffError(
          .noSuchSocket, operation: "--pid/--port/--cgroup",
          hint: "no traced socket matches \(asked.joined(separator: ", "))")
      }
      let advice = AdvicePlanning(topology: topology).advise(
        nics: nics, sockets: sockets, readers: readers, inScope: inScope, scoped: scoped,
        irqbalanceRunning: HostCheck.irqbalanceRunning())
      var report = Report(
        changes: advice.changes, withheld: advice.withheld, notes: advice.notes, limits: limits,
        interfaces: nics.map(\.queues.interface), sockets: status.attached ? Set(sockets.map(\.cookie)).count : nil)
      if apply && !advice.changes.isEmpty {
        report.applied = try applying(
          advice, application: application, listing: listing, steering: steering, topology: topology,
          inScope: inScope)
      }
      if json { return try Output.json(report) }
      print(Self.text(report, apply: apply))
    }
  }

  /// Measures, applies, measures again.
  func applying(
    _ advice: ReceiveAdvice, application: AdviceApplication, listing: SocketListing, steering: SteeringInspection,
    topology: Topology, inScope: (SocketAffinity) -> Bool
  ) throws(SockaffError) -> Applied {
    func snapshot() throws(SockaffError) -> [SocketAffinity] {
      try listing.listReportingSkipped(steering: SteeringInspection(topology: topology)).sockets
    }
    let measurement = AdviceMeasurement(topology: topology)
    let start = try snapshot()
    Self.sleep(measure)
    let beforeEnd = try snapshot()
    _ = try application.apply(advice.changes)
    // A new IRQ affinity takes effect at the queue's next interrupt (on
    // x86 without interrupt remapping that one may still land on the old
    // CPU), once the NAPI poll then running completes: the after window
    // starts a second later.
    Self.sleep(1)
    let afterStart = try snapshot()
    Self.sleep(measure)
    let end = try snapshot()
    let readers = Self.readers(of: end)
    let before = measurement.windows(from: start, to: beforeEnd, readers: readers)
    let after = measurement.windows(from: afterStart, to: end, readers: readers)
    return Applied(
      undoFile: application.undoPath, measuredSeconds: measure,
      sockets: measurement.rows(end.filter(inScope), before: before, after: after))
  }

  func restore(_ application: AdviceApplication) throws {
    let undone = try application.undo()
    if json { return try Output.json(Undone(undoFile: application.undoPath, restored: undone.entries)) }
    print("sockaff advise --undo: restored \(undone.entries.count) values from \(application.undoPath)")
    for entry in undone.entries.reversed() {
      let (after, before) =
        entry.what == .rssTable
        ? (ReceiveAdvice.Change.tableInWords(entry.after), ReceiveAdvice.Change.tableInWords(entry.before))
        : (entry.after, entry.before)
      print("  \(entry.path)\(entry.what == .rssTable ? " (RSS table)" : ""): \(after) -> \(before)")
    }
  }

  /// Per socket cookie, every CPU its holders' threads may run on.
  static func readers(of sockets: [SocketAffinity]) -> [UInt64: [Int]] {
    var byPID: [Int32: Set<Int>] = [:]
    var readers: [UInt64: Set<Int>] = [:]
    for socket in sockets {
      let cpus =
        byPID[socket.pid]
        ?? {
          let cpus = Set(ProcFS.threadAffinities(pid: socket.pid).flatMap { $0 })
          byPID[socket.pid] = cpus
          return cpus
        }()
      readers[socket.cookie, default: []].formUnion(cpus)
    }
    return readers.mapValues { $0.sorted() }
  }

  static func sleep(_ seconds: Double) { usleep(useconds_t(seconds * 1e6)) }  // at most 60 s: fits

  static func text(_ report: Report, apply: Bool) -> String {
    var lines: [String] = []
    let count = report.changes.count
    lines.append(
      "sockaff advise: \(report.interfaces.count) NICs, "
        + "\(report.sockets.map { "\($0) traced sockets" } ?? "no tracer"): "
        + (count == 0 ? "nothing to change" : "\(count) \(count == 1 ? "change" : "changes")")
        + (count > 1 ? " (effects are of all of them together)" : ""))
    for change in report.changes {
      lines.append(
        "\(change.what.rawValue) \(change.interface)\(change.rxQueue.map { " rx-\($0)" } ?? "")\(change.irq.map { " irq \($0)" } ?? ""): "
          + change.reason)
      let now =
        change.before.isEmpty
        ? "unreadable" : change.what == .rssTable ? ReceiveAdvice.Change.tableInWords(change.before) : change.before
      lines.append("  \(change.command)    # now \(now)")
      for effect in change.effects { lines.append("  \(effect.inScope ? "" : "(also) ")\(effect.line)") }
    }
    for withheld in report.withheld {
      let what = [withheld.interface, withheld.rxQueue.map { "rx-\($0)" }, withheld.socket].compactMap { $0 }
      lines.append("not advised \(what.joined(separator: " ")): \(withheld.why)")
    }
    for note in report.notes { lines.append("note: \(note)") }
    for limit in report.limits { lines.append("limit: \(limit)") }
    if apply && count == 0 { lines.append("nothing applied") }
    if let applied = report.applied {
      lines.append(
        "applied \(count) \(count == 1 ? "change" : "changes"); 'sockaff advise --undo' restores them "
          + "(saved in \(applied.undoFile))")
      lines.append(
        "measured \(applied.measuredSeconds == applied.measuredSeconds.rounded() ? String(Int(applied.measuredSeconds)) : String(applied.measuredSeconds)) s before and after:"
      )
      func window(_ w: AdviceMeasurement.Window) -> String {
        let nodes = w.receiveNodes.sorted { $0.key < $1.key }.map { "n\($0.key) \(Int(($0.value * 100).rounded()))%" }
        let cross = w.crossNUMAShare.map { "\(Int(($0 * 100).rounded()))%" } ?? "-"
        return "\(w.packets) pkts on \(nodes.isEmpty ? "-" : nodes.joined(separator: " ")), read on "
          + "\(w.readNode.map { "n\($0)" } ?? "?"), cross-NUMA \(cross)"
      }
      for row in applied.sockets {
        lines.append("  pid \(row.pid) fd \(row.fd) \(row.local ?? "-"):")
        lines.append("    before: \(window(row.before))")
        lines.append("    after:  \(window(row.after))")
      }
    }
    return lines.joined(separator: "\n")
  }
}
