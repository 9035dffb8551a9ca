import CLibbpf
import CSockaffABI
import Glibc
import SystemPackage

/// Turns the jiffies stored in records into wall-clock time.
///
/// The BPF program stores bpf_jiffies64() (inlined, free) rather than calling
/// a clock helper per packet. Userspace cannot read jiffies or the kernel's
/// HZ directly (sysconf's CLK_TCK is USER_HZ, not HZ), so at attach time the
/// loader runs the sockaff_probe program twice, 80 ms apart, to read
/// (jiffies, CLOCK_MONOTONIC) pairs, and stores one pair plus HZ in the
/// pinned clock map.
public struct ClockReference: Sendable, Equatable {
  public let jiffies: UInt64
  public let monotonicNanoseconds: UInt64
  public let hz: UInt64

  /// HZ values Linux is configured with; a measurement snaps to the nearest.
  static let knownHZ: [UInt64] = [100, 250, 300, 1000]

  /// The kernel's HZ from two (jiffies, ns) readings.
  static func hz(jiffies: UInt64, nanoseconds: UInt64) -> UInt64 {
    guard nanoseconds > 0 else { return 0 }
    let measured = Double(jiffies) * 1e9 / Double(nanoseconds)
    let nearest = knownHZ.min { abs(Double($0) - measured) < abs(Double($1) - measured) }!
    return abs(Double(nearest) - measured) <= Double(nearest) * 0.12 ? nearest : UInt64(measured.rounded())
  }

  /// CLOCK_MONOTONIC nanoseconds at `jiffies`, accurate to one tick.
  public func monotonicNanoseconds(atJiffies value: UInt64) -> Int64 {
    guard hz > 0 else { return Int64(monotonicNanoseconds) }
    let ticks = Int64(bitPattern: value &- jiffies)
    return Int64(monotonicNanoseconds) + ticks * 1_000_000_000 / Int64(hz)
  }

  /// Seconds since the Unix epoch at `jiffies`.
  public func unixTime(atJiffies value: UInt64) -> Double {
    let now = SystemClock.nanoseconds(CLOCK_MONOTONIC)
    let realNow = SystemClock.nanoseconds(CLOCK_REALTIME)
    let ago = now - monotonicNanoseconds(atJiffies: value)
    return Double(realNow - ago) / 1e9
  }

  /// Measures through the loaded probe program and writes the result into the
  /// clock map, where readers of the pins find it.
  static func calibrate(probeFD: Int32, clockMapFD: Int32) throws(SockaffError) -> ClockReference {
    let first = try probe(probeFD: probeFD, clockMapFD: clockMapFD)
    usleep(80_000)
    let second = try probe(probeFD: probeFD, clockMapFD: clockMapFD)
    let reference = ClockReference(
      jiffies: second.jiffies, monotonicNanoseconds: second.monotonic_ns,
      hz: hz(jiffies: second.jiffies - first.jiffies, nanoseconds: second.monotonic_ns - first.monotonic_ns))
    var key: UInt32 = 0
    var value = sockaff_clock(
      jiffies: reference.jiffies, monotonic_ns: reference.monotonicNanoseconds, hz: reference.hz,
      abi_version: UInt64(SOCKAFF_ABI_VERSION))
    if bpf_map_update_elem(clockMapFD, &key, &value, UInt64(BPF_ANY)) != 0 {
      throw SockaffError.lastErrno(operation: "write clock map")
    }
    return reference
  }

  private static func probe(probeFD: Int32, clockMapFD: Int32) throws(SockaffError) -> sockaff_clock {
    try BPF.testRun(programFD: probeFD)
    return try read(clockMapFD: clockMapFD)
  }

  static func read(clockMapFD: Int32) throws(SockaffError) -> sockaff_clock {
    var key: UInt32 = 0
    var value = sockaff_clock()
    if bpf_map_lookup_elem(clockMapFD, &key, &value) != 0 {
      throw SockaffError.lastErrno(operation: "read clock map")
    }
    return value
  }

  /// The reference stored by `trace`, from the pinned clock map.
  static func load(clockMapFD: Int32) throws(SockaffError) -> ClockReference {
    let value = try read(clockMapFD: clockMapFD)
    return ClockReference(jiffies: value.jiffies, monotonicNanoseconds: value.monotonic_ns, hz: value.hz)
  }
}
