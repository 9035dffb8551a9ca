import Glibc

/// The system's clocks, in nanoseconds: for every layer (timeouts, rates,
/// progress, the record clock's conversion), so it lives in support.
public enum SystemClock {
  public static func nanoseconds(_ clock: clockid_t) -> Int64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
  }
}
