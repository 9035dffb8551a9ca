import Foundation
import Glibc
import XCTest

/// `sockaff serve` against the clients it serves: idle connections held
/// open by an unprivileged user do not lock the scraper out and are closed
/// after the request timeout; concurrent scrapes share one reading. The
/// connection counts are the kernel's (`ss`), not the server's.
final class ServeTests: KernelTestCase {
  static let scrapers = Command.packageRoot.appending(path: "Tests/KernelTests/Peers/scrapers.py")
    .path(percentEncoded: false)

  /// Established connections whose local port is the server's: its side.
  func serverConnections(_ port: Int) throws -> Int {
    try Command.must(["ss", "-Htn", "state", "established", "( sport = :\(port) )"])
      .split(separator: "\n").count
  }

  func testIdleConnectionsCannotLockTheScraperOutAndAreClosed() throws {
    try attach()
    let server = try MetricsServer(arguments: ["--max-connections", "16", "--request-timeout", "2"])
    defer { server.stop() }
    // The script's text, not its path, and Debian's python3: neither the checkout nor
    // root's PATH need be readable by nobody.
    let script = try String(contentsOfFile: Self.scrapers, encoding: .utf8)
    let holder = try Child(
      [
        "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", script, "hold",
        "\(server.port)", "200",
      ], withInput: true)
    defer { holder.signal(SIGKILL) }
    var poller = pollfd(fd: holder.output.fileDescriptor, events: Int16(POLLIN), revents: 0)
    XCTAssertEqual(poll(&poller, 1, 20_000), 1, "the holder opened its connections")
    let held = try JSONSerialization.jsonObject(with: holder.output.availableData) as? [String: Any]
    XCTAssertEqual(held?["held"] as? Int, 200, "the kernel accepted them all (the backlog)")

    let start = Date()
    let metrics = try parse("url", server.url)
    XCTAssertEqual(metrics.status, 200, "a scrape is answered while 200 connections sit idle")
    XCTAssertLessThan(Date().timeIntervalSince(start), 5, "and promptly")
    XCTAssertEqual(metrics.values("sockaff_tracer_attached"), [1])
    XCTAssertLessThanOrEqual(try serverConnections(server.port), 16, "never more than the cap held")

    // Silent connections are closed once the request timeout has passed.
    var left = try serverConnections(server.port)
    for _ in 0..<60 where left > 0 {
      usleep(100_000)
      left = try serverConnections(server.port)
    }
    XCTAssertEqual(left, 0, "every idle connection closed after the timeout")
  }

  func testConcurrentScrapesShareOneReading() throws {
    try attach()
    let server = try MetricsServer()
    defer { server.stop() }
    let scraped = try Command.must(["python3", Self.scrapers, "scrape", server.url, "8", "5"])
    let answers = try JSONSerialization.jsonObject(with: Data(scraped.utf8)) as? [String: Any]
    XCTAssertEqual(answers?["ok"] as? Int, 40, "every scrape answered")
    let last = try parse("url", server.url)
    let readings = last.values("sockaff_scrape_readings_total").first ?? 0
    XCTAssertGreaterThanOrEqual(readings, 2)
    XCTAssertLessThan(readings, 41, "40 concurrent scrapes and this one shared readings: \(readings)")
    XCTAssertEqual(last.values("sockaff_scrape_errors_total"), [0])
    XCTAssertEqual(last.values("sockaff_scrape_duration_seconds").count, 1)
  }

  /// serve's log (stderr, the journal under systemd): its start, each
  /// capability it works without, and each failed scrape, one line each.
  func testServeLogsItsStartRefusedCapabilitiesAndFailedScrapes() throws {
    try attach()
    let log = FileManager.default.temporaryDirectory.appending(path: "sockaff-serve-\(getpid()).log")
      .path(percentEncoded: false)
    defer { unlink(log) }
    // The held-sockets iterator asked for by name and refused: every scrape fails.
    let serve = try Child([
      "/usr/bin/env", "SOCKAFF_REFUSE=iter/task_file", "sh", "-c",
      #"exec "$0" serve --listen 127.0.0.1:0 --sockets-from iterator 2>"$1""#,
      Command.sockaffPath, log,
    ])
    defer {
      serve.signal(SIGTERM)
      _ = try? serve.wait()
    }
    var poller = pollfd(fd: serve.output.fileDescriptor, events: Int16(POLLIN), revents: 0)
    XCTAssertEqual(poll(&poller, 1, 20_000), 1, "serve printed its URL")
    let line = String(decoding: serve.output.availableData, as: UTF8.self)
    guard let start = line.range(of: "http://") else { return XCTFail("serve said: \(line)") }
    let url = String(line[start.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(try parse("url", url).status, 500, "the refused iterator fails the scrape")
    usleep(200_000)
    let text = try String(contentsOfFile: log, encoding: .utf8)
    let lines = text.split(separator: "\n")
    XCTAssertTrue(lines.contains { $0.contains("info") && $0.contains("serving") }, text)
    XCTAssertTrue(
      lines.contains { $0.contains("warning") && $0.contains("the kernel refused iter/task_file (SOCKAFF_REFUSE)") },
      text)
    XCTAssertTrue(lines.contains { $0.contains("error") && $0.contains("scrape failed") }, text)
  }
}
