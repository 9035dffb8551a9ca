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
    let process = Process()
    process.executableURL = URL(filePath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    // stderr goes to a file, so a chatty child cannot block on a second full pipe.
    let errorPath = FileManager.default.temporaryDirectory
      .appending(path: "sockaff-test-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errorPath.path(percentEncoded: false), contents: nil)
    defer { try? FileManager.default.removeItem(at: errorPath) }
    let errorHandle = try FileHandle(forWritingTo: errorPath)
    process.standardOutput = out
    process.standardError = errorHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try errorHandle.close()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let errorText = (try? String(contentsOf: errorPath, encoding: .utf8)) ?? ""
    return CommandResult(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: errorText)
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
