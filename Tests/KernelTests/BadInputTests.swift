import Foundation
import Glibc
import XCTest

/// Bad input across the CLI, as a table: every case gives one line on
/// stderr that says what is wrong, its own exit status, and nothing on
/// stdout. Statuses are the documented ones (docs/USAGE.md, "Errors and exit statuses").
final class BadInputTests: KernelTestCase {
  struct Case {
    let name: String
    let arguments: [String]
    let status: Int32
    /// Each must appear in the line.
    let mentioning: [String]
    /// Runs the command in a private mount namespace after unmounting this
    /// mount point (bpffs or cgroup2 "absent"), the host's mounts untouched.
    var unmounting: String? = nil
  }

  func testEveryBadInputGetsOneLineAndItsOwnStatus() throws {
    try attach()
    let holder = try Peer(["hold"])
    let pid = "\(holder.pid)"
    let reaped = try Command.run(["sh", "-c", "echo $$"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let zombie = "\(holder.hello["zombie_pid"] as! Int)"
    func fd(_ key: String) -> String { "\(holder.fd(key))" }
    let kernelThread = try kernelThreadPID()
    let cgroup2 = try KernelListing.cgroupRoot()

    let cases: [Case] = [
      Case(
        name: "negative pid", arguments: ["query", "--pid", "-5", "--fd", "0"], status: 64,
        mentioning: ["--pid takes a process id", "not -5"]),
      Case(
        name: "pid 0", arguments: ["query", "--pid", "0", "--fd", "0"], status: 64,
        mentioning: ["--pid takes a process id", "not 0"]),
      Case(
        name: "huge pid", arguments: ["query", "--pid", "99999999999", "--fd", "0"], status: 64,
        mentioning: ["99999999999"]),
      Case(
        name: "non-numeric pid", arguments: ["query", "--pid", "nginx", "--fd", "0"], status: 64,
        mentioning: ["nginx"]),
      Case(
        name: "negative fd", arguments: ["query", "--pid", pid, "--fd", "-3"], status: 64,
        mentioning: ["--fd takes a file descriptor", "not -3"]),
      Case(
        name: "huge fd", arguments: ["query", "--pid", pid, "--fd", "4294967296"], status: 64,
        mentioning: ["4294967296"]),
      Case(name: "non-numeric fd", arguments: ["query", "--pid", pid, "--fd", "x"], status: 64, mentioning: ["'x'"]),
      Case(
        name: "fd not open", arguments: ["query", "--pid", pid, "--fd", "999"], status: 4,
        mentioning: ["fd 999", "Bad file descriptor"]),
      Case(
        name: "regular file", arguments: ["query", "--pid", pid, "--fd", fd("file_fd")], status: 5,
        mentioning: ["non-socket", "/etc/"]),
      Case(
        name: "pipe", arguments: ["query", "--pid", pid, "--fd", fd("pipe_fd")], status: 5,
        mentioning: ["non-socket", "pipe:"]),
      Case(
        name: "eventfd", arguments: ["query", "--pid", pid, "--fd", fd("eventfd_fd")], status: 5,
        mentioning: ["non-socket", "eventfd"]),
      Case(
        name: "epoll", arguments: ["query", "--pid", pid, "--fd", fd("epoll_fd")], status: 5,
        mentioning: ["non-socket", "eventpoll"]),
      Case(
        name: "unix socket", arguments: ["query", "--pid", pid, "--fd", fd("unix_fd")], status: 6,
        mentioning: ["not supported", "unix stream socket"]),
      Case(
        name: "netlink socket", arguments: ["query", "--pid", pid, "--fd", fd("netlink_fd")], status: 6,
        mentioning: ["not supported", "netlink"]),
      Case(
        name: "packet socket", arguments: ["query", "--pid", pid, "--fd", fd("packet_fd")], status: 6,
        mentioning: ["not supported", "packet"]),
      Case(
        name: "UDP socket that received nothing", arguments: ["query", "--pid", pid, "--fd", fd("quiet_udp_fd")],
        status: 9, mentioning: ["no packets received yet"]),
      Case(
        name: "process gone", arguments: ["query", "--pid", reaped, "--fd", "0"], status: 3,
        mentioning: ["pid \(reaped)", "No such process"]),
      Case(
        name: "zombie", arguments: ["query", "--pid", zombie, "--fd", "0"], status: 3,
        mentioning: ["pid \(zombie)", "exited"]),
      Case(
        name: "kernel thread", arguments: ["query", "--pid", kernelThread, "--fd", "0"], status: 4,
        mentioning: ["kernel thread"]),
      Case(name: "unknown flag", arguments: ["list", "--everything"], status: 64, mentioning: ["--everything"]),
      Case(name: "unknown command", arguments: ["frobnicate"], status: 64, mentioning: ["frobnicate"]),
      Case(
        name: "--listen with a name, not an address", arguments: ["serve", "--listen", "abc:80"], status: 64,
        mentioning: ["abc:80"]),
      Case(name: "--top out of range", arguments: ["export", "--top", "100001"], status: 64, mentioning: ["--top"]),
      Case(
        name: "--pool-slots 0", arguments: ["trace", "--pool-slots", "0"], status: 64, mentioning: ["--pool-slots"]),
      Case(
        name: "negative --wait", arguments: ["query", "--pid", pid, "--fd", "0", "--wait", "-1"], status: 64,
        mentioning: ["--wait takes 0 to 86400"]),
      Case(name: "negative --top", arguments: ["export", "--top", "-1"], status: 64, mentioning: ["--top takes 0"]),
      Case(
        name: "huge --wait", arguments: ["query", "--pid", pid, "--fd", "0", "--wait", "1e9"], status: 64,
        mentioning: ["--wait"]),
      Case(name: "list --pid 0", arguments: ["list", "--pid", "0"], status: 64, mentioning: ["--pid"]),
      Case(
        name: "list --pid -1", arguments: ["list", "--pid", "-1"], status: 64,
        mentioning: ["--pid takes a process id", "not -1"]),
      Case(
        name: "list of a process gone", arguments: ["list", "--pid", reaped], status: 3, mentioning: ["pid \(reaped)"]
      ),
      Case(name: "watch interval 0", arguments: ["watch", "--interval", "0"], status: 64, mentioning: ["--interval"]),
      Case(name: "watch --json without --once", arguments: ["watch", "--json"], status: 64, mentioning: ["--once"]),
      Case(
        name: "bpffs absent", arguments: ["query", "--pid", pid, "--fd", fd("quiet_udp_fd")], status: 8,
        mentioning: ["bpffs is not mounted"], unmounting: "/sys/fs/bpf"),
      Case(
        name: "cgroup2 absent", arguments: ["trace"], status: 11, mentioning: ["no cgroup2"], unmounting: cgroup2),
    ]
    XCTAssertGreaterThanOrEqual(cases.count, 25)
    for item in cases {
      var command = [Command.sockaffPath] + item.arguments
      if let mountPoint = item.unmounting {
        command =
          ["unshare", "--mount", "--propagation", "private", "sh", "-c", "umount \"$0\" && exec \"$@\"", mountPoint]
          + command
      }
      let result = try Command.run(command)
      XCTAssertEqual(result.status, item.status, "\(item.name): \(result.stderr)")
      XCTAssertEqual(result.stdout, "", "\(item.name): nothing on stdout")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(item.name): one line: \(result.stderr)")
      for word in item.mentioning {
        XCTAssertTrue(result.stderr.contains(word), "\(item.name): mentions \(word): \(result.stderr)")
      }
    }
    // Tried in a mount namespace of their own: the host's tracer is intact.
    XCTAssertEqual(try KernelListing.attachedSockaffPrograms(), 1)
  }

  /// Errors name the command that failed, and conflicts with another
  /// sockaff have a status of their own (18), in one line, with no Swift in it.
  func testErrorsNameTheirCommandAndConflictsHaveTheirStatus() throws {
    for command in [["list"], ["watch", "--once"]] {
      let result = try Command.run([Command.sockaffPath] + command)
      XCTAssertEqual(result.status, 8, "\(command): \(result.stderr)")
      XCTAssertTrue(
        result.stderr.hasPrefix("sockaff \(command[0]): tracer not attached"), "\(command): \(result.stderr)")
    }

    let first = try MetricsServer()
    defer { first.stop() }
    let address = first.url.replacingOccurrences(of: "http://", with: "").replacingOccurrences(of: "/metrics", with: "")
    let second = try Command.sockaff("serve", "--listen", address)
    XCTAssertEqual(second.status, 18, second.stderr)
    XCTAssertEqual(second.stderr.split(separator: "\n").count, 1, second.stderr)
    XCTAssertTrue(second.stderr.contains("sockaff serve: listen on \(address): Address already in use"), second.stderr)
    XCTAssertFalse(second.stderr.contains("IOError") || second.stderr.contains("descriptor:"), second.stderr)

    try attach()
    let foreground = try Command.sockaff("trace", "--foreground")
    XCTAssertEqual(foreground.status, 18, foreground.stderr)
    XCTAssertTrue(foreground.stderr.contains("already attached in pinned mode"), foreground.stderr)
  }

  /// `export --textfile DIR` writes only into a directory no one else can
  /// plant files in, never into or through anything planted there, and
  /// names the directory when it cannot.
  func testExportTextfileRefusesUnsafeDirectoriesAndPlantedFiles() throws {
    let scratch = try Command.must(["mktemp", "-d"]).trimmingCharacters(in: .whitespacesAndNewlines)
    defer { _ = try? Command.run(["rm", "-rf", scratch]) }
    func export(_ directory: String) throws -> CommandResult {
      try Command.sockaff("export", "--textfile", directory)
    }
    func entries(_ directory: String) -> [String] {
      ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    let missing = try export(scratch + "/absent")
    XCTAssertEqual(missing.status, 1, missing.stderr)
    XCTAssertTrue(
      missing.stderr.contains("open textfile directory \(scratch)/absent: No such file or directory"), missing.stderr)

    // Writable by others (a /tmp-like directory), or owned by another user.
    let shared = scratch + "/shared"
    try Command.must(["mkdir", "-m", "1777", shared])
    let owned = scratch + "/owned"
    try Command.must(["mkdir", "-m", "0755", owned])
    try Command.must(["chown", "nobody", owned])
    for (directory, reason) in [(shared, "writable by its group or others"), (owned, "neither root nor this user")] {
      let result = try export(directory)
      XCTAssertEqual(result.status, 17, "\(directory): \(result.stderr)")
      XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
      XCTAssertTrue(result.stderr.contains(reason), result.stderr)
      XCTAssertEqual(entries(directory), [], "nothing written into \(directory)")
    }

    // A safe directory with a link planted at the target and FIFOs at the
    // names the old writer used: the link is replaced, not followed, and
    // nothing planted is opened (a FIFO would hang the export).
    let safe = scratch + "/safe"
    try Command.must(["mkdir", "-m", "0755", safe])
    let victim = scratch + "/victim"
    try "untouched\n".write(toFile: victim, atomically: true, encoding: .utf8)
    try Command.must(["ln", "-s", victim, safe + "/sockaff.prom"])
    for pid in 1...5 { try Command.must(["mkfifo", "\(safe)/sockaff.prom.tmp.\(pid)"]) }
    let written = try export(safe)
    XCTAssertEqual(written.status, 0, written.stderr)
    XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "untouched\n", "the link was not followed")
    let attributes = try FileManager.default.attributesOfItem(atPath: safe + "/sockaff.prom")
    XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeRegular)
    XCTAssertEqual((attributes[.ownerAccountID] as? NSNumber)?.intValue, 0)
    XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o644)
    XCTAssertTrue(
      try String(contentsOfFile: safe + "/sockaff.prom", encoding: .utf8).contains("sockaff_tracer_attached"))
    XCTAssertEqual(
      entries(safe), ["sockaff.prom"] + (1...5).map { "sockaff.prom.tmp.\($0)" }.sorted(), "no temporary left")
  }

  /// kthreadd (pid 2) where the kernel has it; else any kernel thread.
  func kernelThreadPID() throws -> String {
    let listing = try Command.must(["ps", "-eo", "pid=,ppid="])
    for line in listing.split(separator: "\n") {
      let fields = line.split(separator: " ")
      if fields.count == 2, fields[1] == "2" || fields[0] == "2" { return String(fields[0]) }
    }
    throw HarnessError("no kernel thread found in ps")
  }
}
