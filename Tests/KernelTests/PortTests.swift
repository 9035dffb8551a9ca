import Foundation
import Glibc
import XCTest

/// Sockets by what an operator knows of them: `query --port` finds a
/// server's socket under each of its holders and answers each as `query
/// --pid --fd` does; the filters narrow it; `list --port` and `list
/// --cgroup` hold exactly those rows. Holders are checked against the
/// peers' own pids and fds, and the cgroup against the kernel's
/// /proc/P/cgroup after the test moved the process there.
final class PortTests: KernelTestCase {
  func queryArray(_ arguments: String...) throws -> [[String: Any]] { try jsonArray(["query", "--json"] + arguments) }

  func testQueryByPortAnswersEachHolderAsByPidAndFd() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    try pair.exchange(12)
    settle()
    let port = "\(pair.server.hello["port"] as! Int)"
    let byPort = try queryArray("--port", port)
    XCTAssertEqual(byPort.count, 1, "the server's socket, not the client's: \(byPort)")
    let direct = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    for key in ["pid", "fd", "cookie", "packets", "cpu", "local", "remote", "source"] {
      XCTAssertEqual("\(byPort.first?[key] ?? "none")", "\(direct[key] ?? "none")", key)
    }
    XCTAssertEqual(byPort.first?["packets"] as? Int, 12)

    // The filters: the protocol, the remote end (the client, as connected).
    let client = try XCTUnwrap(direct["remote"] as? String)
    XCTAssertEqual(try queryArray("--port", port, "--proto", "udp", "--remote", client).count, 1)
    XCTAssertEqual(try queryArray("--port", port, "--local", "127.0.0.1").count, 1)
    for filter in [["--proto", "tcp"], ["--remote", "127.0.0.2"], ["--local", "127.0.0.1:1"]] {
      let none = try Command.run([Command.sockaffPath, "query", "--port", port] + filter)
      XCTAssertEqual(none.status, 19, "\(filter): \(none.stderr)")
      XCTAssertEqual(none.stderr.split(separator: "\n").count, 1, none.stderr)
      XCTAssertTrue(none.stderr.contains("local port \(port)"), none.stderr)
      XCTAssertEqual(none.stdout, "")
    }

    // list --port: exactly that socket's row.
    let rows = try listJSON("--port", port)
    XCTAssertEqual(rows.map { "\($0["pid"] ?? "")/\($0["fd"] ?? "")" }, ["\(pair.server.pid)/\(pair.serverFD)"])
  }

  /// A socket that two processes hold is found under each, with one record.
  func testASharedSocketIsFoundUnderEachHolder() throws {
    try attach()
    let server = try Peer(["fork-share", "127.0.0.1"])
    let port = server.hello["port"] as! Int
    let client = try Peer(["udp-client", "127.0.0.1", "\(port)"])
    defer {
      try? client.finish()
      try? server.finish()
    }
    client.startExchanges(20)
    server.startExchanges(20)
    try client.waitDone()
    try server.waitDone()
    let answers = try queryArray("--port", "\(port)")
    XCTAssertEqual(
      Set(answers.compactMap { $0["pid"] as? Int }), [Int(server.pid), server.hello["child_pid"] as! Int], "\(answers)")
    XCTAssertEqual(Set(answers.compactMap { $0["cookie"] as? Int }).count, 1, "one socket")
    XCTAssertEqual(answers.compactMap { $0["packets"] as? Int }, [20, 20], "its datagrams, under each holder")
  }

  func testBadSelectionsAreUsageErrors() throws {
    for arguments in [
      ["query", "--port", "0"], ["query", "--port", "70000"], ["query", "--port", "80", "--pid", "1", "--fd", "0"],
      ["query", "--port", "80", "--local", "nowhere"], ["query", "--proto", "tcp", "--pid", "1", "--fd", "0"],
      ["query", "--pid", "1"], ["list", "--remote", "10.0.0.1"],
    ] {
      let result = try Command.run([Command.sockaffPath] + arguments)
      XCTAssertEqual(result.status, 64, "\(arguments): \(result.stderr)")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
    }
  }

  /// A cgroup of the test's own, with the server moved into it: `list
  /// --cgroup` holds the server's socket and nothing of the client's, by the
  /// path under the cgroup2 mount or by its full path.
  func testListByCgroupHoldsExactlyItsProcessesSockets() throws {
    try attach()
    let root = try KernelListing.cgroupRoot()
    let name = "/sockaff-test-\(getpid())"
    try Command.must(["mkdir", root + name])
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    defer {
      // Out of it again (the root takes any process), then removed.
      try? "\(pair.server.pid)\n".write(toFile: root + "/cgroup.procs", atomically: false, encoding: .utf8)
      rmdir(root + name)
    }
    try "\(pair.server.pid)\n".write(toFile: root + name + "/cgroup.procs", atomically: false, encoding: .utf8)
    XCTAssertTrue(
      try String(contentsOfFile: "/proc/\(pair.server.pid)/cgroup", encoding: .utf8).contains("0::\(name)\n"),
      "the kernel has the server in the cgroup")
    try pair.exchange(6)
    settle()
    for path in [name, root + name, root + name + "/"] {
      let rows = try listJSON("--cgroup", path)
      XCTAssertEqual(Set(rows.compactMap { $0["pid"] as? Int }), [Int(pair.server.pid)], "\(path): \(rows)")
      XCTAssertEqual(rows.compactMap { $0["packets"] as? Int }, [6])
      XCTAssertEqual(rows.compactMap { $0["cgroup"] as? String }, [name], "each answer names its holder's cgroup")
    }
    // Summed per cgroup: the test's cgroup holds the server's one socket
    // and its 6 packets; the client's cgroup is another row.
    let summaries = try jsonArray(["list", "--by", "cgroup", "--json"])
    let ours = try XCTUnwrap(summaries.first { $0["cgroup"] as? String == name }, "\(summaries)")
    XCTAssertEqual(ours["processes"] as? Int, 1)
    XCTAssertEqual(ours["sockets"] as? Int, 1)
    XCTAssertEqual(ours["packets"] as? Int, 6)
    let clientCgroup = try XCTUnwrap(
      try String(contentsOfFile: "/proc/\(pair.client.pid)/cgroup", encoding: .utf8).split(separator: "\n")
        .first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) })
    XCTAssertTrue(
      summaries.contains { $0["cgroup"] as? String == clientCgroup && ($0["sockets"] as? Int ?? 0) >= 1 },
      "the client's cgroup (\(clientCgroup)) holds its socket")
    let table = try Command.sockaff("list", "--by", "cgroup", "--cgroup", name)
    XCTAssertEqual(table.status, 0, table.stderr)
    XCTAssertEqual(table.stdout.split(separator: "\n").count, 2, "the header and the test's cgroup: \(table.stdout)")
    XCTAssertTrue(table.stdout.contains(name), table.stdout)
    // The metrics: the test's cgroup among the cgroups with sockets.
    let exposition = try Command.sockaff("export")
    XCTAssertTrue(
      exposition.stdout.contains("sockaff_cgroup_sockets{cgroup=\"\(name)\"} 1"),
      exposition.stdout.split(separator: "\n").filter { $0.contains("cgroup_") }.joined(separator: "\n"))
    XCTAssertTrue(
      try listJSON("--cgroup", "/").contains { $0["pid"] as? Int == Int(pair.client.pid) }, "the root holds all")
    let missing = try Command.sockaff("list", "--cgroup", name + "-absent")
    XCTAssertEqual(missing.status, 20, missing.stderr)
    XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
    XCTAssertTrue(missing.stderr.contains("no such cgroup"), missing.stderr)
  }
}
