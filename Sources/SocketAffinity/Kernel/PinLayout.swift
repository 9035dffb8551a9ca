import Glibc

/// The pinned tracer's table of pins in bpffs: what `trace` pins, in what
/// order, and the one teardown (`removeAll`) that detach, the cleanup of
/// stale pins, a failed attach, the end of a foreground session and the
/// Debian package's postrm (through `sockaff detach`) all use. The ingress
/// link is pinned last and detached first, so "ingress link pinned and
/// attached" means fully attached.
public struct PinLayout: Sendable, Equatable {
  public let directory: String

  public init(directory: String = Mounts.bpffsMountPoint + "/sockaff") {
    self.directory = directory
  }

  public var ingressLink: String { directory + "/ingress_link" }
  public var consumerLink: String { directory + "/consumer_link" }
  public var releaseLink: String { directory + "/release_link" }
  /// The TCP_CLOSE slot return (`tp_btf/inet_sock_set_state`), where the kernel has it.
  public var closedLink: String { directory + "/closed_link" }
  public var records: String { directory + "/records" }
  /// Read counters had a map of their own before ABI 5: only removed.
  var legacyReads: String { directory + "/reads" }
  public var counts: String { directory + "/counts" }
  public var clock: String { directory + "/clock" }
  /// Per-CPU shares of sockets received on more than one CPU (ABI 6).
  public var pool: String { directory + "/pool" }
  /// The NICs' steering when the tracer attached (`SteeringSnapshot`): a
  /// file, so in /run, named after the pin directory (bpffs holds only
  /// kernel objects).
  public var steeringSnapshot: String {
    "/run/sockaff/" + directory.split(separator: "/").joined(separator: "_") + ".steering.json"
  }

  /// The maps `trace` pins, by their name in the tracer's object, in the
  /// order it pins them (and `removeAll` unlinks them in reverse).
  var maps: [(object: String, path: String)] {
    [("sockaff_records", records), ("sockaff_counts", counts), ("sockaff_clock", clock), ("sockaff_pool", pool)]
  }

  /// The link pins in the order `trace` pins them: the programs that give
  /// pool slots back first, the ingress program last.
  func links(tracingReads: Bool, returningClosedSlots: Bool) -> [String] {
    [releaseLink] + (returningClosedSlots ? [closedLink] : []) + (tracingReads ? [consumerLink] : []) + [ingressLink]
  }

  /// The link pins in the order `removeAll` detaches them: `links` reversed.
  var linksInDetachOrder: [String] { [ingressLink, consumerLink, closedLink, releaseLink] }

  /// Every pin, in the order `removeAll` unlinks them (links first, the
  /// ingress link first of all).
  var all: [String] { linksInDetachOrder + maps.reversed().map(\.path) + [legacyReads] }

  /// Whether any pin of the table exists.
  var anyPresent: Bool { all.contains { access($0, F_OK) == 0 } }

  /// What `removeAll` did.
  public struct Removal: Sendable, Equatable {
    /// A pinned link was found and detached.
    public let detachedLink: Bool
    /// Pins removed from bpffs.
    public let removedPins: Int
  }

  /// Detaches the links behind the link pins (the ingress program first,
  /// the pool's release program last, so no slot is taken unreturned),
  /// then unlinks every pin and the directory. Safe to repeat, and safe to
  /// kill at any step: what a killed run leaves is either still fully
  /// attached (nothing done yet) or has no attached ingress link behind
  /// its pin, which `Tracer` takes for stale pins and removes here again.
  /// `SOCKAFF_TEST_KILL_DETACH_AT=N` kills the process before its Nth step
  /// (each detach and each unlink of a pin present), so tests reproduce
  /// every partial state.
  func removeAll() throws(SockaffError) -> Removal {
    var step = 0
    func beforeStep() {
      step += 1
      if Self.killAtStep == step { kill(getpid(), SIGKILL) }
    }
    var detached = false
    for path in linksInDetachOrder {
      guard let link = try PinnedLink.open(path) else { continue }
      beforeStep()
      try link.detach()
      detached = true
    }
    var removed = 0
    for path in all where access(path, F_OK) == 0 {
      beforeStep()
      if try PinnedObject.unpin(path) { removed += 1 }
    }
    rmdir(directory)
    unlink(steeringSnapshot)
    return Removal(detachedLink: detached, removedPins: removed)
  }

  private static let killAtStep: Int? = getenv("SOCKAFF_TEST_KILL_DETACH_AT").flatMap { Int(String(cString: $0)) }
}
