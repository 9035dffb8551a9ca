import Glibc
import SystemPackage

/// Reads a whole (small, procfs or sysfs) text file.
func readTextFile(_ path: String) throws(SockaffError) -> String {
  do {
    let fd = try FileDescriptor.open(path, .readOnly, options: .closeOnExec)
    return try fd.closeAfter {
      var data: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 16384)
      while true {
        let count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
        if count == 0 { break }
        data += chunk[..<count]
      }
      return String(decoding: data, as: UTF8.self)
    }
  } catch let errno as Errno {
    throw SockaffError.fromErrno(errno, operation: "read \(path)")
  } catch {
    throw SockaffError(.other, operation: "read \(path): \(error)")
  }
}

/// Writes `bytes` to `path` (0600, its directory made 0700) whole or not at
/// all: a temporary file beside it, synced, then renamed over it.
func writeWholeFile(_ path: String, _ bytes: [UInt8]) throws(SockaffError) {
  let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
  if !directory.isEmpty && mkdir(directory, 0o700) != 0 && errno != EEXIST {
    throw .lastErrno(operation: "mkdir \(directory)")
  }
  let temporary = path + ".new"
  let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
  guard fd >= 0 else { throw .lastErrno(operation: "open \(temporary)") }
  let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
  let synced = fsync(fd) == 0
  close(fd)
  guard written == bytes.count, synced, rename(temporary, path) == 0 else {
    let failure = SockaffError.lastErrno(operation: "write \(path)")
    unlink(temporary)
    throw failure
  }
}

/// A NUL-terminated C string held in a Swift array.
func cString(_ chars: [CChar]) -> String {
  String(decoding: chars.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
}

/// An integer file of sysfs or procfs ("4096\n"); nil if absent or not one.
func readInteger(_ path: String) -> Int? {
  (try? readTextFile(path)).flatMap { Int($0.trimmingWhitespace()) }
}

/// The names in a directory, "." and ".." left out, unordered.
func readDirectoryNames(_ path: String) throws(SockaffError) -> [String] {
  guard let dir = opendir(path) else { throw SockaffError.lastErrno(operation: "read \(path)") }
  defer { closedir(dir) }
  var names: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) {
      String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    if name != "." && name != ".." { names.append(name) }
  }
  return names
}

/// `readDirectoryNames`, empty when the directory cannot be read.
func directoryEntries(_ path: String) -> [String] { (try? readDirectoryNames(path)) ?? [] }

/// Surrounding spaces, tabs and line ends removed: what a sysfs or procfs
/// file holds, without its newline. Here, in support, because every layer
/// reads such files.
extension StringProtocol {
  func trimmingWhitespace() -> String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
    guard let first = firstIndex(where: { !isSpace($0) }),
      let last = lastIndex(where: { !isSpace($0) })
    else { return "" }
    return String(self[first...last])
  }
}
