import ArgumentParser
import FoundationEssentials
import SocketAffinity
import SystemPackage

/// Printing for every command: JSON documents on stdout, one-line errors on
/// stderr with the error's own exit status.
enum Output {
  /// One document, pretty-printed with sorted keys. Every type spells its
  /// snake_case keys itself (CodingKeys): the encoder converts nothing.
  static func json(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
  }

  /// An array of many objects (list, watch): one compact object per line,
  /// keys in field order. Pretty-printing and sorting keys cost more than the listing
  /// itself at 10k sockets.
  /// The objects are written by CompactJSON (JSONEncoder cost ~30 µs per
  /// socket record, most of a 100k-socket listing), in slices on every CPU.
  static func jsonLines<Value: Encodable & Sendable>(_ values: [Value]) throws {
    let slice = 512
    let parts = concurrentMap((values.count + slice - 1) / slice) { index in
      Result { try values[index * slice..<min((index + 1) * slice, values.count)].map(CompactJSON.encode) }
    }
    let lines = try parts.flatMap { try $0.get() }
    print(lines.isEmpty ? "[]" : "[\n" + lines.joined(separator: ",\n") + "\n]")
  }

  static func standardError(_ line: String, newline: Bool = true) {
    _ = try? FileDescriptor.standardError.writeAll((newline ? line + "\n" : line).utf8)
  }

  /// Reports `error` and exits with its status. With --json, stdout also gets
  /// a complete error object (never a half-written answer).
  static func fail(_ error: SockaffError, json: Bool) -> ExitCode {
    standardError("sockaff: \(error)")
    if json {
      try? Output.json(ErrorDocument(error: error))
    }
    return ExitCode(error.exitStatus)
  }

  struct ErrorDocument: Encodable {
    let error: String
    let kind: String
    let errno: Int32?
    let exitStatus: Int32

    enum CodingKeys: String, CodingKey {
      case error, kind, errno
      case exitStatus = "exit_status"
    }

    init(error: SockaffError) {
      self.error = error.description
      kind = error.kind.rawValue
      errno = error.errno?.rawValue
      exitStatus = error.exitStatus
    }
  }
}

/// Runs a command body, turning a SockaffError into its line and exit status.
func reporting(json: Bool = false, _ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as SockaffError {
    throw Output.fail(error, json: json)
  }
}
