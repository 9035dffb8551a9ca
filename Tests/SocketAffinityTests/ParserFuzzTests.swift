import XCTest

@testable import SocketAffinity

/// Generated inputs for the parsers of /proc and sysfs text: well-formed
/// ones must round-trip, malformed ones must give an error (or nil), and
/// none may crash or take long. Seeded, so a failure reproduces.
final class ParserFuzzTests: XCTestCase {
  /// SplitMix64: small, fast, and the same sequence on every run.
  struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  var random = SeededGenerator(state: 0x50C4_AFF0)
  let rounds = 20_000

  func noise(from alphabet: String, maxLength: Int) -> String {
    let characters = Array(alphabet)
    let length = Int.random(in: 0...maxLength, using: &random)
    return String((0..<length).map { _ in characters.randomElement(using: &random)! })
  }

  /// A CPU set written as the kernel writes it: ascending, runs as ranges.
  func kernelCPUList(_ cpus: [Int]) -> String {
    var parts: [String] = []
    var index = 0
    while index < cpus.count {
      var end = index
      while end + 1 < cpus.count && cpus[end + 1] == cpus[end] + 1 { end += 1 }
      parts.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
      index = end + 1
    }
    return parts.joined(separator: ",") + "\n"
  }

  func testCPUListRoundTripsAndRejectsNoise() {
    for _ in 0..<rounds {
      let cpus = Array(
        Set((0..<Int.random(in: 0...40, using: &random)).map { _ in Int.random(in: 0...600, using: &random) })
      )
      .sorted()
      XCTAssertEqual(try CPUList.parse(kernelCPUList(cpus)), cpus, kernelCPUList(cpus))

      let text = noise(from: "0123456789,,--\n x", maxLength: 24)
      do {
        let parsed = try CPUList.parse(text)
        XCTAssertEqual(parsed, Array(Set(parsed)).sorted(), "\"\(text)\": sorted, unique")
        XCTAssertTrue(parsed.allSatisfy { (0...CPUList.maxCPU).contains($0) }, "\"\(text)\"")
      } catch {
        XCTAssertEqual(error.text, text)
      }
    }
  }

  func testStatLineGivesTheProcessorFieldWhateverTheCommandName() {
    for _ in 0..<rounds {
      // A command name may hold spaces and parentheses (up to 15 bytes).
      let command = noise(from: "ab ()x)(", maxLength: 15)
      let cpu = Int.random(in: 0...4095, using: &random)
      var fields = (3...52).map { "\($0)" }
      fields[0] = "S"
      fields[36] = "\(cpu)"
      let line = "1234 (\(command)) " + fields.joined(separator: " ") + "\n"
      XCTAssertEqual(ProcFS.lastCPU(statLine: line), cpu, line)

      let garbage = noise(from: "0123456789 ()-S\n", maxLength: 120)
      if let parsed = ProcFS.lastCPU(statLine: garbage) {
        XCTAssertGreaterThanOrEqual(parsed, 0, "\"\(garbage)\"")
      }
    }
  }

  /// The /proc/P/ns/net link that names a process's network namespace
  /// (`netns` in every answer).
  func testNamespaceLinkInodesRoundTripAndNoiseIsNil() {
    for _ in 0..<rounds {
      let inode = UInt64.random(in: 0...UInt64.max, using: &random)
      XCTAssertEqual(ProcFS.inode(inLink: "net:[\(inode)]", kind: "net"), inode)
      XCTAssertNil(ProcFS.inode(inLink: "mnt:[\(inode)]", kind: "net"))
      let text = noise(from: "net:[]0123456789-", maxLength: 30)
      if let parsed = ProcFS.inode(inLink: text, kind: "net") {
        XCTAssertEqual(text, "net:[\(parsed)]", "only the exact form parses")
      }
    }
  }

  func testMountsParseEscapesAndSurvivesNoise() {
    for _ in 0..<rounds {
      let directory = noise(from: "ab c\t\\/", maxLength: 20)
      let escaped = directory.replacingOccurrences(of: "\\", with: "\\134")
        .replacingOccurrences(of: " ", with: "\\040").replacingOccurrences(of: "\t", with: "\\011")
      let line = "cgroup2 /sys/fs/\(escaped) cgroup2 rw,nosuid 0 0\n"
      XCTAssertEqual(
        Mounts.parse(line), [MountEntry(source: "cgroup2", mountPoint: "/sys/fs/\(directory)", type: "cgroup2")],
        line)

      let text = noise(from: "ab \\0123\n7", maxLength: 80)
      for entry in Mounts.parse(text) {
        XCTAssertFalse(entry.type.isEmpty, "\"\(text)\"")
      }
    }
  }
}
