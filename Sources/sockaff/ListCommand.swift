import ArgumentParser
import FoundationEssentials
import Glibc
import SockaffPresentation
import SocketAffinity

struct ListCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list",
    abstract: "List traced sockets of one process or of the whole host.",
    discussion: paragraphs(
      """
      Lists every socket that received a traced packet, under each process that holds
      it, including processes in other network namespaces. LOCAL% is the share of the
      socket's data consumed on the receiving NUMA node: exact where reads are traced
      (kernel 6.3+, 'rx' source), else sampled from where the threads last ran ('thr').

      --source kernel is a census with no program on the packet path, tracer or not:
      every TCP and UDP socket with the kernel's own SO_INCOMING_CPU (the CPU of its
      latest packet) and SO_INCOMING_NAPI_ID (its NAPI, hence its interface and RX queue
      where the netdev family names them, 6.8+). The kernel keeps no receive CPU for TCP
      listeners and unconnected UDP sockets: they are counted on stderr, not listed.

      --reuseport lists SO_REUSEPORT groups instead (TCP listeners or unconnected UDP
      sockets sharing an address and port in one namespace): each member's holders and
      their thread CPUs, the CPUs its packets were received on (a listener's: the SYNs and
      handshake ACKs that chose it), whether a steering program's map holds it, and
      whether it is received off its threads' node. --pid, --port, --proto, --local and
      --mismatch narrow the groups.
      """))

  @Option(
    help: ArgumentHelp(
      "Where the answers come from: 'traced' (the tracer's records), 'kernel' (a census of the kernel's own fields, no tracer needed), or 'auto' (traced where the tracer is attached, else the census).",
      valueName: "traced|kernel|auto"))
  var source: SocketListing.Source = .traced

  @Option(parsing: .unconditional, help: "Only this process.")
  var pid: Int32?

  @Flag(help: "Only sockets whose packets are processed on a NUMA node other than their consumers'.")
  var mismatch = false

  @Flag(help: "Print one JSON array (with --mismatch: an object with sockets and per-process summaries).")
  var json = false

  @Flag(help: "Every column (REMOTE, IRQ, IFACE, CPU SHARE too); without it the table fits 80 columns for IPv4.")
  var wide = false

  @OptionGroup var selection: SocketSelection

  @Option(
    help: ArgumentHelp(
      "Only sockets held by processes in this cgroup (v2) or below it: its path under the cgroup2 mount, or that mount's full path.",
      valueName: "path"))
  var cgroup: String?

  /// What `--by` sums the sockets by.
  enum Grouping: String, ExpressibleByArgument, CaseIterable {
    case cgroup
  }

  @Option(
    help: ArgumentHelp(
      "Sum the sockets per holder cgroup instead of listing them: processes, sockets, cross-NUMA sockets, packets and their nodes.",
      valueName: "cgroup"))
  var by: Grouping?

  @Flag(help: "List SO_REUSEPORT groups and their members instead of sockets.")
  var reuseport = false

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    if let pid, pid <= 0 { throw ValidationError("--pid takes a process id (1 or more), not \(pid)") }
    if reuseport {
      for (name, given) in [
        ("--source", source != .traced), ("--wide", wide), ("--cgroup", cgroup != nil), ("--by", by != nil),
        ("--remote", selection.remote != nil),
      ] where given {
        throw ValidationError(
          "--reuseport does not take \(name) (it takes --pid, --port, --proto, --local, --mismatch, --json)")
      }
    }
  }

  func run() throws {
    if reuseport { return try listGroups() }
    try reporting(json: json) {
      // A cgroup that does not exist is said before anything is listed.
      let within = try cgroup.map { (path) throws(SockaffError) in try Self.cgroupPath(path) }
      let progress = ProgressLine()
      let result = try SocketListing(topology: try topologyOptions.topology())
        .listReportingSkipped(pid: pid, source: source, progress: progress.update)
      progress.finish()
      if source == .auto && result.source == .kernel {
        Output.standardError(
          "sockaff: the tracer is not attached: the census of the kernel's own fields answers (--source kernel)")
      }
      if let reader = result.censusReader, reader != .iterator, let note = result.censusNote {
        Output.standardError(
          "sockaff: the census read \(reader == .mixed ? "some sockets" : "every socket") one by one, not in one pass: \(note)"
        )
      }
      if result.source == .kernel && result.withoutReceiveCPU > 0 {
        Output.standardError(
          "sockaff: \(result.withoutReceiveCPU) TCP/UDP \(result.withoutReceiveCPU == 1 ? "socket has" : "sockets have") no receive CPU in the kernel (TCP listeners, unconnected UDP sockets, nothing received yet): not listed"
        )
      }
      if !result.notPermitted.isEmpty {
        let pids = result.notPermitted.prefix(10).map(String.init).joined(separator: ", ")
        Output.standardError(
          "sockaff: warning: skipped \(result.notPermitted.count) \(result.notPermitted.count == 1 ? "process" : "processes") not readable: \(Privileges.canReadOtherProcesses ? "refused by the kernel although sockaff has CAP_SYS_PTRACE" : "no CAP_SYS_PTRACE") (pids \(pids)\(result.notPermitted.count > 10 ? ", ..." : ""))"
        )
      }
      // Unfiltered, the listing's own array: a filter copies every answer.
      var sockets = selection.filter == nil ? result.sockets : result.sockets.filter(selection.selects)
      if let within { sockets = sockets.filter { $0.isHeld(within: within) } }
      if mismatch { sockets = sockets.filter { $0.crossNUMA == true } }
      if by == .cgroup {
        let summaries = CgroupSummary.summarize(sockets)
        if json { return try Output.json(summaries) }
        return print(Self.cgroupTable(summaries))
      }
      let summaries = ProcessMismatch.summarize(sockets)
      if json {
        if mismatch { return try Output.json(MismatchDocument(sockets: sockets, processes: summaries)) }
        return try Output.jsonLines(sockets)
      }
      print(SocketTable.render(sockets, columns: wide ? SocketTable.wide : SocketTable.narrow))
      for summary in summaries where mismatch { print(summary.summary) }
    }
  }

  /// `--reuseport`: the groups, narrowed by --pid (a member held by it),
  /// --port/--proto/--local (the group's address) and --mismatch (a member
  /// received off its threads' node).
  func listGroups() throws {
    try reporting(json: json) {
      if let pid, access("/proc/\(pid)", F_OK) != 0 {
        throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "list pid \(pid)")
      }
      let result = try ReuseportListing(topology: try topologyOptions.topology()).groups()
      if let limits = result.limits { Output.standardError("sockaff: \(limits)") }
      if result.unreadableMembers > 0 {
        Output.standardError(
          "sockaff: warning: \(result.unreadableMembers) candidate \(result.unreadableMembers == 1 ? "socket" : "sockets") left out: no holder could be read"
        )
      }
      var groups = result.groups
      if let pid { groups = groups.filter { $0.members.contains { $0.holders.contains { $0.pid == pid } } } }
      if let filter = selection.filter {
        groups = groups.filter { group in
          guard let local = SocketSearch.Endpoint(group.local), local.port == filter.port else { return false }
          return (filter.transport.map { $0 == group.transport } ?? true)
            && (filter.local.map { $0.matches(local) } ?? true)
        }
      }
      if mismatch { groups = groups.filter { !$0.offNodeMembers.isEmpty } }
      if json { return try Output.json(groups) }
      if groups.isEmpty {
        Output.standardError(
          "sockaff: no SO_REUSEPORT group\(selection.port == nil && pid == nil && !mismatch ? "" : " matches")")
        return
      }
      print(ReuseportTable.render(groups))
    }
  }

  /// `--cgroup`'s path relative to the cgroup2 root, which must exist
  /// there: "/system.slice/x.service" or "/sys/fs/cgroup/system.slice/x.service".
  static func cgroupPath(_ text: String, command: String = "list") throws(SockaffError) -> String {
    let root = try Mounts.requireCgroup2Root()
    var path = text.hasPrefix(root + "/") ? String(text.dropFirst(root.count)) : text
    if path == root { path = "/" }
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    var info = stat()
    guard path.hasPrefix("/"), stat(root + path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
      throw SockaffError(
        .noSuchCgroup, operation: "\(command) --cgroup \(text)", hint: "no such cgroup under the cgroup2 mount \(root)")
    }
    return path
  }

  /// `list --by cgroup`'s table, widest cgroup name first column.
  static func cgroupTable(_ summaries: [CgroupSummary]) -> String {
    let width = max(6, summaries.map(\.cgroup.count).max() ?? 0)
    func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
      let padding = String(repeating: " ", count: max(0, width - text.count))
      return left ? text + padding : padding + text
    }
    var lines = [
      pad("CGROUP", width, left: true) + "  PROCS  SOCKETS  CROSS-NUMA     PACKETS  NODES"
    ]
    for row in summaries {
      lines.append(
        pad(row.cgroup, width, left: true) + "  " + pad("\(row.processes)", 5) + "  " + pad("\(row.sockets)", 7) + "  "
          + pad("\(row.crossNUMASockets)", 10) + "  " + pad("\(row.packets)", 10) + "  " + row.nodeShares)
    }
    return lines.joined(separator: "\n")
  }

  struct MismatchDocument: Encodable {
    let sockets: [SocketAffinity]
    let processes: [ProcessMismatch]
  }
}

/// "reading processes 812/3000" on stderr, only when stderr is a terminal
/// and the work has already taken a second; erased when done. Nothing on
/// stdout, so piping the output is unaffected.
final class ProgressLine: @unchecked Sendable {  // called one at a time (the listing's lock)
  private let enabled = isatty(STDERR_FILENO) == 1
  private let started = SystemClock.nanoseconds(CLOCK_MONOTONIC)
  private var lastDrawn: Int64 = 0
  private var drawn = false

  func update(done: Int, total: Int) {
    guard enabled else { return }
    let now = SystemClock.nanoseconds(CLOCK_MONOTONIC)
    guard now - started > 1_000_000_000, now - lastDrawn > 100_000_000 else { return }
    lastDrawn = now
    drawn = true
    Output.standardError("\rsockaff: reading processes \(done)/\(total)\u{1B}[K", newline: false)
  }

  func finish() {
    if drawn { Output.standardError("\r\u{1B}[K", newline: false) }
  }
}
