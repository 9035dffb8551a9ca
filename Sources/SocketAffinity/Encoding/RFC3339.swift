import FoundationEssentials
import Glibc

/// Timestamps as RFC 3339 UTC with milliseconds, e.g. "2026-11-25T10:41:07.123Z",
/// written digit by digit from gmtime_r: a format style per call was a large
/// part of a 100k-socket `list --json`.
public enum RFC3339 {
  public static func timestamp(_ date: Date) -> String {
    var bytes: [UInt8] = []
    append(date, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }

  static func append(_ date: Date, to bytes: inout [UInt8]) {
    let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func digits(_ value: Int32, _ width: Int) {
      var divisor: Int32 = 1
      for _ in 1..<width { divisor *= 10 }
      var rest = value
      while divisor > 0 {
        bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest / divisor % 10))
        rest %= divisor
        divisor /= 10
      }
    }
    digits(parts.tm_year + 1900, 4)
    bytes.append(UInt8(ascii: "-"))
    digits(parts.tm_mon + 1, 2)
    bytes.append(UInt8(ascii: "-"))
    digits(parts.tm_mday, 2)
    bytes.append(UInt8(ascii: "T"))
    digits(parts.tm_hour, 2)
    bytes.append(UInt8(ascii: ":"))
    digits(parts.tm_min, 2)
    bytes.append(UInt8(ascii: ":"))
    digits(parts.tm_sec, 2)
    bytes.append(UInt8(ascii: "."))
    digits(Int32(milliseconds - Int64(seconds) * 1000), 3)
    bytes.append(UInt8(ascii: "Z"))
  }
}
