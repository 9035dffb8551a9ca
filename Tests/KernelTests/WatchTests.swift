import Foundation
import Glibc
import XCTest

/// `sockaff watch` in a real terminal (tmux): the table appears and updates,
/// q and Ctrl-C quit, and the terminal is restored (canonical mode, echo).
final class WatchTests: KernelTestCase {
  var session = ""

  override func setUpWithError() throws {
    try super.setUpWithError()
    guard (try? Command.run(["which", "tmux"]).status) == 0 else { throw HarnessError("watch tests need tmux") }
    session = "sockaff-watch-\(getpid())"
    // The tmux server keeps the stdio it was started with: give it /dev/null,
    // not our pipe, or reading the pipe to its end never finishes.
    try Command.must([
      "sh", "-c",
      "tmux new-session -d -s \(session) -x 200 -y 40 'bash --norc --noprofile' </dev/null >/dev/null 2>&1",
    ])
  }

  override func tearDown() {
    _ = try? Command.run(["tmux", "kill-session", "-t", session])
    super.tearDown()
  }

  func screen() throws -> String { try Command.must(["tmux", "capture-pane", "-p", "-t", session]) }

  func type(_ keys: String...) throws { try Command.must(["tmux", "send-keys", "-t", session] + keys) }

  /// Polls the screen until `condition` holds, for up to `seconds`.
  func waitForScreen(seconds: Double = 10, _ condition: (String) -> Bool) throws -> String {
    let deadline = Date().addingTimeInterval(seconds)
    var text = try screen()
    while !condition(text) && Date() < deadline {
      usleep(100_000)
      text = try screen()
    }
    return text
  }

  /// The PACKETS cell of the row of (pid, fd), by the header's column.
  func packets(onScreen text: String, pid: Int32, fd: Int32) -> Int? {
    let lines = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
    guard let column = lines.lazy.compactMap({ $0.firstIndex(of: "PACKETS") }).first else { return nil }
    let row = lines.first { cells in cells.count > column && cells[0] == "\(pid)" && cells[2] == "\(fd)" }
    return row.flatMap { Int($0[column]) }
  }

  func assertQuits(with key: String) throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(10)
    try type("\(Command.sockaffPath) watch --interval 0.3", "Enter")
    let first = try waitForScreen { self.packets(onScreen: $0, pid: pair.server.pid, fd: pair.serverFD) != nil }
    XCTAssertTrue(first.contains("sockaff watch:"), first)
    XCTAssertTrue(first.contains("PACKETS"), first)
    let before = packets(onScreen: first, pid: pair.server.pid, fd: pair.serverFD) ?? 0
    try pair.exchange(50)
    let updated = try waitForScreen {
      (self.packets(onScreen: $0, pid: pair.server.pid, fd: pair.serverFD) ?? 0) >= before + 50
    }
    XCTAssertGreaterThanOrEqual(
      packets(onScreen: updated, pid: pair.server.pid, fd: pair.serverFD) ?? 0, before + 50, "the table updates")
    try type(key)
    let after = try waitForScreen { !$0.contains("sockaff watch:") }
    XCTAssertFalse(after.contains("sockaff watch:"), "left the alternate screen: \(after)")
    try type("stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo | tr '\\n' ,; echo", "Enter")
    let restored = try waitForScreen { $0.contains("icanon,echo,") }
    XCTAssertTrue(restored.contains("icanon,echo,"), "terminal back in canonical mode with echo: \(restored)")
    XCTAssertNotEqual(try Command.run(["pgrep", "-f", "sockaff watch --interval 0.3"]).status, 0, "watch exited")
  }

  func testWatchUpdatesAndQuitsWithQ() throws {
    try assertQuits(with: "q")
  }

  func testWatchQuitsWithControlC() throws {
    try assertQuits(with: "C-c")
  }

  func testWatchOnceJSONHasRates() throws {
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    pair.server.startExchanges(200)
    pair.client.startExchanges(200)
    let result = try Command.sockaff("watch", "--once", "--json", "--interval", "0.3", "--pid", "\(pair.server.pid)")
    try pair.client.waitDone()
    try pair.server.waitDone()
    XCTAssertEqual(result.status, 0, result.stderr)
    let entries = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
    XCTAssertEqual(entries.count, 1)
    XCTAssertEqual(entries.first?["fd"] as? Int, Int(pair.serverFD))
    XCTAssertNotNil(entries.first?["packet_rate"] as? Double)
  }
}
