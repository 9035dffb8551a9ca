import XCTest

@testable import SocketAffinity

final class ClockReferenceTests: XCTestCase {
  func testHZSnapsToConfiguredValues() {
    // 80 ms of ticks, off by one either way.
    XCTAssertEqual(ClockReference.hz(jiffies: 20, nanoseconds: 80_000_000), 250)
    XCTAssertEqual(ClockReference.hz(jiffies: 21, nanoseconds: 80_000_000), 250)
    XCTAssertEqual(ClockReference.hz(jiffies: 24, nanoseconds: 80_000_000), 300)
    XCTAssertEqual(ClockReference.hz(jiffies: 8, nanoseconds: 80_000_000), 100)
    XCTAssertEqual(ClockReference.hz(jiffies: 79, nanoseconds: 80_000_000), 1000)
    XCTAssertEqual(ClockReference.hz(jiffies: 1, nanoseconds: 0), 0)
  }

  func testJiffiesConvertToMonotonicTime() {
    let reference = ClockReference(jiffies: 1_000, monotonicNanoseconds: 5_000_000_000, hz: 250)
    XCTAssertEqual(reference.monotonicNanoseconds(atJiffies: 1_250), 6_000_000_000)
    XCTAssertEqual(reference.monotonicNanoseconds(atJiffies: 750), 4_000_000_000, "before the reference")
  }
}
