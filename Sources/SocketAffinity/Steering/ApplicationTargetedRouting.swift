import CSockaffShims
import Glibc
import SystemPackage

/// Intel's Application Targeted Routing (ATR), part of Flow Director on
/// ixgbe and i40e. The NIC samples the TCP packets a host transmits. For
/// each flow it installs a filter that sends the flow's received packets to
/// the RX queue paired with the TX queue they left on. XPS picks that TX
/// queue from the sending CPU. So once a TCP socket has sent, its receive
/// queue follows the CPU its sender last ran on, whatever RSS's table says.
/// Nothing lists these filters. Whether ATR runs is a driver fact:
/// - i40e reports it as the private flag `flow-director-atr` (on by default);
/// - ixgbe runs it while n-tuple filters are off (its default) and turns it
///   off when they are on (ATR and perfect filters share Flow Director).
public enum ApplicationTargetedRouting {
  /// Why ATR may re-steer `interface`'s TCP flows, or nil where it does not
  /// (another driver, the flag off, n-tuple filters on). Through `socket`,
  /// a socket of the interface's network namespace.
  public static func reason(interface: String, through socket: FileDescriptor, ntupleEnabled: Bool) -> String? {
    var name = [CChar](repeating: 0, count: 32)
    guard sockaff_ethtool_driver(socket.rawValue, interface, &name) == 0 else { return nil }
    let driver = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    var on: Int32 = 0
    let flag = sockaff_ethtool_private_flag(socket.rawValue, interface, "flow-director-atr", &on) == 0 ? on == 1 : nil
    return reason(driver: driver, atrFlag: flag, ntupleEnabled: ntupleEnabled)
  }

  /// The rule itself, from the driver's facts (`atrFlag`: the private
  /// flag's state, nil where the driver has none).
  static func reason(driver: String, atrFlag: Bool?, ntupleEnabled: Bool) -> String? {
    if let atrFlag {
      return atrFlag ? "\(driver)'s flow-director-atr private flag is on" : nil
    }
    if driver == "ixgbe" && !ntupleEnabled {
      return "ixgbe runs ATR while n-tuple filters are off"
    }
    return nil
  }
}
