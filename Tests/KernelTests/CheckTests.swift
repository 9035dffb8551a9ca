import Foundation
import XCTest

/// `sockaff check` on this host: it reads every interface with a device, as
/// sysfs lists them, says what it could not check without the tracer, and
/// its exit status follows its findings (0 for none, 21 for some). The
/// findings themselves are checked where a host can be made bad on purpose:
/// the unit tests' fixture NIC and the VM lab.
final class CheckTests: KernelTestCase {
  func report(_ arguments: String...) throws -> (status: Int32, object: [String: Any]) {
    let result = try Command.run([Command.sockaffPath, "check", "--json"] + arguments)
    let object = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], result.stderr)
    return (result.status, object)
  }

  /// The interfaces of this network namespace that have a device.
  func nics() -> Set<String> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []
    return Set(names.filter { FileManager.default.fileExists(atPath: "/sys/class/net/\($0)/device") })
  }

  func testWithoutTheTracerItSaysWhatItCannotCheck() throws {
    XCTAssertEqual(try Command.sockaff("detach").status, 0)
    let (status, object) = try report()
    XCTAssertEqual(Set(object["interfaces"] as? [String] ?? []), nics())
    let limits = object["limits"] as? [String] ?? []
    XCTAssertTrue(limits.contains { $0.hasPrefix("the tracer is not attached") }, "\(limits)")
    XCTAssertTrue(object["sockets"] is NSNull || object["sockets"] == nil)
    let findings = object["findings"] as? [[String: Any]] ?? []
    XCTAssertEqual(status, findings.isEmpty ? 0 : 21, "\(findings)")
    for finding in findings {
      XCTAssertTrue(["warning", "notice"].contains(finding["severity"] as? String ?? ""), "\(finding)")
      XCTAssertFalse((finding["evidence"] as? [String] ?? []).isEmpty, "every finding shows its evidence")
    }
  }

  /// With the tracer: the traced sockets are counted, and a test server's
  /// connection is among them.
  func testWithTheTracerItChecksTheTracedSockets() throws {
    try attach()
    let pair = try PeerPair.start(transport: "tcp", serverHost: "127.0.0.1")
    try pair.exchange(5)
    settle()
    let (status, object) = try report()
    XCTAssertGreaterThanOrEqual(object["sockets"] as? Int ?? 0, 2, "both ends of the test's connection")
    let findings = object["findings"] as? [[String: Any]] ?? []
    XCTAssertEqual(status, findings.isEmpty ? 0 : 21, "\(findings)")
    let text = try Command.sockaff("check")
    XCTAssertEqual(text.status, status)
    XCTAssertTrue(text.stdout.hasPrefix("sockaff check: \(nics().count) NICs, "), text.stdout)
  }

  func testBadUsageIsOneLine() throws {
    let result = try Command.sockaff("check", "--bogus")
    XCTAssertEqual(result.status, 64)
    XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
    XCTAssertEqual(result.stdout, "")
  }
}
