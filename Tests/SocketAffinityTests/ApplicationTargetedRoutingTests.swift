import CSockaffShims
import Glibc
import SystemPackage
import XCTest

@testable import SocketAffinity

/// When Intel's ATR may re-steer TCP flows, from the driver's facts, and
/// the ethtool reads those facts come from on an interface without them.
final class ApplicationTargetedRoutingTests: XCTestCase {
  func testTheI40eFlagDecidesWhereTheDriverHasIt() {
    XCTAssertEqual(
      ApplicationTargetedRouting.reason(driver: "i40e", atrFlag: true, ntupleEnabled: true),
      "i40e's flow-director-atr private flag is on", "i40e keeps ATR beside sideband rules")
    XCTAssertNil(ApplicationTargetedRouting.reason(driver: "i40e", atrFlag: false, ntupleEnabled: false))
  }

  func testIxgbeRunsItWhileNtupleFiltersAreOff() {
    XCTAssertEqual(
      ApplicationTargetedRouting.reason(driver: "ixgbe", atrFlag: nil, ntupleEnabled: false),
      "ixgbe runs ATR while n-tuple filters are off")
    XCTAssertNil(
      ApplicationTargetedRouting.reason(driver: "ixgbe", atrFlag: nil, ntupleEnabled: true),
      "perfect filters turn ATR off")
  }

  func testOtherDriversHaveNone() {
    for driver in ["mlx5_core", "ena", "virtio_net", "ice", "bnxt_en"] {
      XCTAssertNil(ApplicationTargetedRouting.reason(driver: driver, atrFlag: nil, ntupleEnabled: false), driver)
    }
  }

  func testLoopbackHasNoSuchPrivateFlagAndNoATR() {
    let raw = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    XCTAssertGreaterThanOrEqual(raw, 0)
    defer { close(raw) }
    var on: Int32 = -1
    XCTAssertEqual(sockaff_ethtool_private_flag(raw, "lo", "flow-director-atr", &on), -1)
    XCTAssertEqual(Glibc.errno, ENOENT, "no private flags at all: not found, not an error of the call")
    XCTAssertEqual(on, -1, "left alone")
    XCTAssertNil(
      ApplicationTargetedRouting.reason(interface: "lo", through: FileDescriptor(rawValue: raw), ntupleEnabled: false))
  }
}
