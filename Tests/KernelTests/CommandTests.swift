import Foundation
import Glibc
import XCTest

/// The harness itself: `Command.run` (swift-subprocess) returns when the
/// program exits, also when a daemon it started keeps its stdout and stderr
/// open. Foundation's `Process` did not (`tmux new-session -d` hung CI for
/// 90 minutes, see Support/Spawn.swift), and a harness that read stdout to
/// its end would not either. Not a kernel test: no root, nothing attached.
final class CommandTests: XCTestCase {
  func testReturnsWhenADaemonKeepsItsOutputOpen() throws {
    let start = Date()
    // The background sleep inherits stdout and stderr and outlives the shell.
    let result = try Command.run(["sh", "-c", "sleep 30 & echo $!; echo done >&2"])
    let seconds = Date().timeIntervalSince(start)
    let daemon = try XCTUnwrap(Int32(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), result.stdout)
    defer { kill(daemon, SIGKILL) }
    XCTAssertEqual(result.status, 0)
    XCTAssertEqual(result.stderr, "done\n")
    XCTAssertLessThan(seconds, 10, "waited for the daemon (30 s) instead of the program")
    XCTAssertEqual(kill(daemon, 0), 0, "the daemon was still running when the call returned")
  }

  func testTmuxServerDoesNotHoldTheCall() throws {
    guard (try? Command.run(["which", "tmux"]).status) == 0 else { throw HarnessError("this test needs tmux") }
    let session = "sockaff-command-\(getpid())"
    defer { _ = try? Command.run(["tmux", "kill-session", "-t", session]) }
    // As the hang happened: the tmux server started with the harness's own stdio.
    let result = try Command.run(["tmux", "new-session", "-d", "-s", session, "sleep 30"])
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertEqual(try Command.run(["tmux", "has-session", "-t", session]).status, 0)
  }

  func testLargeOutputIsComplete() throws {
    let result = try Command.run(["head", "-c", "20000000", "/dev/zero"])
    XCTAssertEqual(result.stdout.utf8.count, 20_000_000)
  }

  func testExitStatusAndSignal() throws {
    XCTAssertEqual(try Command.run(["sh", "-c", "exit 7"]).status, 7)
    XCTAssertEqual(try Command.run(["sh", "-c", "kill -TERM $$"]).status, SIGTERM)
  }
}
