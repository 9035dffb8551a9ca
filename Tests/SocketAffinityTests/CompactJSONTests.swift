import FoundationEssentials
import XCTest

@testable import SocketAffinity

/// CompactJSON against FoundationEssentials' JSONEncoder: the same document
/// (parsed back, compared as values), valid JSON, and keys in the order the
/// type encodes them (JSONEncoder's own order is its dictionary's, random).
final class CompactJSONTests: XCTestCase {
  func reference(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  func assertSameDocument(_ value: some Encodable, file: StaticString = #filePath, line: UInt = #line) throws {
    let ours = try CompactJSON.encode(value)
    let theirs = try reference(value)
    let parsedOurs = try JSONSerialization.jsonObject(with: Data(ours.utf8), options: [.fragmentsAllowed])
    let parsedTheirs = try JSONSerialization.jsonObject(with: Data(theirs.utf8), options: [.fragmentsAllowed])
    XCTAssertEqual(parsedOurs as? NSObject, parsedTheirs as? NSObject, "\(ours)\n\(theirs)", file: file, line: line)
  }

  func testKeysComeInTheOrderTheTypeEncodesThem() throws {
    let text = try CompactJSON.encode(sample("nginx"))
    let keys = ["pid", "fd", "command", "netns", "cookie", "family", "protocol", "local", "remote", "connected"]
    let positions = keys.map { text.range(of: "\"\($0)\":")?.lowerBound }
    XCTAssertFalse(positions.contains(nil), text)
    XCTAssertEqual(positions.compactMap { $0 }, positions.compactMap { $0 }.sorted(), text)
    XCTAssertTrue(text.hasPrefix("{\"pid\":812,\"fd\":9,\"command\":\"nginx\""), text)
  }

  func sample(_ text: String?, doubles: Double = 0.62, dates: Bool = true) -> SocketAffinity {
    SocketAffinity(
      pid: 812, fd: 9, command: text, networkNamespace: 4_026_531_840, cookie: .max, family: .inet6, transport: .udp,
      local: "[::1]:8080", remote: nil, connected: false, cpu: 3, processor: ProcessorNumber(group: 0, number: 3),
      numaNode: 1, rxQueue: 2, napiID: nil, ifindex: 1, interface: "lo", packets: 100, bytes: 6_400,
      cpuChanges: 4,
      cpus: [
        .init(cpu: 3, numaNode: 1, packets: 62, share: doubles), .init(cpu: 0, numaNode: nil, packets: 38, share: 0.38),
      ],
      otherCPUsPackets: 0, firstSeen: dates ? Date(timeIntervalSince1970: 1_764_064_867.123) : nil, lastSeen: nil,
      kernelIncomingCPU: -1, source: .bpf, consumerCPU: 0, reads: 7, threadNodes: [0, 1],
      locality: .init(sameCPU: 1e-7, sameNode: 1, source: .recvmsg), crossNUMA: true)
  }

  func testSocketRecordsMatchJSONEncoder() throws {
    try assertSameDocument(sample("nginx"))
    try assertSameDocument(sample(nil, doubles: 1, dates: false))
    try assertSameDocument([sample("a"), sample("b")])
    try assertSameDocument([SocketAffinity]())
  }

  func testStringsAreEscapedAsJSONRequires() throws {
    for text in [
      "quote \" backslash \\ slash /", "tab\tnewline\ncr\rbell\u{7}nul\u{0}", "é ü 日本 🚀", "", "\u{1F}\u{8}\u{C}",
    ] {
      try assertSameDocument(sample(text))
      XCTAssertNoThrow(
        try JSONSerialization.jsonObject(with: Data(try CompactJSON.encode(text).utf8), options: [.fragmentsAllowed]))
    }
  }

  func testNumbersAndCollections() throws {
    try assertSameDocument([0.1, 1, -2.5, 1e-9, 123_456.789, 1e20, Double(Int64.max) / 4])
    try assertSameDocument([Int64.min, Int64.max, 0])
    try assertSameDocument([UInt64.max])
    try assertSameDocument(["b": 2, "a": 1])
    try assertSameDocument([[Int]](arrayLiteral: [], [1], [2, 3]))
    try assertSameDocument([Int?.none, 1])
    try assertSameDocument(true)
  }

  func testNonFiniteDoubleIsAnError() {
    XCTAssertThrowsError(try CompactJSON.encode([Double.nan]))
    XCTAssertThrowsError(try CompactJSON.encode(Double.infinity))
  }

  func testTimestampsAreRFC3339UTCWithMilliseconds() {
    XCTAssertEqual(SocketAffinity.timestamp(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
    XCTAssertEqual(
      SocketAffinity.timestamp(Date(timeIntervalSince1970: 1_764_064_867.1239)), "2025-11-25T10:01:07.123Z")
    XCTAssertEqual(SocketAffinity.timestamp(Date(timeIntervalSince1970: 951_782_400.5)), "2000-02-29T00:00:00.500Z")
    // The same text as Foundation's own ISO 8601 format (a whole second and
    // a half: exact in binary, so no rounding can differ).
    let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) + 0.5)
    XCTAssertEqual(
      SocketAffinity.timestamp(now), Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(now))
  }
}
