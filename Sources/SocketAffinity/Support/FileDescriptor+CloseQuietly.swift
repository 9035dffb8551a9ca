import SystemPackage

extension FileDescriptor {
  /// Closes where a failure to close has nothing left to tell (teardown,
  /// a read-only descriptor).
  func closeQuietly() { try? close() }
}
