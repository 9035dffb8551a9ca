import Foundation
import Glibc
import SocketAffinity
import XCTest

/// Base for tests against the real kernel. They need root, bpftool, ip and
/// python3; where those are missing the test is skipped on a developer's
/// machine but fails loudly in CI (CI=true), never passing by skipping.
/// Every test starts and ends with the tracer detached.
class KernelTestCase: XCTestCase {
  override func setUpWithError() throws {
    try super.setUpWithError()
    var missing: [String] = []
    if geteuid() != 0 { missing.append("root") }
    for tool in ["bpftool", "ip", "python3"] where (try? Command.run(["which", tool]).status) != 0 {
      missing.append(tool)
    }
    if !FileManager.default.isExecutableFile(atPath: Command.sockaffPath) {
      missing.append("the sockaff binary at \(Command.sockaffPath)")
    }
    if !missing.isEmpty {
      let reason = "kernel tests need \(missing.joined(separator: ", "))"
      if ProcessInfo.processInfo.environment["CI"] == "true" {
        XCTFail("\(reason): in CI these tests must run")
        throw HarnessError(reason)
      }
      throw XCTSkip(reason)
    }
    try Command.sockaff("detach")
  }

  override func tearDown() {
    _ = try? Command.sockaff("detach")
    super.tearDown()
  }

  /// A sysfs tree that puts CPU 0 on node 0 and CPU 1 on node 1: the
  /// two-node host this machine is not.
  static let twoNodeSysfs = Command.packageRoot.appending(path: "Tests/KernelTests/Fixtures/two-node-one-cpu-each")
    .path(percentEncoded: false)

  /// `sockaff trace`, which must succeed.
  func attach(_ extraArguments: String...) throws {
    let result = try Command.run([Command.sockaffPath, "trace"] + extraArguments)
    XCTAssertEqual(result.status, 0, "sockaff trace: \(result.stderr)")
    guard result.status == 0 else { throw HarnessError("sockaff trace failed: \(result.stderr)") }
  }

  /// `sockaff list --json [arguments]`, decoded.
  func listJSON(_ arguments: String...) throws -> [[String: Any]] { try jsonArray(["list", "--json"] + arguments) }

  /// `sockaff ARGUMENTS` that must print a JSON array, decoded.
  func jsonArray(_ arguments: [String], environment: [String] = []) throws -> [[String: Any]] {
    let result = try Command.run(["/usr/bin/env"] + environment + [Command.sockaffPath] + arguments)
    guard result.status == 0,
      let list = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
    else { throw HarnessError("sockaff \(arguments) failed (\(result.status)): \(result.stderr)") }
    return list
  }

  /// `sockaff query --json` of pid/fd, decoded; fails the test on error.
  func queryJSON(pid: Int32, fd: Int32, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let result = try Command.sockaff("query", "--pid", "\(pid)", "--fd", "\(fd)", "--json")
    XCTAssertEqual(result.status, 0, "query pid \(pid) fd \(fd): \(result.stderr)", file: file, line: line)
    guard result.status == 0,
      let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    else { throw HarnessError("query pid \(pid) fd \(fd) gave no JSON: \(result.stdout) \(result.stderr)") }
    return object
  }

  /// A kernel feature as sockaff probes it (`status --json`'s `features`):
  /// "yes", "no", "refused" or "not_permitted", with its detail. A test of
  /// a reader's iterator tests it where the kernel runs it and the degraded
  /// answer where it does not (`DegradeTests` forces the refusal on any
  /// kernel with `SOCKAFF_REFUSE`).
  func feature(_ name: String, environment: [String] = []) throws -> (state: String, detail: String?) {
    let result = try Command.run(["/usr/bin/env"] + environment + [Command.sockaffPath, "status", "--json"])
    guard result.status == 0,
      let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
      let features = object["features"] as? [[String: Any]],
      let feature = features.first(where: { $0["name"] as? String == name })
    else { throw HarnessError("status --json has no feature \(name) (\(result.status)): \(result.stderr)") }
    return (feature["state"] as? String ?? "", feature["detail"] as? String)
  }

  /// The links `trace` makes on this kernel: ingress and pool release, the
  /// read tracer and the TCP_CLOSE slot return where the kernel has their
  /// tracepoints.
  func expectedLinks() throws -> Int {
    try 2 + ["tp_btf/sock_recv_length", "tp_btf/inet_sock_set_state"].filter { try feature($0).state == "yes" }.count
  }

  /// Lets delayed ACKs and other late packets land, so that the tracer and
  /// the kernel are compared on the same last packet.
  func settle() { usleep(300_000) }

  /// The kernel's own answer, read independently of the tracer.
  func kernelIncomingCPU(pid: Int32, fd: Int32) throws -> Int32 {
    let socket = try TargetSocket(pid: pid, fd: fd)
    return try socket.intOption(SOL_SOCKET, SO_INCOMING_CPU)
  }
}

/// The kernel's listing of attachments, through bpftool: not sockaff's view.
enum KernelListing {
  static func cgroupRoot() throws -> String {
    guard let root = Mounts.cgroup2Root(in: try Mounts.current()) else { throw HarnessError("no cgroup2") }
    return root
  }

  /// sockaff programs attached to the cgroup v2 root, per `bpftool cgroup show`.
  static func attachedSockaffPrograms() throws -> Int {
    let entries = try jsonList(["bpftool", "-j", "cgroup", "show", try cgroupRoot()])
    return entries.filter { ($0["name"] as? String) == "sockaff_ingress" }.count
  }

  /// Links whose program is one of sockaff's, per `bpftool link show`.
  static func sockaffLinks() throws -> Int {
    let programs = try jsonList(["bpftool", "-j", "prog", "show"])
    let names: Set = ["sockaff_ingress", "sockaff_consume", "sockaff_release", "sockaff_closed"]
    let ids = Set(programs.filter { names.contains($0["name"] as? String ?? "") }.compactMap { $0["id"] as? Int })
    let links = try jsonList(["bpftool", "-j", "link", "show"])
    return links.filter { ids.contains($0["prog_id"] as? Int ?? -1) }.count
  }

  /// bpftool's JSON array; bpftool prints nothing at all for an empty listing.
  static func jsonList(_ command: [String]) throws -> [[String: Any]] {
    let output = try Command.must(command)
    if output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return [] }
    guard let list = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] else {
      throw HarnessError("\(command.joined(separator: " ")) printed \(output)")
    }
    return list
  }

  static func pinsLeft() -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/bpf/sockaff")) ?? []
  }
}
