/// Where `sockaff trace` pins its objects in bpffs. The link is pinned last
/// and removed first, so "link pin present" means "fully attached".
public struct PinLayout: Sendable, Equatable {
  public let directory: String

  public init(directory: String = Mounts.bpffsMountPoint + "/sockaff") {
    self.directory = directory
  }

  public var ingressLink: String { directory + "/ingress_link" }
  public var consumerLink: String { directory + "/consumer_link" }
  public var releaseLink: String { directory + "/release_link" }
  public var records: String { directory + "/records" }
  /// Read counters had a map of their own before ABI 5: only removed.
  var legacyReads: String { directory + "/reads" }
  public var counts: String { directory + "/counts" }
  public var clock: String { directory + "/clock" }
  /// Per-CPU shares of sockets received on more than one CPU (ABI 6).
  public var pool: String { directory + "/pool" }

  /// Every pin, in the order `detach` removes them (link first).
  var all: [String] { [ingressLink, consumerLink, releaseLink, records, legacyReads, counts, clock, pool] }

  /// The link pins, in the order `detach` detaches them: the ingress program
  /// first, the pool's release program last, so no slot is taken unreturned.
  var links: [String] { [ingressLink, consumerLink, releaseLink] }
}
