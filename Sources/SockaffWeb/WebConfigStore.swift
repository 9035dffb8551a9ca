import Glibc
import Logging

/// The web config as serve uses it: loaded at start, then checked again on
/// every connection and request, as the exporter toolkit re-reads its file,
/// so that a rotated certificate or a changed password takes effect without
/// a restart. The check is a stat(2) of the config and of every file it
/// names (inode, size, times); only a change reads and parses again.
///
/// A change that does not load (a bad edit, a certificate half-written)
/// fails closed, as the toolkit does: until the files load again, TLS
/// handshakes are refused and plain requests are answered 500; the reason
/// is logged once per change. Whether serve speaks TLS is fixed at start
/// (the listener's clients were told one scheme): a change that would add
/// or remove TLS is such a failure too. Touched on the event loop only.
public final class WebConfigStore: @unchecked Sendable {
  public let path: String
  /// Whether the listener speaks TLS, from the config loaded at start.
  public let speaksTLS: Bool
  private let log: Logger
  private var config: WebConfig?
  /// The files the last config that loaded names: watched, with the
  /// config itself, also while none loads.
  private var files: [String]
  /// What the files were when last read (loaded or not).
  private var stamps: [FileStamp]

  /// Loads `path`: a file that does not load is an error, at start.
  public init(path: String, log: Logger) throws(WebConfigError) {
    let stamps = Self.stamps(of: [path])
    let config = try WebConfig.load(path: path)
    (self.path, self.log, self.config, self.speaksTLS) = (path, log, config, config.tls != nil)
    files = config.files
    // Stamped before the read: a change during it is read again next time.
    self.stamps = stamps + Self.stamps(of: config.files)
  }

  /// The config now, read again if any of its files changed; nil while
  /// they do not load.
  public func current() -> WebConfig? {
    guard Self.stamps(of: [path] + files) != stamps else { return config }
    let before = Self.stamps(of: [path])
    do {
      let loaded = try WebConfig.load(path: path)
      guard (loaded.tls != nil) == speaksTLS else {
        throw WebConfigError(
          line: nil, key: "tls_server_config",
          problem: speaksTLS
            ? "removed, but this server speaks TLS: restart sockaff serve to serve plain HTTP"
            : "added, but this server speaks plain HTTP: restart sockaff serve to serve TLS")
      }
      config = loaded
      stamps = before + Self.stamps(of: loaded.files)
      files = loaded.files
      log.info("web config read again", metadata: ["file": "\(path)"])
    } catch {
      // Remember what failed, so that the next request does not read (and
      // log) the same broken files again.
      config = nil
      stamps = before + Self.stamps(of: files)
      log.error(
        "web config unusable: \(error); refusing requests until it loads again",
        metadata: ["file": "\(path)"])
    }
    return config
  }

  /// What identifies a file's content without reading it; a file that
  /// cannot be stat'ed has its errno instead.
  struct FileStamp: Equatable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int64 = 0
    var modified = timespec()
    var changed = timespec()
    var errno: Int32 = 0

    static func == (a: FileStamp, b: FileStamp) -> Bool {
      (a.device, a.inode, a.size, a.errno) == (b.device, b.inode, b.size, b.errno)
        && (a.modified.tv_sec, a.modified.tv_nsec, a.changed.tv_sec, a.changed.tv_nsec)
          == (b.modified.tv_sec, b.modified.tv_nsec, b.changed.tv_sec, b.changed.tv_nsec)
    }
  }

  static func stamps(of paths: [String]) -> [FileStamp] {
    paths.map { path in
      var info = stat()
      guard stat(path, &info) == 0 else { return FileStamp(errno: Glibc.errno) }
      return FileStamp(
        device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size), modified: info.st_mtim,
        changed: info.st_ctim)
    }
  }
}
