import Foundation
import Glibc

/// A running Peers/peer.py process (optionally inside a network namespace),
/// driven over its stdin and read line by line (JSON) from its stdout.
final class Peer {
  static let script = Command.packageRoot.appending(path: "Tests/KernelTests/Peers/peer.py")
    .path(percentEncoded: false)
  /// Peers/load.py: checked bulk traffic and socket churn.
  static let loadScript = Command.packageRoot.appending(path: "Tests/KernelTests/Peers/load.py")
    .path(percentEncoded: false)

  private let process: Child
  private var buffer: [UInt8] = []
  /// The first line the peer printed: its pid and socket fds.
  private(set) var hello: [String: Any] = [:]

  init(_ arguments: [String], namespace: String? = nil, script: String = Peer.script) throws {
    process = try Self.spawn(arguments, namespace: namespace, script: script)
    hello = try readLine()
  }

  /// A peer whose first line is read later (by `readLine`): for starting
  /// several at once.
  private init(process: Child) { self.process = process }

  static func starting(_ arguments: [String], namespace: String? = nil, script: String = Peer.script) throws -> Peer {
    Peer(process: try spawn(arguments, namespace: namespace, script: script))
  }

  private static func spawn(_ arguments: [String], namespace: String?, script: String) throws -> Child {
    let command = ["python3", script] + arguments
    return try Child(namespace.map { ["ip", "netns", "exec", $0] + command } ?? command, withInput: true)
  }

  var pid: Int32 { Int32(hello["pid"] as! Int) }

  func fd(_ key: String = "fd") -> Int32 { Int32(hello[key] as! Int) }

  /// Reads the next JSON line, failing after `timeout` seconds.
  func readLine(timeout: Int32 = 20) throws -> [String: Any] {
    let fd = process.output.fileDescriptor
    while !buffer.contains(UInt8(ascii: "\n")) {
      var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      guard poll(&poller, 1, timeout * 1000) == 1 else {
        throw HarnessError("peer \(process.arguments) printed nothing for \(timeout) s")
      }
      var chunk = [UInt8](repeating: 0, count: 4096)
      let count = read(fd, &chunk, chunk.count)
      guard count > 0 else { throw HarnessError("peer \(process.arguments) exited") }
      buffer += chunk[..<count]
    }
    let end = buffer.firstIndex(of: UInt8(ascii: "\n"))!
    let line = Data(buffer[..<end])
    buffer.removeFirst(end + 1)
    guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
      throw HarnessError("peer printed \(String(decoding: line, as: UTF8.self))")
    }
    return object
  }

  /// Ends its input and waits for it to exit (peers that hold sockets
  /// until then close them).
  func finish() throws {
    try process.input?.close()
    try process.wait()
  }

  func send(_ line: String) {
    process.input?.write(Data((line + "\n").utf8))
  }

  /// Starts `count` exchanges; call `waitDone` to wait for them.
  func startExchanges(_ count: Int) { send("run \(count)") }

  func waitDone() throws {
    let reply = try readLine()
    guard reply["done"] != nil else { throw HarnessError("peer replied \(reply)") }
  }

}

/// A client/server pair of peers that exchange messages.
struct PeerPair {
  let server: Peer
  let client: Peer
  let serverFD: Int32

  /// TCP or UDP between two processes; `serverNamespace`/`clientNamespace`
  /// place them in network namespaces.
  static func start(
    transport: String, serverHost: String, clientNamespace: String? = nil, serverNamespace: String? = nil,
    connectOnFirst: Bool = false, serverCPU: Int? = nil, clientCPU: Int? = nil
  ) throws -> PeerPair {
    var serverArguments = serverCPU.map { ["--cpu", "\($0)"] } ?? []
    serverArguments += ["\(transport)-server", serverHost]
    if connectOnFirst { serverArguments.append("--connect-on-first") }
    let server = try Peer(serverArguments, namespace: serverNamespace)
    let port = "\(server.hello["port"] as! Int)"
    let client = try Peer(
      (clientCPU.map { ["--cpu", "\($0)"] } ?? []) + ["\(transport)-client", serverHost, port],
      namespace: clientNamespace)
    let serverFD = transport == "tcp" ? Int32(try server.readLine()["fd"] as! Int) : server.fd()
    return PeerPair(server: server, client: client, serverFD: serverFD)
  }

  func exchange(_ count: Int) throws {
    server.startExchanges(count)
    client.startExchanges(count)
    try client.waitDone()
    try server.waitDone()
  }
}
