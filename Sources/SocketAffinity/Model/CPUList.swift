/// The kernel's cpulist format ("0-3,8-11", "0", "" for none), as in
/// /sys/devices/system/node/node*/cpulist and /sys/devices/system/cpu/online.
public enum CPUList {
  public struct ParseError: Error, Equatable, CustomStringConvertible {
    public let text: String
    public var description: String { "malformed cpulist \"\(text)\"" }
  }

  /// Largest CPU id accepted: far above any real host (Linux's NR_CPUS tops out
  /// at 8192), low enough that a malformed range cannot make a huge array.
  public static let maxCPU = 65535

  /// CPUs (or nodes) in words, each one named: "0,1,5". For messages and
  /// evidence, where each id is read on its own; `parse` reads it back.
  public static func joined(_ ids: [Int]) -> String { ids.map(String.init).joined(separator: ",") }

  /// The kernel's own spelling of a set: runs as ranges, "0-3,8" ("" for
  /// none). For tables, where a host's 128 thread CPUs must fit a column.
  public static func format(_ ids: [Int]) -> String {
    var runs: [String] = []
    var index = 0
    let sorted = Array(Set(ids)).sorted()
    while index < sorted.count {
      var end = index
      while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
      runs.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
      index = end + 1
    }
    return runs.joined(separator: ",")
  }

  public static func parse(_ text: String) throws(ParseError) -> [Int] {
    let trimmed = text.trimmingWhitespace()
    if trimmed.isEmpty { return [] }
    var cpus: [Int] = []
    for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
      let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
      guard (1...2).contains(bounds.count),
        let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
        low >= 0, low <= high, high <= maxCPU
      else { throw ParseError(text: text) }
      cpus.append(contentsOf: low...high)
    }
    return Array(Set(cpus)).sorted()
  }
}
