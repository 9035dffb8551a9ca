import XCTest

@testable import SocketAffinity

/// Receive modes from a fixture of the 4-queue virtio-net guest with
/// threaded NAPI on: the NAPI threads by name, their affinity and last CPU;
/// and the path's cause for packets processed off the IRQ's CPU, which
/// names NAPI threads, busy polling, RFS and RPS and never blames RPS or
/// RFS when they are off.
final class ReceiveModesTests: XCTestCase {
  func testThreadedNAPIThreadsAreFoundByName() throws {
    let eth0 = InterfaceQueues(
      interface: "eth0", sys: Fixture.path("threaded-napi/sys"), proc: Fixture.path("threaded-napi/proc"),
      netlink: false)
    XCTAssertTrue(eth0.threaded)
    XCTAssertEqual(eth0.deferHardIRQs, 2)
    XCTAssertEqual(eth0.groFlushTimeout, 200_000)
    XCTAssertEqual(Set(eth0.napiThreads.keys), [8193, 8194], "eth1's thread and a kworker are not eth0's")
    let pinned = try XCTUnwrap(eth0.napiThreads[8193])
    XCTAssertEqual(pinned.pid, 412)
    XCTAssertEqual(pinned.name, "napi/eth0-8193")
    XCTAssertEqual(pinned.pinnedCPU, 6)
    XCTAssertEqual(pinned.lastCPU, 6)
    XCTAssertEqual(pinned.source, "name")
    let roaming = try XCTUnwrap(eth0.napiThreads[8194])
    XCTAssertNil(roaming.pinnedCPU)
    XCTAssertEqual(roaming.allowedCPUs, Array(0...7))
    XCTAssertEqual(roaming.lastCPU, 3)
    XCTAssertNil(eth0.napiThread(queue: 0), "without netlink no queue names its NAPI")
    let plain = InterfaceQueues(
      interface: "eth0", sys: Fixture.path("rss-virtio/sys"), proc: Fixture.path("rss-virtio/proc"), netlink: false)
    XCTAssertFalse(plain.threaded)
    XCTAssertTrue(plain.napiThreads.isEmpty)
  }

  static let irq = SteeringPath.Interrupt(number: 25, name: "virtio0-input.0", cpus: [0], nodes: [0], source: "sysfs")
  static let thread = NAPIThread(
    napiID: 8193, pid: 412, name: "napi/eth0-8193", allowedCPUs: [6], lastCPU: 6, source: "name")
  static let polling = BusyPolling(socketMicroseconds: 50, prefer: nil, busyRead: 50, busyPoll: 0)

  func path(
    received: Int, rps: [Int] = [], rfs: Bool = false, thread: NAPIThread? = nil, polling: BusyPolling? = nil,
    readers: [Int] = []
  ) -> SteeringPath {
    SteeringPath(
      interface: "eth0", deviceNode: 0, rxQueue: 0, napiID: 8193, interrupt: Self.irq, rpsCPUs: rps, rfs: rfs,
      napiThread: thread, busyPolling: polling, receiveCPU: received, receiveNode: received / 2, readerCPU: nil,
      readerNode: nil, readerCPUs: readers, unresolved: nil)
  }

  func testTheCauseOfPacketsOffTheIRQsCPUIsNamed() {
    XCTAssertNil(path(received: 0).movedOffInterruptCause, "on the IRQ's CPU: nothing moved them")
    XCTAssertEqual(path(received: 6, thread: Self.thread).movedOffInterruptCause, "napi_thread")
    XCTAssertEqual(path(received: 4, polling: Self.polling, readers: [4]).movedOffInterruptCause, "busy_poll")
    XCTAssertEqual(path(received: 4, rfs: true, readers: [4]).movedOffInterruptCause, "rfs")
    XCTAssertEqual(path(received: 5, rps: [5]).movedOffInterruptCause, "rps")
    // Moved, with RPS and RFS off and nothing else that explains it.
    let unknown = path(received: 3, readers: [3])
    XCTAssertEqual(unknown.movedOffInterruptCPU, true)
    XCTAssertEqual(unknown.movedOffInterruptCause, "unknown")
    XCTAssertEqual(path(received: 3, thread: Self.thread).movedOffInterruptCause, "unknown", "not the thread's CPU")
  }

  func testBusyPollingIsActiveFromTheSocketOrPollSysctl() {
    XCTAssertTrue(Self.polling.active)
    XCTAssertEqual(Self.polling.description, "SO_BUSY_POLL 50 us")
    XCTAssertTrue(BusyPolling(socketMicroseconds: 0, prefer: false, busyRead: 0, busyPoll: 20).active)
    XCTAssertFalse(
      BusyPolling(socketMicroseconds: 0, prefer: true, busyRead: 50, busyPoll: 0).active,
      "busy_read only sets the default of sockets made later: this one's SO_BUSY_POLL is 0")
    // The NIC's IRQ deferral, from the fixture's device: named with the polling.
    let eth0 = InterfaceQueues(
      interface: "eth0", sys: Fixture.path("threaded-napi/sys"), proc: Fixture.path("threaded-napi/proc"),
      netlink: false)
    var deferred = Self.polling
    (deferred.deferHardIRQs, deferred.groFlushTimeout) = (eth0.deferHardIRQs, eth0.groFlushTimeout)
    XCTAssertEqual(
      deferred.description,
      "SO_BUSY_POLL 50 us, IRQs deferred (napi_defer_hard_irqs 2, gro_flush_timeout 200000 ns)")
  }
}
