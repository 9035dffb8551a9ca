import Foundation
import Glibc
import XCTest

/// `sockaff advise` on this host: what it refuses, and `--undo` on the
/// kernel's own files. The undo file names the RPS mask of a veth the test
/// made in a namespace of its own (sysfs there is that namespace's, through
/// `ip netns exec`), so the host's own steering is never touched here; the
/// advice and `--apply`'s measured effect are checked in the VM lab, on a
/// host made bad on purpose, and the rules on the unit tests' fixture NIC.
final class AdviseTests: KernelTestCase {
  var scratch = ""

  override func setUpWithError() throws {
    try super.setUpWithError()
    scratch = FileManager.default.temporaryDirectory.appending(path: "sockaff-advise-\(getpid())-\(UUID())").path
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
  }

  override func tearDown() {
    try? FileManager.default.removeItem(atPath: scratch)
    super.tearDown()
  }

  var undoFile: String { "\(scratch)/undo.json" }

  func bootID() throws -> String {
    try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// An undo file for the receiving veth's rx-0 RPS mask.
  func writeUndo(before: String, after: String, boot: String? = nil) throws {
    let entry: [String: Any] = [
      "what": "rps_cpus", "path": "/sys/class/net/\(NetworkNamespacePair.receiverDevice)/queues/rx-0/rps_cpus",
      "before": before, "after": after,
    ]
    let document: [String: Any] = [
      "version": 1, "boot_id": try boot ?? bootID(), "applied_at": 0, "entries": [entry],
    ]
    try JSONSerialization.data(withJSONObject: document).write(to: URL(filePath: undoFile))
  }

  /// The receiving veth's rx-0 RPS CPUs, read in its namespace.
  func rpsCPUs(_ pair: NetworkNamespacePair) throws -> Set<Int> {
    let text = try Command.must([
      "ip", "netns", "exec", pair.receiver, "cat",
      "/sys/class/net/\(NetworkNamespacePair.receiverDevice)/queues/rx-0/rps_cpus",
    ])
    var cpus = Set<Int>()
    for (index, word) in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").reversed()
      .enumerated()
    {
      let value = try XCTUnwrap(UInt32(word, radix: 16), text)
      for bit in 0..<32 where value & (1 << bit) != 0 { cpus.insert(index * 32 + bit) }
    }
    return cpus
  }

  func undo(in pair: NetworkNamespacePair, json: Bool = false) throws -> CommandResult {
    try Command.run(
      ["ip", "netns", "exec", pair.receiver, Command.sockaffPath, "advise", "--undo", "--undo-file", undoFile]
        + (json ? ["--json"] : []))
  }

  func testWithoutTheTracerItAdvisesFromTheNICsAloneAndApplyRefuses() throws {
    XCTAssertEqual(try Command.sockaff("detach").status, 0)
    let advice = try Command.run([Command.sockaffPath, "advise", "--json", "--undo-file", undoFile])
    XCTAssertEqual(advice.status, 0, advice.stderr)
    let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(advice.stdout.utf8)) as? [String: Any])
    let limits = object["limits"] as? [String] ?? []
    XCTAssertTrue(limits.contains { $0.hasPrefix("the tracer is not attached") }, "\(limits)")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []
    let nics = Set(names.filter { FileManager.default.fileExists(atPath: "/sys/class/net/\($0)/device") })
    XCTAssertEqual(Set(object["interfaces"] as? [String] ?? []), nics)
    for change in object["changes"] as? [[String: Any]] ?? [] {
      XCTAssertTrue(nics.contains(change["interface"] as? String ?? ""), "\(change)")
      XCTAssertEqual((change["effects"] as? [Any])?.count, 0, "no traced socket to move: \(change)")
    }

    let apply = try Command.run([Command.sockaffPath, "advise", "--apply", "--undo-file", undoFile])
    XCTAssertEqual(apply.status, 8, apply.stderr)
    XCTAssertEqual(apply.stderr.split(separator: "\n").count, 1, apply.stderr)
    XCTAssertTrue(apply.stderr.contains("nothing changed"), apply.stderr)
    XCTAssertEqual(apply.stdout, "")
    XCTAssertFalse(FileManager.default.fileExists(atPath: undoFile), "nothing saved, nothing changed")
  }

  /// --undo writes the saved value back to the kernel's file, reads it
  /// back, and removes the undo file; a second --undo has nothing to undo.
  func testUndoRestoresTheSavedValueOnTheKernelsFile() throws {
    let pair = try NetworkNamespacePair()
    XCTAssertEqual(try rpsCPUs(pair), [], "a new veth has RPS off")
    try writeUndo(before: "1", after: "0")
    let result = try undo(in: pair, json: true)
    XCTAssertEqual(result.status, 0, result.stderr)
    let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    XCTAssertEqual((object["restored"] as? [[String: Any]])?.count, 1, result.stdout)
    XCTAssertEqual(try rpsCPUs(pair), [0], "the saved mask, as the kernel reads it back")
    XCTAssertFalse(FileManager.default.fileExists(atPath: undoFile))

    let again = try undo(in: pair)
    XCTAssertEqual(again.status, 23, again.stderr)
    XCTAssertEqual(again.stderr.split(separator: "\n").count, 1, again.stderr)
    XCTAssertTrue(again.stderr.contains("no undo file"), again.stderr)
    XCTAssertEqual(try rpsCPUs(pair), [0])
  }

  /// Stale: the file no longer holds what --apply wrote, another boot, or
  /// not an undo file at all. Each is one line, exit 24, and nothing is
  /// written: the mask stays, and so does the undo file.
  func testAStaleUndoFileChangesNothing() throws {
    let pair = try NetworkNamespacePair()
    for (label, write) in [
      ("changed since", { try self.writeUndo(before: "1", after: "2") }),
      ("another boot", { try self.writeUndo(before: "1", after: "0", boot: "00000000-0000-0000-0000-000000000000") }),
      ("not sockaff's", { try Data("{\"version\": 1}".utf8).write(to: URL(filePath: self.undoFile)) }),
    ] as [(String, () throws -> Void)] {
      try write()
      let result = try undo(in: pair)
      XCTAssertEqual(result.status, 24, "\(label): \(result.stderr)")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
      XCTAssertTrue(result.stderr.contains("nothing changed"), result.stderr)
      XCTAssertEqual(result.stdout, "")
      XCTAssertEqual(try rpsCPUs(pair), [], "\(label): the mask is untouched")
      XCTAssertTrue(FileManager.default.fileExists(atPath: undoFile), "\(label): the undo file is kept")
    }
  }

  /// Bad scopes and flags: each one line with its own status.
  func testBadInputIsOneLineWithItsOwnStatus() throws {
    try attach()
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(3)
    settle()
    for (arguments, status) in [
      (["--pid", "2147483646"], Int32(3)), (["--port", "1", "--proto", "udp"], 19),
      (["--cgroup", "/sockaff-no-such-cgroup"], 20), (["--apply", "--undo"], 64), (["--undo", "--port", "80"], 64),
      (["--measure", "0"], 64),
    ] {
      let result = try Command.run([Command.sockaffPath, "advise", "--undo-file", undoFile] + arguments)
      XCTAssertEqual(result.status, status, "\(arguments): \(result.stderr)")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
      XCTAssertEqual(result.stdout, "", "\(arguments)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: undoFile))

    // The test's own connection, by port: found (traced) and, on loopback
    // (no device, no queues), nothing to change for it.
    let port = "\(pair.server.hello["port"] as! Int)"
    let scoped = try Command.run([Command.sockaffPath, "advise", "--port", port, "--json"])
    XCTAssertEqual(scoped.status, 0, scoped.stderr)
    let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(scoped.stdout.utf8)) as? [String: Any])
    XCTAssertGreaterThanOrEqual(object["sockets"] as? Int ?? 0, 2, "both ends of the test's connection")
    XCTAssertEqual((object["changes"] as? [Any])?.count, 0, "loopback has no queue to change: \(scoped.stdout)")
  }
}
