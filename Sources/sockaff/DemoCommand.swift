import ArgumentParser
import SockaffPresentation
import SocketAffinity

struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Attach if needed, open a loopback TCP connection, send over it, and query it.",
    discussion: paragraphs(
      """
      Shows sockaff answering a real query on this host. A tracer attached by the demo
      is detached again when it ends; one that was already attached is left alone.
      """))

  @Flag(help: "Print the answer as one JSON document.")
  var json = false

  func run() throws {
    try reporting(json: json) {
      let tracer = Tracer()
      let attachedHere = try tracer.attach() == .attached
      defer { if attachedHere { _ = try? tracer.detach() } }
      let demo = try LoopbackDemo()
      if !json {
        print("$ sockaff query --pid \(demo.pid) --fd \(demo.serverFD)   # the demo's accepted TCP socket")
      }
      let answer = try AffinityQuery().query(pid: demo.pid, fd: demo.serverFD)
      if json { return try Output.json(answer) }
      print(AffinityText.render(answer))
      let agrees = answer.kernelIncomingCPU == Int32(answer.cpu)
      print("kernel check: SO_INCOMING_CPU = \(answer.kernelIncomingCPU) (\(agrees ? "agrees" : "differs"))")
    }
  }
}
