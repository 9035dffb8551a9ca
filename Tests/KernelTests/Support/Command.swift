import Dispatch
import Foundation
import Glibc
import Subprocess
import SystemPackage

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

  /// Runs `arguments` (a name looked up in PATH, or a path) with stdin from
  /// /dev/null, to its exit, through swift-subprocess. It returns when the
  /// program exits, with what it wrote until then, even if a daemon it
  /// started still holds its stdout (`tmux new-session -d`: see
  /// `CommandTests`). The tests are synchronous, so the call waits here for
  /// the task that runs it.
  @discardableResult
  static func run(_ arguments: [String]) throws -> CommandResult {
    final class Outcome: @unchecked Sendable {
      // Written before `done` is signalled, read after the wait returns.
      var result: Result<CommandResult, any Error> = .failure(HarnessError("not run"))
    }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
      do {
        outcome.result = .success(try await runToExit(arguments))
      } catch {
        outcome.result = .failure(error)
      }
      done.signal()
    }
    done.wait()
    return try outcome.result.get()
  }

  private static func runToExit(_ arguments: [String]) async throws -> CommandResult {
    guard let program = arguments.first else { throw HarnessError("no program to run") }
    let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
    // Large enough for any listing a test makes (100k sockets of JSON).
    let limit = 256 << 20
    let result = try await Subprocess.run(
      executable, arguments: Arguments(Array(arguments.dropFirst())), input: .none,
      output: .string(limit: limit), error: .string(limit: limit))
    let status: Int32 =
      switch result.terminationStatus {
      case .exited(let code): code
      case .signaled(let signal): signal
      }
    return CommandResult(status: status, stdout: result.standardOutput, stderr: result.standardError)
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
