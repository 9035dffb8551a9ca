import ArgumentParser
import SocketAffinity

/// Sockets by what an operator knows of them, for `query` and `list`: a
/// local port, and optionally the protocol and the local or remote address
/// (as `ss` shows them), instead of a pid and an fd.
struct SocketSelection: ParsableArguments {
  @Option(help: "Sockets whose local port is this one (1 to 65535), in any process and network namespace.")
  var port: Int?

  @Option(name: .customLong("proto"), help: ArgumentHelp("With --port: only this protocol.", valueName: "tcp|udp"))
  var transport: SocketKind.TransportProtocol?

  @Option(help: ArgumentHelp("With --port: only this local address (ADDR or ADDR:PORT).", valueName: "address"))
  var local: String?

  @Option(help: ArgumentHelp("With --port: only this remote address (ADDR or ADDR:PORT).", valueName: "address"))
  var remote: String?

  func validate() throws {
    guard let port else {
      if transport != nil || local != nil || remote != nil {
        throw ValidationError("--proto, --local and --remote go with --port")
      }
      return
    }
    guard (1...65535).contains(port) else { throw ValidationError("--port takes 1 to 65535, not \(port)") }
    for (name, value) in [("--local", local), ("--remote", remote)] {
      if let value, SocketSearch.Endpoint(value) == nil {
        throw ValidationError("\(name) takes an address or ADDR:PORT ([ADDR]:PORT for IPv6), not '\(value)'")
      }
    }
  }

  /// The filter, when --port is given.
  var filter: SocketSearch.Filter? {
    port.map {
      SocketSearch.Filter(
        port: UInt16($0), transport: transport, local: local.flatMap(SocketSearch.Endpoint.init),
        remote: remote.flatMap(SocketSearch.Endpoint.init))
    }
  }

  /// The filter in words, for an answer that finds nothing: "TCP socket
  /// with local port 80, remote 10.0.0.2".
  var described: String {
    var words = "\(transport?.rawValue.uppercased() ?? "TCP or UDP") socket with local port \(port ?? 0)"
    if let local { words += ", local \(local)" }
    if let remote { words += ", remote \(remote)" }
    return words
  }

  /// Whether an answer's socket is one the filter selects (for `list`,
  /// whose rows already carry their addresses).
  func selects(_ socket: SocketAffinity) -> Bool {
    guard let filter else { return true }
    guard let local = socket.local.flatMap(SocketSearch.Endpoint.init), local.port == filter.port else {
      return false
    }
    if let transport = filter.transport, transport != socket.transport { return false }
    if let wanted = filter.local, !wanted.matches(local) { return false }
    if let wanted = filter.remote {
      guard let remote = socket.remote.flatMap(SocketSearch.Endpoint.init), wanted.matches(remote) else { return false }
    }
    return true
  }
}

extension SocketKind.TransportProtocol: ExpressibleByArgument {}

extension SocketAffinity {
  /// `--cgroup`'s filter (list, advise): the holder is in cgroup `path`
  /// (relative to the cgroup2 root, as `ListCommand.cgroupPath` gives it)
  /// or below it.
  func isHeld(within path: String) -> Bool { cgroup.map { ProcFS.cgroup($0, isWithin: path) } ?? false }
}
