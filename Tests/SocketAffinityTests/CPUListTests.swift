import SocketAffinity
import XCTest

final class CPUListTests: XCTestCase {
  func testRangesAndSinglesAsTheKernelWritesThem() throws {
    XCTAssertEqual(try CPUList.parse("0-3,8-11\n"), [0, 1, 2, 3, 8, 9, 10, 11])
    XCTAssertEqual(try CPUList.parse("5"), [5])
    XCTAssertEqual(try CPUList.parse("0,2,4-5"), [0, 2, 4, 5])
    XCTAssertEqual(try CPUList.parse("3,1-2,1"), [1, 2, 3], "sorted, without duplicates")
  }

  func testEmptyListIsNoCPUs() throws {
    XCTAssertEqual(try CPUList.parse(""), [])
    XCTAssertEqual(try CPUList.parse("\n"), [])
  }

  func testMalformedListsAreErrors() {
    for text in ["a", "1,,2", "3-1", "-1", "1-", "1-2-3", "0-99999999", " , ", "1 2"] {
      XCTAssertThrowsError(try CPUList.parse(text), "\"\(text)\"") { error in
        XCTAssertEqual((error as? CPUList.ParseError)?.text, text)
      }
    }
  }
}
