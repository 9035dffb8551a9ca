import ArgumentParser
import SockaffPresentation
import SocketAffinity

struct QueryCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "query",
    abstract: "Show which CPU and NUMA node process the packets received by one socket.",
    discussion: paragraphs(
      """
      The socket is fd F of process P, reached through pidfd_getfd: the process is not
      stopped or changed. The full answer (RX queue, counts, CPU shares, history) needs
      the tracer ('sockaff trace'). Without it, or for a socket that received nothing
      since, the answer is the kernel's SO_INCOMING_CPU when it has one, else RSS's
      prediction when the interface allows one; the answer says which.

      --predict answers before any packet, without the tracer: the Toeplitz hash of the
      socket's flow under the interface's RSS key and indirection table, that queue's
      interrupt, and the interrupt's CPU and node (exit status 15 when RSS does not
      decide: loopback, veth, an unconnected socket, ntuple rules).
      """))

  // Unconditional parsing: "-1" is a value to refuse as such ("not a
  // process id"), not an unknown flag that leaves the option without one.
  @Option(parsing: .unconditional, help: "Process id of the socket's owner.")
  var pid: Int32?

  @Option(parsing: .unconditional, help: "File descriptor number of the socket in that process.")
  var fd: Int32?

  @OptionGroup var selection: SocketSelection

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp(
      "Wait up to <seconds> for the socket's first traced packet (exit status 10 on time-out).",
      valueName: "seconds"))
  var wait: Double?

  @Flag(help: "Predict from the interface's RSS configuration instead of observing (no tracer needed).")
  var predict = false

  @Flag(help: "Print one JSON document.")
  var json = false

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    if let pid, pid <= 0 { throw ValidationError("--pid takes a process id (1 or more), not \(pid)") }
    if let fd, fd < 0 { throw ValidationError("--fd takes a file descriptor number (0 or more), not \(fd)") }
    if selection.port != nil {
      guard pid == nil && fd == nil else { throw ValidationError("--port finds the sockets: drop --pid and --fd") }
      guard wait == nil else { throw ValidationError("--wait waits for one socket: use --pid and --fd") }
    } else if pid == nil || fd == nil {
      throw ValidationError("a socket is --pid P --fd F, or --port N")
    }
    if let wait, !(0...86_400).contains(wait) {
      throw ValidationError("--wait takes 0 to 86400 seconds")
    }
    if predict && wait != nil {
      throw ValidationError("--predict answers before any packet: it does not wait (drop --wait)")
    }
  }

  func run() throws {
    try reporting(json: json) {
      let query = AffinityQuery(topology: try topologyOptions.topology())
      if let filter = selection.filter { return try answerEach(SocketSearch.find(filter), query: query) }
      guard let pid, let fd else { return }  // validate() asked for both
      if predict {
        try show(try query.predict(pid: pid, fd: fd))
        return
      }
      let answer: SocketAffinity
      if let wait {
        answer = try query.query(pid: pid, fd: fd, waitingUpTo: wait)
      } else {
        // The library's one chain: traced, else the kernel's, else predicted.
        switch try query.resolve(pid: pid, fd: fd) {
        case .observed(let observed): answer = observed
        case .predicted(let predicted): return try show(predicted)
        }
      }
      if json {
        try Output.json(answer)
      } else {
        print(AffinityText.render(answer))
      }
    }
  }

  /// `--port`: every matching socket under each of its holders, in JSON as
  /// one array. A holder gone meanwhile is passed over; none left is exit 19.
  private func answerEach(_ matches: [SocketSearch.Match], query: AffinityQuery) throws {
    var answers: [ResolvedAffinity] = []
    var unanswered: SockaffError?
    for match in matches {
      do {
        if let answer = try answer(match, query: query) { answers.append(answer) }
      } catch {
        // One socket the kernel knows nothing of yet does not hide the others.
        unanswered = unanswered ?? error
      }
    }
    guard !answers.isEmpty else {
      throw unanswered
        ?? SockaffError(
          .noSuchSocket, operation: "no process holds a \(selection.described)",
          hint: "processes this one cannot see or read (another pid namespace, no CAP_SYS_PTRACE) are not searched")
    }
    if json { return try Output.json(answers) }
    print(
      answers.map { resolved in
        switch resolved {
        case .observed(let answer): AffinityText.render(answer)
        case .predicted(let prediction): AffinityText.render(prediction)
        }
      }.joined(separator: "\n"))
  }

  /// One holder's answer; nil for a holder gone meanwhile.
  private func answer(_ match: SocketSearch.Match, query: AffinityQuery) throws(SockaffError) -> ResolvedAffinity? {
    do {
      if predict { return .predicted(try query.predict(pid: match.pid, fd: match.fd)) }
      return try query.resolve(pid: match.pid, fd: match.fd)
    } catch {
      if error.kind == .noSuchProcess || error.kind == .badFileDescriptor { return nil }
      throw error
    }
  }

  private func show(_ predicted: PredictedAffinity) throws {
    if json {
      try Output.json(predicted)
    } else {
      print(AffinityText.render(predicted))
    }
  }
}
