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
}
