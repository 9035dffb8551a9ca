import XCTest

@testable import SockaffPresentation
@testable import SocketAffinity

/// The path line's hops for what decides before RSS: an XDP program and
/// its cpumap, and what may re-steer a flow that the path cannot see.
final class AffinityTextTests: XCTestCase {
  func path(xdp: InterfaceXDP?, mayResteer: [String], receiveCPU: Int) -> SteeringPath {
    SteeringPath(
      interface: "eth0", deviceNode: 0, rxQueue: 1, napiID: nil,
      interrupt: .init(number: 27, name: "eth0-rx-1", cpus: [1], nodes: [0], source: "sysfs"), rpsCPUs: [], rfs: false,
      xdp: xdp, mayResteer: mayResteer, receiveCPU: receiveCPU, receiveNode: 0, readerCPU: nil, readerNode: nil,
      unresolved: nil)
  }

  func testACPUMapIsAHopAndTheCauseOfAMove() {
    let xdp = InterfaceXDP(programs: [
      .init(id: 41, name: "lb", mode: "driver", cpumaps: [.init(id: 7, cpus: [2, 3])], xskmapIDs: [])
    ])
    let moved = path(xdp: xdp, mayResteer: [], receiveCPU: 3)
    XCTAssertEqual(moved.movedOffInterruptCause, "xdp_cpumap", "cpu 3 is one of the cpumap's")
    let text = AffinityText.path(moved)
    XCTAssertTrue(text.contains("-> xdp program 41 lb (driver) -> cpumap 7 cpus 2,3 ->"), text)
    XCTAssertTrue(text.contains("moved off the irq's cpu by xdp, to a cpumap's cpu"), text)
    XCTAssertEqual(
      path(xdp: xdp, mayResteer: [], receiveCPU: 5).movedOffInterruptCause, "unknown",
      "a CPU the cpumap cannot send to is not the cpumap's doing")
  }

  func testWhatMayReSteerIsSaid() {
    let text = AffinityText.path(path(xdp: nil, mayResteer: ["ntuple_rules", "atr"], receiveCPU: 1))
    XCTAssertTrue(text.hasSuffix("(may be re-steered by ntuple rules, ATR)"), text)
  }
}
