import ArgumentParser
import SocketAffinity

@main
struct Sockaff: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sockaff",
    abstract: "Which CPU, RX queue and NUMA node process the packets a socket receives.",
    discussion: paragraphs(
      """
      sockaff attaches a BPF program to the socket receive path (cgroup_skb ingress on
      the root cgroup v2) that records, per socket, the CPU that processed each received
      packet. Queries then answer by PID and fd, for any process, without changing it.

      Start with 'sockaff trace', then 'sockaff query --pid P --fd F'.

      Exit statuses: \(SockaffError.exitStatusTable.map { "\($0.status) \($0.summary)" }.joined(separator: ", ")).
      """),
    version: SockaffVersion.line,
    subcommands: [
      TraceCommand.self, DetachCommand.self, StatusCommand.self, QueryCommand.self, ListCommand.self,
      WatchCommand.self, ExportCommand.self, ServeCommand.self, CheckCommand.self, AdviseCommand.self,
      DemoCommand.self,
    ])

  /// ArgumentParser's own main, except that a usage error is one line on
  /// stderr (exit 64), like every other error: scripts read one line, and
  /// `sockaff help COMMAND` has the full usage.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      let code = exitCode(for: error)
      guard code == .validationFailure else { exit(withError: error) }
      let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
      Output.standardError("sockaff: \(message) (see 'sockaff help')")
      exit(withError: ExitCode.validationFailure)
    }
  }
}
