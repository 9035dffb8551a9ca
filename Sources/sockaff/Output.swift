import ArgumentParser
import FoundationEssentials
import Glibc
import SocketAffinity
import SystemPackage

/// Printing for every command: JSON documents on stdout, one-line errors on
/// stderr with the error's own exit status.
enum Output {
  /// One document, pretty-printed with sorted keys. Every type spells its
  /// snake_case keys itself (CodingKeys or JSONFields): the encoder converts nothing.
  static func json(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
  }

  /// An array of many objects (list, watch): one compact object per line,
  /// keys in field order, written by JSONLines (JSONEncoder cost ~30 µs per
  /// socket record, most of a 100k-socket listing).
  static func jsonLines(_ sockets: [SocketAffinity]) throws {
    try JSONLines.document(sockets, write: writeStandardOutput)
  }

  static func jsonLines(_ entries: [ReceiveRates.Entry]) throws {
    try JSONLines.document(entries, write: writeStandardOutput)
  }

  /// Bytes to stdout after whatever print() buffered. A reader that went
  /// away (`| head`, where SIGPIPE is ignored) ends the output quietly, as
  /// for print(): every later write fails the same way.
  static func writeStandardOutput(_ bytes: [UInt8]) throws {
    fflush(nil)  // every stream: stdout is a shared global to Swift 6
    do {
      try FileDescriptor.standardOutput.writeAll(bytes)
    } catch Errno.brokenPipe {
      return
    } catch let errno as Errno {
      throw SockaffError(.other, errno: errno, operation: "write to standard output")
    }
  }

  static func standardError(_ line: String, newline: Bool = true) {
    _ = try? FileDescriptor.standardError.writeAll((newline ? line + "\n" : line).utf8)
  }

  /// Reports `error`, named by the command that failed ("sockaff list:
  /// ..."), and exits with its status. With --json, stdout also gets a
  /// complete error object (never a half-written answer).
  static func fail(_ error: SockaffError, json: Bool, command: String) -> ExitCode {
    standardError("sockaff \(command): \(error)")
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

extension ParsableCommand {
  /// Runs a command body, turning a SockaffError into its line, named by
  /// this command, and its exit status.
  func reporting(json: Bool = false, _ body: () throws -> Void) throws {
    do {
      try body()
    } catch let error as SockaffError {
      throw Output.fail(error, json: json, command: Self.configuration.commandName ?? "sockaff")
    }
  }
}
