import Foundation
import Glibc

/// Runs a program to completion and captures what it printed.
struct CommandResult {
  let status: Int32
  let stdout: String
  let stderr: String
}

enum Command {
  static let packageRoot = URL(filePath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// The sockaff binary built next to this test bundle.
  static let sockaffPath: String = {
    let beside = URL(filePath: CommandLine.arguments[0]).deletingLastPathComponent()
      .appending(path: "sockaff").path(percentEncoded: false)
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    return Bundle.main.bundleURL.appending(path: "sockaff").path(percentEncoded: false)
  }()

  @discardableResult
  static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { throw HarnessError("pipe: \(String(cString: strerror(errno)))") }
    // stderr goes to a file, so a chatty child cannot block on a second full pipe.
    let errorPath = FileManager.default.temporaryDirectory
      .appending(path: "sockaff-test-stderr-\(UUID().uuidString)").path(percentEncoded: false)
    let errorFD = open(errorPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    defer { unlink(errorPath) }
    guard errorFD >= 0 else {
      close(ends[0])
      close(ends[1])
      throw HarnessError("open \(errorPath): \(String(cString: strerror(errno)))")
    }
    let pid: pid_t
    do {
      pid = try Spawn.start(arguments, environment: environment, stdout: ends[1], stderr: errorFD)
    } catch {
      close(ends[0])
      close(ends[1])
      close(errorFD)
      throw error
    }
    close(ends[1])
    close(errorFD)
    let reader = FileHandle(fileDescriptor: ends[0], closeOnDealloc: true)
    let outData = reader.readDataToEndOfFile()
    let status = try Spawn.wait(pid)
    let errorText = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    return CommandResult(status: status, stdout: String(decoding: outData, as: UTF8.self), stderr: errorText)
  }

  @discardableResult
  static func sockaff(_ arguments: String...) throws -> CommandResult {
    try run([sockaffPath] + arguments)
  }

  /// Runs a command that must succeed; its stderr goes into the failure.
  @discardableResult
  static func must(_ arguments: [String]) throws -> String {
    let result = try run(arguments)
    guard result.status == 0 else {
      throw HarnessError("\(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
    }
    return result.stdout
  }
}

struct HarnessError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
