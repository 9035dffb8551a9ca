import CSockaffABI
import Foundation
import Glibc
import XCTest

/// Attach, detach and foreground mode, checked against the kernel's own
/// listing (bpftool), not sockaff's.
final class LifecycleTests: KernelTestCase {
  func testTraceTwiceAttachesOnce() throws {
    try attach()
    let second = try Command.sockaff("trace")
    XCTAssertEqual(second.status, 0, second.stderr)
    XCTAssertTrue(second.stdout.contains("already attached"), second.stdout)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    XCTAssertEqual(try KernelListing.sockaffLinks(), try expectedLinks(), "ingress, release, consumer, closed")
  }

  func testDetachLeavesNoPinAndNoProgram() throws {
    try attach()
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    XCTAssertFalse(KernelListing.pinsLeft().isEmpty)
    let detach = try Command.sockaff("detach")
    XCTAssertEqual(detach.status, 0, detach.stderr)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
    XCTAssertEqual(try KernelListing.sockaffLinks(), 0)
    XCTAssertEqual(KernelListing.pinsLeft(), [])
    XCTAssertFalse(FileManager.default.fileExists(atPath: "/sys/fs/bpf/sockaff"))
    let again = try Command.sockaff("detach")
    XCTAssertEqual(again.status, 0)
    XCTAssertTrue(again.stdout.contains("was not attached"), again.stdout)
  }

  /// `trace` keeps the NICs' steering as it found them, beside the pins,
  /// for `status` to compare with (nothing changed here in between); the
  /// one teardown removes it with the pins.
  func testTheSteeringSnapshotLivesAsLongAsTheAttachment() throws {
    let snapshot = "/run/sockaff/sys_fs_bpf_sockaff.steering.json"
    try attach()
    XCTAssertTrue(FileManager.default.fileExists(atPath: snapshot))
    let status = try Command.sockaff("status", "--json")
    let object = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], status.stdout)
    let changes = try XCTUnwrap(object["steering_changes"] as? [Any], "attached with a snapshot: the changes since")
    let interfaces = (object["interfaces"] as? [[String: Any]] ?? []).compactMap { $0["interface"] as? String }
    XCTAssertTrue(changes.isEmpty, "nothing of \(interfaces) changed since the attach a moment ago: \(changes)")
    XCTAssertNotNil(object["steering_since"] as? Double)
    XCTAssertEqual(try Command.sockaff("detach").status, 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: snapshot), "removed with the pins")
    let detached = try Command.sockaff("status", "--json")
    XCTAssertFalse(detached.stdout.contains("steering_changes"), "not attached: nothing to compare")
  }

  /// Builds before ABI 5 pinned the read counters as a map of their own,
  /// "reads": detach after an upgrade removes it with the rest.
  func testDetachRemovesThePinOfOlderBuildsReadCounters() throws {
    try attach()
    try Command.must([
      "bpftool", "map", "create", "/sys/fs/bpf/sockaff/reads", "type", "array", "key", "4", "value", "4", "entries",
      "1", "name", "sockaff_reads",
    ])
    XCTAssertTrue(KernelListing.pinsLeft().contains("reads"))
    let detach = try Command.sockaff("detach")
    XCTAssertEqual(detach.status, 0, detach.stderr)
    XCTAssertEqual(KernelListing.pinsLeft(), [])
    XCTAssertFalse(FileManager.default.fileExists(atPath: "/sys/fs/bpf/sockaff"))
  }

  /// Attach and detach are serialized (a lock file): racing trace, trace,
  /// detach and query processes give only their expected answers, and the
  /// kernel never holds two attachments.
  func testConcurrentTraceDetachAndQueryNeverDoubleAttach() throws {
    let expected = [
      "attached to", "already attached", "detached", "was not attached", "non-socket", "not attached; run",
    ]
    // A descriptor of our own that is surely not a socket (fd 0 may be
    // anything, or closed, under CI).
    let notASocket = open("/dev/null", O_RDONLY)
    defer { close(notASocket) }
    for round in 0..<20 {
      let commands = [["trace"], ["trace"], ["detach"], ["query", "--pid", "\(getpid())", "--fd", "\(notASocket)"]]
      let processes = try commands.map { try Child([Command.sockaffPath] + $0, stderrToStdout: true) }
      for process in processes {
        let text = String(decoding: process.output.readDataToEndOfFile(), as: UTF8.self)
        try process.wait()
        XCTAssertTrue(expected.contains { text.contains($0) }, "round \(round) \(process.arguments): \(text)")
      }
      let attached = try KernelListing.attachedSockaffPrograms()
      XCTAssertLessThanOrEqual(attached, 1, "round \(round)")
      XCTAssertEqual(attached == 1, KernelListing.pinsLeft().contains("ingress_link"), "round \(round)")
    }
  }

  func testPinsAreOwnerOnly() throws {
    try attach()
    let directory = try FileManager.default.attributesOfItem(atPath: "/sys/fs/bpf/sockaff")
    XCTAssertEqual((directory[.posixPermissions] as? Int).map { $0 & 0o777 }, 0o700)
    for pin in KernelListing.pinsLeft() {
      let attributes = try FileManager.default.attributesOfItem(atPath: "/sys/fs/bpf/sockaff/\(pin)")
      XCTAssertEqual((attributes[.posixPermissions] as? Int).map { $0 & 0o777 }, 0o600, pin)
    }
  }

  func testForegroundSIGTERMLeavesNothing() throws {
    try assertForegroundStopLeavesNothing(signal: SIGTERM)
  }

  func testForegroundSIGINTLeavesNothing() throws {
    try assertForegroundStopLeavesNothing(signal: SIGINT)
  }

  func assertForegroundStopLeavesNothing(signal: Int32) throws {
    let foreground = try ForegroundTracer()
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    let status = try Command.sockaff("status", "--json")
    let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["mode"] as? String, "foreground")
    XCTAssertEqual(try foreground.stop(signal: signal), 0)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
    XCTAssertEqual(try KernelListing.sockaffLinks(), 0)
    XCTAssertEqual(KernelListing.pinsLeft(), [])
  }

  /// SIGKILL gives no chance to clean up: the kernel detaches the unpinned
  /// link itself; the map pins left behind, which still hold this socket's
  /// record, are not answered from as if live; the next `trace` clears them.
  func testForegroundSIGKILLLeavesNoAttachmentAndTraceRecovers() throws {
    let foreground = try ForegroundTracer()
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(10)
    let before = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(before["source"] as? String, "bpf")
    let packetsBefore = before["packets"] as? Int ?? 0
    XCTAssertGreaterThanOrEqual(packetsBefore, 10)
    _ = try foreground.stop(signal: SIGKILL)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
    XCTAssertEqual(try KernelListing.sockaffLinks(), 0)
    // Stale pins are not a live tracer: the answer is the kernel's, not the
    // frozen record's, and says so.
    let stale = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(stale["source"] as? String, "kernel", "\(stale)")
    XCTAssertTrue(stale["packets"] is NSNull, "\(stale)")
    XCTAssertTrue((stale["limits"] as? String ?? "").contains("sockaff trace"), "\(stale)")
    try attach()
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
    try pair.exchange(5)
    let fresh = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(fresh["source"] as? String, "bpf")
    let packetsAfter = fresh["packets"] as? Int ?? 0
    XCTAssertGreaterThanOrEqual(packetsAfter, 5)
    XCTAssertLessThan(packetsAfter, packetsBefore, "a fresh record, not the one left in the stale pins")
  }

  /// A `detach` killed at any step of its teardown (SIGKILL before each
  /// link detach and each unlink, through SOCKAFF_TEST_KILL_DETACH_AT)
  /// leaves a state that the next `trace` attaches from, with a working
  /// tracer, and that the next `detach` cleans up entirely: checked against
  /// bpftool and against UDP datagrams the tracer must count.
  func testDetachKilledAtEachStepLeavesARecoverableHost() throws {
    var killedAt: [Int] = []
    var steps = 0
    for step in 1...20 {
      try attach()
      // A detach's steps: one per link pin (its detach) and one per pin (its unlink).
      if step == 1 { steps = KernelListing.pinsLeft().reduce(0) { $0 + ($1.hasSuffix("_link") ? 2 : 1) } }
      let killed = try Command.run(
        ["/usr/bin/env", "SOCKAFF_TEST_KILL_DETACH_AT=\(step)", Command.sockaffPath, "detach"])
      if killed.status == 0 { break }  // past the last step: a whole detach
      XCTAssertEqual(killed.status, SIGKILL, "step \(step): \(killed.stderr)")
      killedAt.append(step)
      let attachedPrograms = try KernelListing.attachedSockaffPrograms()
      let status = try Command.sockaff("status", "--json")
      let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
      XCTAssertEqual(object?["attached"] as? Bool, attachedPrograms == 1, "step \(step): status agrees with bpftool")

      let trace = try Command.sockaff("trace")
      XCTAssertEqual(trace.status, 0, "step \(step): \(trace.stderr)")
      XCTAssertTrue(
        trace.stdout.contains(attachedPrograms == 1 ? "already attached" : "attached to"),
        "step \(step), \(attachedPrograms) attached: \(trace.stdout)")
      XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1, "step \(step)")
      XCTAssertEqual(try KernelListing.sockaffLinks(), try expectedLinks(), "step \(step): every link")
      let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
      try pair.exchange(7)
      XCTAssertEqual(try queryJSON(pid: pair.server.pid, fd: pair.serverFD)["packets"] as? Int, 7, "step \(step)")

      let detach = try Command.sockaff("detach")
      XCTAssertEqual(detach.status, 0, "step \(step): \(detach.stderr)")
      XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0, "step \(step)")
      XCTAssertEqual(try KernelListing.sockaffLinks(), 0, "step \(step)")
      XCTAssertEqual(KernelListing.pinsLeft(), [], "step \(step)")
    }
    // Here four link detaches and eight unlinks: each was a kill point.
    XCTAssertGreaterThanOrEqual(steps, 7)
    XCTAssertEqual(killedAt, Array(1...steps), "detach was killed before each of its steps")
  }

  /// In a mount namespace without bpffs the pins cannot be seen: status
  /// says attached (the kernel knows) but does not guess the mode.
  func testStatusWithoutBPFFSDoesNotGuessTheMode() throws {
    try attach()
    let result = try Command.run([
      "unshare", "--mount", "--propagation", "private", "sh", "-c", "umount /sys/fs/bpf && exec \"$0\" status --json",
      Command.sockaffPath,
    ])
    XCTAssertEqual(result.status, 0, result.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["attached"] as? Bool, true)
    XCTAssertEqual(object?["mode"] as? String, "unknown")
    XCTAssertEqual(object?["bpffs_mounted"] as? Bool, false)
  }

  func testStatusReportsPinnedAttachment() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    let status = try Command.sockaff("status", "--json")
    XCTAssertEqual(status.status, 0, status.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
    XCTAssertEqual(object?["attached"] as? Bool, true)
    XCTAssertEqual(object?["mode"] as? String, "pinned")
    XCTAssertGreaterThanOrEqual(object?["records_created"] as? Int ?? 0, 2)
    XCTAssertEqual(object?["record_value_size"] as? Int, MemoryLayout<sockaff_record>.size)
    let iterator = try feature("iter/bpf_sk_storage_map")
    if iterator.state == "yes" {
      // The pair's two sockets are open and have records (the map's fill).
      XCTAssertGreaterThanOrEqual(object?["live_records"] as? Int ?? 0, 2)
      XCTAssertNil(object?["live_records_error"] as? String)
    } else {
      // Degraded: no count, and the reason, naming the refused iterator.
      XCTAssertNil(object?["live_records"] as? Int, "no count without the socket-storage iterator")
      let error = object?["live_records_error"] as? String ?? ""
      XCTAssertTrue(error.contains("iter/bpf_sk_storage_map"), error)
      XCTAssertTrue(
        error.contains(iterator.state == "refused" ? "refused" : "the kernel"), "\(iterator.state): \(error)")
      XCTAssertFalse(error.contains("CAP_"), "root is not told to get a capability: \(error)")
    }
    XCTAssertTrue([100, 250, 300, 1000].contains(object?["kernel_hz"] as? Int ?? 0))
  }

  /// Traffic before `trace`, none after: the kernel's SO_INCOMING_CPU answers.
  func testSocketWithNothingTracedFallsBackToKernel() throws {
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(10)
    settle()
    try attach()
    let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
    XCTAssertEqual(answer["source"] as? String, "kernel")
    XCTAssertEqual(answer["cpu"] as? Int, Int(try kernelIncomingCPU(pid: pair.server.pid, fd: pair.serverFD)))
    XCTAssertTrue(answer["packets"] is NSNull)
  }

  /// A socket the kernel has no CPU for (a fresh unconnected UDP socket).
  func testNoPacketsYetIsItsOwnError() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    let result = try Command.sockaff("query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)")
    XCTAssertEqual(result.status, 9, result.stderr)
    XCTAssertTrue(result.stderr.contains("no packets received yet"), result.stderr)
  }
}

/// `sockaff trace --foreground`, running until stopped.
final class ForegroundTracer {
  let process: Child

  init(_ arguments: [String] = []) throws {
    process = try Child([Command.sockaffPath, "trace", "--foreground"] + arguments)
    // Wait for the line that says it is tracing.
    var poller = pollfd(fd: process.output.fileDescriptor, events: Int16(POLLIN), revents: 0)
    guard poll(&poller, 1, 20_000) == 1 else { throw HarnessError("trace --foreground printed nothing") }
    let line = String(decoding: process.output.availableData, as: UTF8.self)
    guard line.contains("tracing") else { throw HarnessError("trace --foreground said: \(line)") }
  }

  func stop(signal: Int32) throws -> Int32 {
    process.signal(signal)
    return try process.wait()
  }

  deinit {
    // A gentle stop first, so that the tracer detaches (deinit of Child kills).
    process.signal(SIGTERM)
    _ = try? process.wait()
  }
}
