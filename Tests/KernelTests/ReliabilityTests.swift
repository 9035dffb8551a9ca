import Foundation
import Glibc
import SocketAffinity
import XCTest

/// Faults and lifecycle on a production host: killed tracers, upgrades over
/// old pins, and other programs on the same hook. Every check of what is
/// attached uses the kernel's own listing (bpftool), not sockaff's.
final class ReliabilityTests: KernelTestCase {
  /// SIGKILL at random moments of `trace --foreground` (loading, calibrating,
  /// attaching, steady state) and of pinned `trace`: afterwards nothing is
  /// half attached, and the next `trace` and `detach` work.
  func testTraceKilledAtRandomMomentsLeavesNothingHalfAttached() throws {
    var generator = SystemRandomNumberGenerator()
    var killedBeforeAttaching = 0
    var killedWhileAttached = 0
    // How long an undisturbed `trace` takes here (most of it calibrating the
    // clock, ~80 ms): the kills are spread over it and a little past it.
    let start = SystemClock.nanoseconds(CLOCK_MONOTONIC)
    try attach()
    let traceMicroseconds = UInt32((SystemClock.nanoseconds(CLOCK_MONOTONIC) - start) / 1_000)
    XCTAssertEqual(try Command.sockaff("detach").status, 0)
    for attempt in 0..<50 {
      let foreground = attempt % 5 != 4
      let arguments = foreground ? ["trace", "--foreground"] : ["trace"]
      let tracer = try Child([Command.sockaffPath] + arguments)
      usleep(UInt32.random(in: 0...(traceMicroseconds * 3 / 2), using: &generator))
      let attachedAtKill = try KernelListing.attachedSockaffPrograms() == 1
      tracer.signal(SIGKILL)
      try tracer.wait()
      if attachedAtKill { killedWhileAttached += 1 } else { killedBeforeAttaching += 1 }

      let programs = try KernelListing.attachedSockaffPrograms()
      let pinned = KernelListing.pinsLeft().contains("ingress_link")
      if foreground {
        XCTAssertEqual(programs, 0, "attempt \(attempt): a killed foreground tracer leaves no program attached")
        XCTAssertEqual(try eventually { try KernelListing.sockaffLinks() == 0 }, true, "attempt \(attempt): no link")
      } else {
        // Pinned mode pins the ingress link last: either all of it or none.
        XCTAssertEqual(programs, pinned ? 1 : 0, "attempt \(attempt): pinned \(pinned), programs \(programs)")
      }
      if attempt % 10 == 9 || !foreground {
        try attach()
        XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1, "attempt \(attempt): trace after the kill")
        let detach = try Command.sockaff("detach")
        XCTAssertEqual(detach.status, 0, "attempt \(attempt): \(detach.stderr)")
        XCTAssertEqual(KernelListing.pinsLeft(), [], "attempt \(attempt)")
      }
    }
    print("killed before attaching: \(killedBeforeAttaching), while attached: \(killedWhileAttached)")
    // Both kinds of moment were hit, or the test proved less than it says.
    XCTAssertGreaterThan(killedBeforeAttaching, 0)
    XCTAssertGreaterThan(killedWhileAttached, 0)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
  }

  /// A `trace` killed while it removed a dead session's pins (in `detach`'s
  /// order, records before counts) leaves some map pins without the records
  /// pin; the next `trace` must clear them, not fail on "File exists" (a CI
  /// run hit this through the random kills above).
  func testTraceClearsAnySubsetOfStalePins() throws {
    for removed in [["records"], ["records", "counts"], ["records", "counts", "clock"]] {
      // A dead foreground session's map pins, less the first ones `detach`
      // would have removed before the kill.
      let tracer = try Child([Command.sockaffPath, "trace", "--foreground"])
      XCTAssertEqual(try eventually { try KernelListing.attachedSockaffPrograms() == 1 }, true)
      tracer.signal(SIGKILL)
      try tracer.wait()
      XCTAssertEqual(try eventually { try KernelListing.attachedSockaffPrograms() == 0 }, true)
      for pin in removed { XCTAssertEqual(unlink("/sys/fs/bpf/sockaff/\(pin)"), 0, pin) }
      let left = KernelListing.pinsLeft()
      XCTAssertFalse(left.isEmpty, "\(removed): some pins are left to clear")

      let trace = try Command.sockaff("trace")
      XCTAssertEqual(trace.status, 0, "with \(left) left: \(trace.stderr)")
      XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1, "\(removed)")
      XCTAssertTrue(Set(removed).isSubset(of: KernelListing.pinsLeft()), "\(removed) pinned anew")
      XCTAssertEqual(try Command.sockaff("detach").status, 0)
      XCTAssertEqual(KernelListing.pinsLeft(), [], "\(removed)")
    }
  }

  /// A sockaff of another record layout left attached across an upgrade:
  /// `trace` and `query` refuse with their own status instead of reading
  /// garbage, and `detach` clears it.
  func testPinsOfAnotherRecordLayoutAreRefusedNotRead() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(3)
    // Stand-in for an older build's map: same pin, other value size.
    try replacePin("records", type: "hash", valueSize: 96, entries: 16, name: "old_records")
    let trace = try Command.sockaff("trace")
    XCTAssertEqual(trace.status, 14, trace.stderr)
    XCTAssertTrue(trace.stderr.contains("another record layout"), trace.stderr)
    XCTAssertTrue(trace.stderr.contains("96-byte"), trace.stderr)
    XCTAssertEqual(trace.stdout, "")
    let query = try Command.sockaff("query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)")
    XCTAssertEqual(query.status, 14, query.stderr)
    XCTAssertEqual(query.stdout, "")
    let detach = try Command.sockaff("detach")
    XCTAssertEqual(detach.status, 0, detach.stderr)
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 0)
    XCTAssertEqual(KernelListing.pinsLeft(), [])
    try attach()
    try pair.exchange(3)
    XCTAssertEqual(try queryJSON(pid: pair.server.pid, fd: pair.serverFD)["source"] as? String, "bpf")
  }

  /// ABI 5 had records of the same sizes as ABI 6 but another layout, and
  /// a 24-byte clock without a version: its pins are refused by version,
  /// not read because the record size happens to match.
  func testPinsOfAnOlderABIWithTheSameRecordSizeAreRefused() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(3)
    try replacePin("clock", type: "array", valueSize: 24, entries: 1, name: "sockaff_clock")
    for command in [["trace"], ["query", "--pid", "\(pair.server.pid)", "--fd", "\(pair.serverFD)"]] {
      let result = try Command.run([Command.sockaffPath] + command)
      XCTAssertEqual(result.status, 14, "\(command): \(result.stderr)")
      XCTAssertTrue(result.stderr.contains("version 5 or older"), result.stderr)
      XCTAssertEqual(result.stdout, "")
    }
    XCTAssertEqual(try Command.sockaff("detach").status, 0)
    XCTAssertEqual(KernelListing.pinsLeft(), [])
  }

  /// Replaces one of sockaff's map pins with a new map of another shape.
  func replacePin(_ pin: String, type: String, valueSize: Int, entries: Int, name: String) throws {
    let path = "/sys/fs/bpf/sockaff/\(pin)"
    XCTAssertEqual(unlink(path), 0)
    try Command.must([
      "bpftool", "map", "create", path, "type", type, "key", "4", "value", "\(valueSize)", "entries", "\(entries)",
      "name", name,
    ])
  }

  /// Another cgroup_skb ingress program attached before sockaff and one
  /// after: all three run, and detaching sockaff leaves the other two.
  func testCoexistsWithOtherIngressPrograms() throws {
    let cgroup = try KernelListing.cgroupRoot()
    let others = try OtherIngressPrograms(count: 2)
    defer { others.remove(cgroup: cgroup) }
    let statsWere = try String(contentsOfFile: "/proc/sys/kernel/bpf_stats_enabled", encoding: .utf8)
    try "1".write(toFile: "/proc/sys/kernel/bpf_stats_enabled", atomically: false, encoding: .utf8)
    defer { try? statsWere.write(toFile: "/proc/sys/kernel/bpf_stats_enabled", atomically: false, encoding: .utf8) }

    try others.attach(0, cgroup: cgroup)
    try attach()
    try others.attach(1, cgroup: cgroup)
    let ids = try attachedIngressPrograms(cgroup: cgroup)
    XCTAssertEqual(ids.count, 3, "before, sockaff and after: \(ids)")
    let before = try runCounts(ids.map(\.id))
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(20)
    let after = try runCounts(ids.map(\.id))
    for program in ids {
      XCTAssertGreaterThanOrEqual(
        (after[program.id] ?? 0) - (before[program.id] ?? 0), 20, "\(program.name) (id \(program.id)) ran")
    }
    XCTAssertGreaterThanOrEqual(try queryJSON(pid: pair.server.pid, fd: pair.serverFD)["packets"] as? Int ?? 0, 20)

    let detach = try Command.sockaff("detach")
    XCTAssertEqual(detach.status, 0, detach.stderr)
    let left = try attachedIngressPrograms(cgroup: cgroup)
    XCTAssertEqual(Set(left.map(\.id)), Set(others.ids), "the other two stay attached")
  }

  /// Programs attached to the cgroup's ingress hook, per bpftool.
  func attachedIngressPrograms(cgroup: String) throws -> [(id: Int, name: String)] {
    try KernelListing.jsonList(["bpftool", "-j", "cgroup", "show", cgroup])
      .filter { ($0["attach_type"] as? String) == "cgroup_inet_ingress" }
      .compactMap { entry in (entry["id"] as? Int).map { ($0, entry["name"] as? String ?? "") } }
  }

  /// run_cnt of each program, from the kernel's bpf_stats.
  func runCounts(_ ids: [Int]) throws -> [Int: Int] {
    var counts: [Int: Int] = [:]
    for id in ids {
      let output = try Command.must(["bpftool", "-j", "prog", "show", "id", "\(id)"])
      let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
      counts[id] = object?["run_cnt"] as? Int ?? 0
    }
    return counts
  }

  /// Polls `condition` for up to a second: the kernel frees a link's
  /// listing entry shortly after its last reference goes.
  func eventually(_ condition: () throws -> Bool) throws -> Bool {
    for _ in 0..<20 {
      if try condition() { return true }
      usleep(50_000)
    }
    return try condition()
  }
}

/// Copies of bench/bpf/empty.bpf.c (`return 1`), loaded and pinned with bpftool
/// as another tool would, to share the root cgroup's ingress hook.
final class OtherIngressPrograms {
  let directory = "/sys/fs/bpf/sockaff-test-others-\(getpid())"
  private(set) var ids: [Int] = []

  init(count: Int) throws {
    let object = FileManager.default.temporaryDirectory.appending(path: "sockaff-test-empty-\(getpid()).bpf.o")
      .path(percentEncoded: false)
    defer { unlink(object) }
    let source = Command.packageRoot.appending(path: "bench/bpf/empty.bpf.c").path(percentEncoded: false)
    try Command.must([
      "clang", "-target", "bpf", "-O2", "-Wall", "-idirafter", "/usr/include/\(Self.machine)-linux-gnu", "-c", source,
      "-o", object,
    ])
    try Command.must(["mkdir", "-p", directory])
    for index in 0..<count {
      try Command.must(["bpftool", "prog", "load", object, "\(directory)/\(index)", "type", "cgroup/skb"])
      let output = try Command.must(["bpftool", "-j", "prog", "show", "pinned", "\(directory)/\(index)"])
      let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
      ids.append(object?["id"] as? Int ?? -1)
    }
  }

  func attach(_ index: Int, cgroup: String) throws {
    try Command.must(["bpftool", "cgroup", "attach", cgroup, "ingress", "pinned", "\(directory)/\(index)", "multi"])
  }

  func remove(cgroup: String) {
    for index in ids.indices {
      _ = try? Command.run(["bpftool", "cgroup", "detach", cgroup, "ingress", "pinned", "\(directory)/\(index)"])
    }
    _ = try? Command.run(["rm", "-rf", directory])
  }

  static var machine: String {
    var name = utsname()
    uname(&name)
    return withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }
}
