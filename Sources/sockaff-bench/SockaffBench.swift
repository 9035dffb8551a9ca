import ArgumentParser
import FoundationEssentials
import Glibc
import SocketAffinity

/// `make bench`'s helper: times sockaff's library calls in-process, and
/// makes fan-in traffic (also for the VM lab, which has no Python).
@main
struct SockaffBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sockaff-bench",
    abstract: "Times sockaff's library calls and sends fan-in traffic, for the benchmark and the VM lab.",
    subcommands: [
      Query.self, List.self, JSON.self, UDPSend.self, TCPConnect.self, UDPSinkCommand.self, RSSFlowsCommand.self,
      HoldPrograms.self,
    ])

  /// Prints one JSON object: median and p99 in microseconds, and the repeats.
  static func report(_ samples: [Double]) {
    let sorted = samples.sorted()
    let median = sorted[sorted.count / 2]
    let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    print("{\"median_us\": \(median), \"p99_us\": \(p99), \"repeats\": \(sorted.count)}")
  }

  static func microseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = SystemClock.nanoseconds(CLOCK_MONOTONIC)
    try body()
    return Double(SystemClock.nanoseconds(CLOCK_MONOTONIC) - start) / 1e3
  }

  struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One socket's query, repeated.")
    @Argument var pid: Int32
    @Argument var fd: Int32
    @Argument var repeats: Int

    func run() throws {
      let query = AffinityQuery(topology: .live())
      report(try (0..<repeats).map { _ in try microseconds { _ = try query.query(pid: pid, fd: fd) } })
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A process's listing, repeated.")
    @Argument var pid: Int32
    @Argument var repeats: Int

    func run() throws {
      let listing = SocketListing(topology: .live())
      report(try (0..<repeats).map { _ in try microseconds { _ = try listing.list(pid: pid) } })
    }
  }

  struct JSON: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "json", abstract: "`list --json`'s encoding of a process's records, per record.")
    @Argument var pid: Int32
    @Argument var repeats: Int

    func run() throws {
      let records = try SocketListing(topology: .live()).list(pid: pid)
      guard !records.isEmpty else { throw SockaffError(.noPacketsYet, operation: "no traced socket in pid \(pid)") }
      report(
        try (0..<repeats).map { _ in
          try microseconds { _ = try JSONLines.document(records) { _ in } } / Double(records.count)
        })
    }
  }

  /// COUNT PORT[,PORT...] CPU[,CPU...]: the i-th CPU's thread to the i-th
  /// port, or every thread to the one port.
  struct FanIn: ParsableArguments {
    @Argument(help: "Datagrams or connections per CPU.") var count: Int
    @Argument(help: "Port, or one port per CPU, comma-separated.") var ports: String
    @Argument(help: "CPUs, comma-separated: one pinned sender thread each.") var cpus: String

    func validate() throws {
      let (ports, cpus) = (parsedPorts, parsedCPUs)
      guard count > 0, !ports.isEmpty, !cpus.isEmpty, ports.count == 1 || ports.count == cpus.count else {
        throw ValidationError("COUNT > 0, and one port or as many ports as CPUs")
      }
    }

    var parsedPorts: [UInt16] { ports.split(separator: ",").compactMap { UInt16($0) } }
    var parsedCPUs: [Int] { cpus.split(separator: ",").compactMap { Int($0) } }

    /// Runs the senders and prints {"seconds", "packets"}.
    func send(_ kind: FanInTraffic.Kind) {
      let ports = parsedPorts
      let cpus = parsedCPUs
      let start = SystemClock.nanoseconds(CLOCK_MONOTONIC)
      FanInTraffic.run(kind, count: count, ports: cpus.indices.map { ports[ports.count == 1 ? 0 : $0] }, cpus: cpus)
      let seconds = Double(SystemClock.nanoseconds(CLOCK_MONOTONIC) - start) / 1e9
      print("{\"seconds\": \(seconds), \"packets\": \(count * cpus.count)}")
    }
  }

  struct UDPSend: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "udp-send", abstract: "64-byte datagrams to 127.0.0.1 from one pinned thread per CPU.")
    @OptionGroup var fanIn: FanIn
    func run() { fanIn.send(.datagrams) }
  }

  struct TCPConnect: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "tcp-connect", abstract: "Connections to 127.0.0.1, each closed at once, from one thread per CPU.")
    @OptionGroup var fanIn: FanIn
    func run() { fanIn.send(.connections) }
  }

  struct UDPSinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "udp-sink", abstract: "A UDP socket on PORT that reads forever; prints {\"pid\", \"fd\"}.")
    @Argument var port: UInt16
    func run() { UDPSink.run(port: port) }
  }

  struct RSSFlowsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "rss-flows",
      abstract: "Connected UDP and TCP flows to a peer, each receiving on command (the VM lab's RSS checks).")
    @Option(help: "The address to bind the flows to.") var local: String
    @Option(help: "The peer to connect them to.") var peer: String
    @Option(help: "The peer's UDP port.") var udpPort: UInt16
    @Option(help: "The peer's TCP port.") var tcpPort: UInt16
    @Option(help: "Local ports of the UDP flows, comma separated.") var udp: String
    @Option(help: "Local ports of the TCP flows, comma separated.") var tcp: String = ""

    func run() throws {
      func ports(_ text: String) throws -> [UInt16] {
        try text.split(separator: ",").map {
          guard let port = UInt16($0) else { throw ValidationError("not a port: \($0)") }
          return port
        }
      }
      RSSFlows.run(
        local: local, peer: peer, udpPort: udpPort, tcpPort: tcpPort, udp: try ports(udp), tcp: try ports(tcp))
    }
  }
}
