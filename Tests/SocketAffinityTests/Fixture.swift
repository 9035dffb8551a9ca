import Foundation

enum Fixture {
  static let directory = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "Fixtures")

  static func path(_ name: String) -> String {
    directory.appending(path: name).path(percentEncoded: false)
  }

  static func text(_ name: String) throws -> String {
    try String(contentsOfFile: path(name), encoding: .utf8)
  }
}
