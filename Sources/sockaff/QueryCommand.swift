import ArgumentParser
import SockaffPresentation
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
