import FoundationEssentials
import XCTest

@testable import SocketAffinity

/// JSONLines (bytes, for listings) against JSONEncoder over the same field
/// list (Codable, for `query --json`): the same document parsed back and
/// compared as values, valid JSON, and keys in field order (JSONEncoder's own
/// order is its dictionary's, random).
final class JSONFieldsTests: XCTestCase {
  func reference(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  func parsed(_ text: String) throws -> NSObject? {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) as? NSObject
  }

  func document(_ values: [SocketAffinity]) throws -> String {
    var bytes: [UInt8] = []
    try JSONLines.document(values) { bytes += $0 }
    return String(decoding: bytes, as: UTF8.self)
  }

  func assertSameDocument(_ value: SocketAffinity, file: StaticString = #filePath, line: UInt = #line) throws {
    let ours = try JSONLines.encode(value)
    let theirs = try reference(value)
    XCTAssertNotNil(try parsed(ours), ours, file: file, line: line)
    XCTAssertEqual(try parsed(ours), try parsed(theirs), "\(ours)\n\(theirs)", file: file, line: line)
  }

  func sample(
    _ text: String?, doubles: Double = 0.62, dates: Bool = true, cookie: UInt64 = .max, incoming: Int32 = -1,
    path: Bool = true
  ) -> SocketAffinity {
    var answer = SocketAffinity(
      pid: 812, fd: 9, command: text, networkNamespace: 4_026_531_840, cookie: cookie, family: .inet6,
      transport: .udp, local: "[::1]:8080", remote: nil, connected: false, cpu: 3,
      processor: ProcessorNumber(group: 0, number: 3), numaNode: 1, rxQueue: 2, napiID: nil, ifindex: .max,
      interface: "lo", packets: 100, bytes: 6_400, cpuChanges: 4,
      cpus: [
        .init(cpu: 3, numaNode: 1, packets: 62, share: doubles), .init(cpu: 0, numaNode: nil, packets: 38, share: 0.38),
      ],
      otherCPUsPackets: 0, firstSeen: dates ? Date(timeIntervalSince1970: 1_764_064_867.123) : nil, lastSeen: nil,
      kernelIncomingCPU: incoming, source: .bpf, consumerCPU: 0, reads: 7, threadNodes: [0, 1],
      locality: .init(sameCPU: 1e-7, sameNode: 1, source: .recvmsg), crossNUMA: true)
    answer.path = path ? samplePath(text ?? "eth0") : nil
    return answer
  }

  /// A path with every kind of field: nested object, arrays, nulls, text.
  func samplePath(_ interface: String) -> SteeringPath {
    SteeringPath(
      interface: interface, deviceNode: nil, rxQueue: 2, napiID: 8195,
      interrupt: .init(number: 29, name: "virtio0-input.2", cpus: [5], nodes: [2], source: "sysfs"),
      rpsCPUs: [0, 7], rfs: false,
      xdp: InterfaceXDP(programs: [
        .init(id: 41, name: "fw", mode: "driver", cpumaps: [.init(id: 7, cpus: [2, 3])], xskmapIDs: [9])
      ]),
      mayResteer: ["atr", "arfs \"quoted\""], receiveCPU: 7, receiveNode: 3, readerCPU: 6, readerNode: 3,
      unresolved: nil)
  }

  func testKeysComeInFieldOrder() throws {
    let text = try JSONLines.encode(sample("nginx"))
    let keys = ["pid", "fd", "command", "netns", "cookie", "family", "protocol", "local", "remote", "connected"]
    let positions = keys.map { text.range(of: "\"\($0)\":")?.lowerBound }
    XCTAssertFalse(positions.contains(nil), text)
    XCTAssertEqual(positions.compactMap { $0 }, positions.compactMap { $0 }.sorted(), text)
    XCTAssertTrue(text.hasPrefix("{\"pid\":812,\"fd\":9,\"command\":\"nginx\""), text)
  }

  func testSocketRecordsMatchJSONEncoder() throws {
    try assertSameDocument(sample("nginx"))
    try assertSameDocument(sample(nil, doubles: 1, dates: false, cookie: 0, incoming: .min))
    try assertSameDocument(sample("no path", path: false))
    for share in [0.1, 1, 0, 1e-9, 123_456.789, 1e20, Double(Int64.max) / 4, -2.5] {
      try assertSameDocument(sample("x", doubles: share, incoming: .max))
    }
  }

  func testDocumentIsOneArrayWithAnObjectPerLine() throws {
    let values = (0..<1_100).map { sample("p\($0)", cookie: UInt64($0)) }  // more than two slices
    let text = try document(values)
    XCTAssertEqual(try parsed(text), try parsed(try reference(values)))
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    XCTAssertEqual(lines.count, values.count + 3, "[, one per record, ], and the final newline")
    XCTAssertEqual(lines.first, "[")
    XCTAssertEqual(lines[lines.count - 2], "]")
    XCTAssertTrue(lines[1].hasSuffix("\"unresolved\":null},\"hash_check\":null,\"limits\":null},"), String(lines[1]))
    XCTAssertTrue(lines[1].contains("\"interface\":\"lo\",\"irq\":29,\"packets\""), String(lines[1]))
    XCTAssertEqual(try document([]), "[]\n")
  }

  func testWatchEntriesAddTheirFieldsAfterTheSocket() throws {
    let entry = ReceiveRates.Entry(socket: sample("nginx"), packetRate: 12.5, previousCPU: nil)
    var bytes: [UInt8] = []
    try JSONLines.document([entry]) { bytes += $0 }
    let text = String(decoding: bytes, as: UTF8.self)
    XCTAssertEqual(try parsed(text), try parsed(try reference([entry])))
    XCTAssertTrue(text.contains("\"limits\":null,\"packet_rate\":12.5,\"previous_cpu\":null}"), text)
  }

  func testStringsAreEscapedAsJSONRequires() throws {
    for text in [
      "quote \" backslash \\ slash /", "tab\tnewline\ncr\rbell\u{7}nul\u{0}", "é ü 日本 🚀", "", "\u{1F}\u{8}\u{C}",
    ] {
      try assertSameDocument(sample(text))
      let command = (try parsed(try JSONLines.encode(sample(text))) as? [String: Any])?["command"] as? String
      XCTAssertEqual(command, text)
    }
  }

  func testNonFiniteDoubleIsAnError() {
    XCTAssertThrowsError(try JSONLines.encode(sample("x", doubles: .nan)))
    XCTAssertThrowsError(try JSONLines.encode(sample("x", doubles: .infinity)))
    XCTAssertThrowsError(try reference(sample("x", doubles: .nan)), "JSONEncoder agrees")
  }

  func testTimestampsAreRFC3339UTCWithMilliseconds() {
    XCTAssertEqual(RFC3339.timestamp(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
    XCTAssertEqual(RFC3339.timestamp(Date(timeIntervalSince1970: 1_764_064_867.1239)), "2025-11-25T10:01:07.123Z")
    XCTAssertEqual(RFC3339.timestamp(Date(timeIntervalSince1970: 951_782_400.5)), "2000-02-29T00:00:00.500Z")
    XCTAssertEqual(RFC3339.timestamp(Date(timeIntervalSince1970: -0.25)), "1969-12-31T23:59:59.750Z")
    // The same text as Foundation's own ISO 8601 format (a whole second and
    // a half: exact in binary, so no rounding can differ).
    let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) + 0.5)
    XCTAssertEqual(RFC3339.timestamp(now), Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(now))
  }
}
