import ArgumentParser
import Foundation
import SocketAffinity

/// Printing for every command: JSON documents on stdout, one-line errors on
/// stderr with the error's own exit status.
enum Output {
  static func json(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
  }

  static func standardError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
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
