import ArgumentParser

/// `--top`, shared by `export` and `serve`: per-socket series only for the
/// busiest sockets, so a host's metric cardinality stays bounded.
struct TopOption: ParsableArguments {
  @Option(help: "Per-socket series for at most this many sockets (the busiest).")
  var top = 100

  func validate() throws {
    guard (0...100_000).contains(top) else { throw ValidationError("--top takes 0 to 100000") }
  }
}
