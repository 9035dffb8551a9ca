import Foundation
import Glibc
import XCTest

/// Who may do what: an unprivileged user gets nothing but a clear refusal,
/// and the documented least capability set (docs/CAPABILITIES.md) works
/// while each capability left out is named when it is missing.
final class SecurityTests: KernelTestCase {
  /// The sockaff binary, copied where any user may run it (the build tree
  /// may sit under a directory only root can enter).
  var binary = ""

  override func setUpWithError() throws {
    try super.setUpWithError()
    let directory = try Command.must(["mktemp", "-d", "/tmp/sockaff-security-XXXXXX"])
      .trimmingCharacters(in: .whitespacesAndNewlines)
    chmod(directory, 0o755)
    binary = directory + "/sockaff"
    try Command.must(["install", "-m", "0755", Command.sockaffPath, binary])
  }

  override func tearDown() {
    _ = try? Command.run(["rm", "-rf", URL(filePath: binary).deletingLastPathComponent().path(percentEncoded: false)])
    super.tearDown()
  }

  /// sockaff as user nobody, with no capabilities.
  func asNobody(_ arguments: [String]) throws -> CommandResult {
    try Command.run(
      ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", binary] + arguments)
  }

  /// sockaff as root whose capabilities are only `capabilities`.
  func withOnly(_ capabilities: [String], _ arguments: [String]) throws -> CommandResult {
    let bounding = (["-all"] + capabilities.map { "+\($0)" }).joined(separator: ",")
    return try Command.run(["setpriv", "--bounding-set", bounding, "--inh-caps=-all", binary] + arguments)
  }

  func assertRefused(
    _ result: CommandResult, naming words: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(result.status, 7, "\(what): \(result.stderr)", file: file, line: line)
    XCTAssertEqual(result.stdout, "", "\(what): nothing on stdout", file: file, line: line)
    XCTAssertEqual(
      result.stderr.split(separator: "\n").count, 1, "\(what): one line: \(result.stderr)", file: file, line: line)
    XCTAssertTrue(
      words.contains { result.stderr.contains($0) }, "\(what) names one of \(words): \(result.stderr)", file: file,
      line: line)
  }

  func testUnprivilegedUserCanNeitherReadNorDetach() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    let socket = ["--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)"]
    let commands: [[String]] = [
      ["trace"], ["trace", "--foreground"], ["detach"], ["query"] + socket, ["query", "--json"] + socket,
      ["list"], ["list", "--pid", "\(pair.server.pid)"], ["watch", "--once", "--interval", "0.1"],
    ]
    for arguments in commands {
      let result = try asNobody(arguments)
      if arguments.contains("--json") {
        // --json: the error is also one object on stdout, never data.
        XCTAssertEqual(result.status, 7, result.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["kind"] as? String, "not_permitted")
        XCTAssertNil(object?["cpu"])
        continue
      }
      assertRefused(result, naming: ["CAP_", "root"], "nobody: sockaff \(arguments.joined(separator: " "))")
    }
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1, "still attached")
    XCTAssertEqual(try queryJSON(pid: pair.server.pid, fd: pair.serverFD)["packets"] as? Int, 5, "records intact")

    // status shows what needs no privilege (the kernel, the NICs) and says
    // that the tracer's own state is not this user's to read.
    let status = try asNobody(["status"])
    XCTAssertEqual(status.status, 0, status.stderr)
    XCTAssertTrue(status.stdout.contains("attached:        unknown ("), status.stdout)
    XCTAssertTrue(status.stdout.contains("kernel:          "), status.stdout)
    XCTAssertFalse(status.stdout.contains("sockets traced:"), "no tracer figures: \(status.stdout)")
    let json = try asNobody(["status", "--json"])
    XCTAssertEqual(json.status, 0, json.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any] ?? [:]
    XCTAssertNotNil(object["unreadable"] as? String, json.stdout)
    XCTAssertNil(object["records_created"], "nothing of the tracer's: \(json.stdout)")
    XCTAssertFalse((object["features"] as? [Any] ?? []).isEmpty, "the kernel's features")
  }

  /// A root-uid process without CAP_NET_ADMIN (a container's root with
  /// bpffs mounted in) cannot detach, though the pins are its uid's.
  func testRootWithoutCapabilitiesCannotDetach() throws {
    try attach()
    assertRefused(try withOnly([], ["detach"]), naming: ["CAP_NET_ADMIN"], "detach without capabilities")
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    let detach = try withOnly(["net_admin"], ["detach"])
    XCTAssertEqual(detach.status, 0, detach.stderr)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
  }

  /// trace: CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON. query and list:
  /// CAP_SYS_PTRACE. detach: CAP_NET_ADMIN. Each one left out is named.
  func testLeastCapabilitySet() throws {
    let traceCapabilities = ["bpf", "net_admin", "perfmon"]
    for missing in traceCapabilities {
      let others = traceCapabilities.filter { $0 != missing }
      assertRefused(
        try withOnly(others, ["trace"]), naming: ["CAP_\(missing.uppercased())"], "trace without \(missing)")
      XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0, "nothing half attached without \(missing)")
      XCTAssertEqual(KernelListing.pinsLeft(), [], "no pins left without \(missing)")
    }
    let trace = try withOnly(traceCapabilities, ["trace"])
    XCTAssertEqual(trace.status, 0, trace.stderr)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)

    // TCP: the kernel keeps SO_INCOMING_CPU for it (not for unconnected UDP).
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    settle()
    let socket = ["--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)"]
    assertRefused(
      try withOnly(traceCapabilities, ["query"] + socket), naming: ["CAP_SYS_PTRACE"], "query without sys_ptrace")
    assertRefused(
      try withOnly(traceCapabilities, ["list", "--pid", "\(pair.server.pid)"]), naming: ["CAP_SYS_PTRACE"],
      "list without sys_ptrace")
    let query = try withOnly(["sys_ptrace"], ["query", "--json"] + socket)
    XCTAssertEqual(query.status, 0, query.stderr)
    let answer = try JSONSerialization.jsonObject(with: Data(query.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(answer?["source"] as? String, "bpf")
    XCTAssertEqual(
      answer?["cpu"] as? Int, Int(try kernelIncomingCPU(pid: pair.server.pid, fd: pair.serverFD)),
      "the answer with least capabilities is the kernel's")
    let list = try withOnly(["sys_ptrace"], ["list", "--json", "--pid", "\(pair.server.pid)"])
    XCTAssertEqual(list.status, 0, list.stderr)
    XCTAssertTrue(list.stdout.contains("\"fd\":\(pair.serverFD)"), list.stdout)

    let detach = try withOnly(["net_admin"], ["detach"])
    XCTAssertEqual(detach.status, 0, detach.stderr)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
    XCTAssertEqual(KernelListing.pinsLeft(), [])
  }
}
