import XCTest

@testable import SocketAffinity

/// `watch`'s rates: packets per second between two samples of the same
/// socket (pid, fd, cookie), the CPU it moved from, and the order shown.
final class ReceiveRatesTests: XCTestCase {
  func socket(fd: Int32, cookie: UInt64, cpu: Int, packets: UInt64) -> SocketAffinity {
    SocketAffinity(
      pid: 812, fd: fd, command: "nginx", networkNamespace: nil, cookie: cookie, family: .inet, transport: .udp,
      local: nil, remote: nil, connected: false, cpu: cpu, processor: nil, numaNode: 0, rxQueue: nil, napiID: nil,
      ifindex: nil, interface: nil, packets: packets, bytes: nil, cpuChanges: nil, cpus: [], otherCPUsPackets: 0,
      firstSeen: nil, lastSeen: nil, kernelIncomingCPU: -1, source: .bpf, consumerCPU: nil, reads: nil,
      threadNodes: [], locality: nil, crossNUMA: nil)
  }

  func testRatesComeFromTheSameSocketsPreviousSample() throws {
    var rates = ReceiveRates()
    let start = SystemClock.nanoseconds(CLOCK_MONOTONIC)
    let first = rates.update([
      socket(fd: 3, cookie: 30, cpu: 0, packets: 100), socket(fd: 4, cookie: 40, cpu: 1, packets: 900),
    ])
    XCTAssertEqual(first.map(\.packetRate), [nil, nil], "a first sample has no rate")
    XCTAssertEqual(first.map(\.socket.fd), [4, 3], "without rates, most packets first")

    usleep(200_000)
    let second = rates.update([
      socket(fd: 3, cookie: 30, cpu: 1, packets: 100 + 2_000),  // moved from CPU 0 to 1
      socket(fd: 4, cookie: 40, cpu: 1, packets: 900 + 100),
      socket(fd: 5, cookie: 50, cpu: 0, packets: 7),  // new
    ])
    let seconds = Double(SystemClock.nanoseconds(CLOCK_MONOTONIC) - start) / 1e9
    XCTAssertEqual(second.map(\.socket.fd), [3, 4, 5], "highest rate first, new sockets last")
    // The time between the samples is at least the sleep, at most the time
    // between two clock readings taken before the first and after the second.
    XCTAssertLessThanOrEqual(second[0].packetRate!, 2_000 / 0.2)
    XCTAssertGreaterThanOrEqual(second[0].packetRate!, 2_000 / seconds)
    XCTAssertEqual(second[0].packetRate! / second[1].packetRate!, 20, accuracy: 1e-9)
    XCTAssertEqual(second[0].previousCPU, 0)
    XCTAssertNil(second[1].previousCPU, "same CPU: no previous one shown")
    XCTAssertNil(second[2].packetRate)
  }

  /// A closed fd reused by another socket (another cookie) is a new socket,
  /// never a negative or huge rate.
  func testAReusedFdWithAnotherCookieIsANewSocket() {
    var rates = ReceiveRates()
    _ = rates.update([socket(fd: 3, cookie: 30, cpu: 0, packets: 5_000)])
    usleep(10_000)
    let next = rates.update([socket(fd: 3, cookie: 31, cpu: 0, packets: 10)])
    XCTAssertNil(next[0].packetRate)
  }
}
