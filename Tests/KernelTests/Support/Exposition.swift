import Foundation
import Glibc
import XCTest

/// Prometheus expositions of `export` and `serve`, read back with the
/// reference parser (prometheus-client, Peers/prom.py), never by sockaff.
extension KernelTestCase {
  static var parser: String {
    Command.packageRoot.appending(path: "Tests/KernelTests/Peers/prom.py")
      .path(percentEncoded: false)
  }

  struct Exposition {
    let status: Int?
    let families: [String: String]
    let samples: [(name: String, labels: [String: String], value: Double)]

    func values(_ name: String, where labels: [String: String] = [:]) -> [Double] {
      samples.filter { sample in
        sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
      }.map(\.value)
    }
  }

  func parse(_ mode: String, _ target: String) throws -> Exposition {
    let result = try Command.run(["python3", Self.parser, mode, target])
    guard result.status == 0,
      let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    else { throw HarnessError("prom.py \(mode) \(target) failed (\(result.status)): \(result.stderr)") }
    let samples = (object["samples"] as? [[Any]] ?? []).map { sample in
      (
        name: sample[0] as? String ?? "", labels: sample[1] as? [String: String] ?? [:],
        value: (sample[2] as? NSNumber)?.doubleValue ?? .nan
      )
    }
    return Exposition(
      status: object["status"] as? Int, families: object["families"] as? [String: String] ?? [:], samples: samples)
  }

  /// `sockaff export ARGUMENTS`, read back with the reference parser.
  func exported(_ arguments: String..., environment: [String] = []) throws -> Exposition {
    let export = try Command.run(["/usr/bin/env"] + environment + [Command.sockaffPath, "export"] + arguments)
    XCTAssertEqual(export.status, 0, export.stderr)
    let file = FileManager.default.temporaryDirectory.appending(path: "sockaff-export-\(getpid()).prom")
      .path(percentEncoded: false)
    defer { unlink(file) }
    try export.stdout.write(toFile: file, atomically: true, encoding: .utf8)
    return try parse("file", file)
  }
}

/// `sockaff serve --listen 127.0.0.1:0`, until stopped; `url` is what it
/// printed it serves.
final class MetricsServer {
  private let process: Child
  let url: String

  init(environment: [String] = [], arguments: [String] = []) throws {
    process = try Child(
      ["/usr/bin/env"] + environment + [Command.sockaffPath, "serve", "--listen", "127.0.0.1:0"] + arguments)
    var poller = pollfd(fd: process.output.fileDescriptor, events: Int16(POLLIN), revents: 0)
    guard poll(&poller, 1, 20_000) == 1 else { throw HarnessError("sockaff serve printed nothing") }
    let line = String(decoding: process.output.availableData, as: UTF8.self)
    guard let start = line.range(of: "https://") ?? line.range(of: "http://") else {
      throw HarnessError("sockaff serve said: \(line)")
    }
    url = String(line[start.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// The port it listens on.
  var port: Int { Int(url.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0 }

  func stop() {
    process.signal(SIGTERM)
    _ = try? process.wait()
  }
}
