import SockaffPresentation
import XCTest

/// The table `list` prints: built in slices on every CPU, so order and
/// alignment are checked across several slices.
final class SocketTableTests: XCTestCase {
  func testRowsStayInOrderAndColumnsAlignAcrossSlices() {
    let count = 5_000  // more than two slices of 2,048
    let rows =
      [["PID", "COMMAND", "LOCAL"]]
      + (0..<count).map {
        ["\($0)", $0 % 7 == 0 ? "日本語" : "nginx-\($0 % 13)", $0 % 5 == 0 ? "" : "10.0.0.\($0 % 250)"]
      }
    let lines = SocketTable.format(rows).split(separator: "\n", omittingEmptySubsequences: false)
    XCTAssertEqual(lines.count, count + 1)
    let header = Array(lines[0])
    let commandColumn = header.firstIndex(of: "C")!
    let localColumn = header.firstIndex(of: "L")!
    for (index, line) in lines.dropFirst().enumerated() {
      let characters = Array(line)
      XCTAssertEqual(String(characters.prefix { $0 != " " }), "\(index)", "row \(index) in order")
      XCTAssertNotEqual(characters[commandColumn], " ", "row \(index): command starts under COMMAND")
      XCTAssertEqual(characters[commandColumn - 1], " ")
      if index % 5 == 0 {
        XCTAssertFalse(line.hasSuffix(" "), "no trailing blanks: \(line)")
      } else {
        XCTAssertEqual(characters[localColumn - 1], " ")
        XCTAssertEqual(String(characters[localColumn...]), "10.0.0.\(index % 250)")
      }
    }
  }

  func testEmptyInputIsEmpty() {
    XCTAssertEqual(SocketTable.format([]), "")
  }

  /// Numbers flush right under their header, text flush left.
  func testNumbersAreRightAligned() {
    let table = SocketTable.format([["PID", "COMMAND"], ["7", "a"], ["12345", "nginx"]], rightAligned: [0])
    XCTAssertEqual(table, "  PID  COMMAND\n    7  a\n12345  nginx")
  }

  /// The default columns fit 80 terminal columns for an IPv4 socket of a
  /// busy host (the longest address and port, a 5-digit pid, 8-digit
  /// counts); --wide has them all.
  func testTheDefaultColumnsFitEightyColumns() {
    XCTAssertEqual(
      SocketTable.header(), ["PID", "COMMAND", "FD", "PROTO", "LOCAL", "CPU", "NODE", "PACKETS", "LOCAL%"])
    let busy = ["81234", "postgres", "12", "udp", "192.168.100.200:65535", "12", "1", "12345678", "100% rx"]
    let table = SocketTable.format(
      [SocketTable.header(), busy], rightAligned: SocketTable.rightAligned(SocketTable.narrow))
    for line in table.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, "\(line)") }
    XCTAssertEqual(SocketTable.header(SocketTable.wide).count, SocketTable.Column.allCases.count)
    XCTAssertTrue(SocketTable.header(SocketTable.wide).contains("REMOTE"))
  }
}
