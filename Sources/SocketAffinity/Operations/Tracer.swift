import CLibbpf
import CSockaffABI
import CSockaffShims
import Glibc
import SystemPackage

/// Attaches, detaches and inspects sockaff's receive-path tracer.
///
/// The lifecycle, top to bottom (`attach`):
/// lock → mount bpffs if needed → find the cgroup v2 root → load the embedded
/// object → calibrate the clock → pin the maps → attach the ingress program to
/// the root cgroup through a link (multi-attach: coexists with systemd's or a
/// CNI's programs) → pin the link last. Any failure unwinds every step taken,
/// so no half-attached state is left.
public struct Tracer: Sendable {
  public let pins: PinLayout
  /// Also trace where sockets are read (tp_btf/sock_recv_length), for
  /// locality, when the kernel has that tracepoint (6.3+).
  public let locality: Bool
  /// ... counting one read in SOCKAFF_READ_SAMPLE, chosen at random, as that
  /// many (`sockaff_sampled`): cheaper per read, the counts estimated.
  public let sampledReads: Bool
  /// SOCKAFF_READ_SAMPLE: with `sampledReads`, one read in this many is counted.
  public static let readSample = Int(SOCKAFF_READ_SAMPLE)
  public let topology: Topology
  /// Pool slots: how many sockets at once can have every CPU's share
  /// counted apart once a second CPU receives them (PoolSize).
  public let poolSlots: Int

  public init(
    pins: PinLayout = PinLayout(), locality: Bool = true, sampledReads: Bool = false, topology: Topology = .live(),
    poolSlots: Int = PoolSize.defaultSlots(possibleCPUs: PoolSize.possibleCPUs)
  ) {
    self.pins = pins
    self.locality = locality
    self.sampledReads = sampledReads
    self.topology = topology
    self.poolSlots = poolSlots
  }

  public enum AttachOutcome: Sendable, Equatable {
    case attached
    case alreadyAttached
  }

  /// Pinned mode: attaches and returns; tracing continues with no process
  /// running until `detach`. Idempotent: a second call attaches nothing.
  public func attach() throws(SockaffError) -> AttachOutcome {
    try Self.withLock { () throws(SockaffError) -> AttachOutcome in
      try Mounts.ensureBPFFS()
      let cgroup = try Mounts.requireCgroup2Root()
      if try AttachedPrograms.pinnedIngressLinkIsAttached(pins: pins) {
        // Attached by this build, or by another one across an upgrade:
        // "already attached" only if this build can read what it records.
        // An ingress pin whose link is detached (a killed `detach`) is not
        // attached: its pins are stale, removed below.
        if let records = try PinnedMap.open(pins.records) {
          try PinnedMaps.checkLayout(of: records.descriptor, pins: pins)
        }
        return .alreadyAttached
      }
      try removeStaleMapPins(cgroup: cgroup)
      let session = try session(cgroup: cgroup)
      try session.pinLinks()
      // The pins keep the link and maps alive once the session closes its fds.
      session.release()
      saveSteeringSnapshot()
      return .attached
    }
  }

  /// Foreground mode: attaches with the link held by this process only (the
  /// kernel detaches it if the process dies, even by SIGKILL); the maps are
  /// pinned so `query` works meanwhile. Close the session to detach.
  public func attachForeground() throws(SockaffError) -> TracingSession {
    try Self.withLock { () throws(SockaffError) -> TracingSession in
      try Mounts.ensureBPFFS()
      let cgroup = try Mounts.requireCgroup2Root()
      if try AttachedPrograms.pinnedIngressLinkIsAttached(pins: pins) {
        throw SockaffError(
          .conflict, operation: "trace --foreground",
          hint: "already attached in pinned mode; run 'sockaff detach' first")
      }
      try removeStaleMapPins(cgroup: cgroup)
      let session = try session(cgroup: cgroup)
      saveSteeringSnapshot()
      return session
    }
  }

  public typealias DetachOutcome = PinLayout.Removal

  /// Detaches the pinned link and removes every pin. Safe to repeat.
  public func detach() throws(SockaffError) -> DetachOutcome {
    // The kernel lets whoever can open the link pin detach it; the pins are
    // root's (0600), but a root-uid process stripped of capabilities (a
    // container's root with bpffs mounted in) must not detach the host's
    // tracer either: ask for what attaching and BPF_PROG_DETACH ask for.
    guard sockaff_has_effective_capability(CAP_NET_ADMIN) == 1 else {
      throw SockaffError(.notPermitted, errno: .notPermitted, operation: "detach", hint: "needs CAP_NET_ADMIN")
    }
    return try Self.withLock { () throws(SockaffError) -> DetachOutcome in
      let mounts = try Mounts.current()
      guard Mounts.isBPFFSMounted(in: mounts) else {
        return DetachOutcome(detachedLink: false, removedPins: 0)
      }
      // The link pin first: pinned mode (the usual case) then needs no
      // CAP_SYS_ADMIN, which identifying attached programs by id does.
      if try PinnedLink.open(pins.ingressLink) == nil,
        let cgroup = Mounts.cgroup2Root(in: mounts),
        try !AttachedPrograms.query(cgroup: cgroup).isEmpty
      {
        throw SockaffError(
          .conflict, operation: "detach",
          hint: "a 'sockaff trace --foreground' is running; stop it (Ctrl-C or SIGTERM) to detach")
      }
      return try pins.removeAll()
    }
  }

  /// Pins with no attached ingress link behind them are left by a
  /// foreground session that died (SIGKILL), or by a `trace` or `detach`
  /// killed halfway through pinning or unpinning: remove them, unless a
  /// foreground session is still running. Any pin counts, not one marker: a
  /// kill inside `PinLayout.removeAll` can leave any subset of them.
  private func removeStaleMapPins(cgroup: String) throws(SockaffError) {
    guard pins.anyPresent else { return }
    if try !AttachedPrograms.query(cgroup: cgroup).isEmpty {
      throw SockaffError(
        .conflict, operation: "trace",
        hint: "a 'sockaff trace --foreground' is already running; stop it first")
    }
    _ = try pins.removeAll()
  }

  /// The kernel objects of one attachment, as this tracer configures them.
  /// What the NICs' steering is as the tracer attaches, for `status` and
  /// the metrics to compare with later. Without it (no writable /run)
  /// tracing works the same, and no change can be reported.
  private func saveSteeringSnapshot() {
    try? SteeringSnapshot.now(InterfaceSteering.all(topology: topology)).save(pins.steeringSnapshot)
  }

  private func session(cgroup: String) throws(SockaffError) -> TracingSession {
    let topology = topology
    return try TracingSession(
      pins: pins, locality: locality, sampledReads: sampledReads, poolSlots: poolSlots,
      nodeOfCPU: { topology.node(ofCPU: $0) }, cgroup: cgroup)
  }

  /// Serializes attach/detach between concurrent sockaff processes, so two
  /// `trace` calls cannot both find "not attached" and attach twice.
  static func withLock<T>(_ body: () throws(SockaffError) -> T) throws(SockaffError) -> T {
    // Never a world-writable directory such as /tmp: there any user could
    // hold the lock (or plant a link) and stall root's trace and detach.
    let path = "/run/sockaff.lock"
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fd >= 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      throw SockaffError.fromErrno(errno, operation: "open lock \(path)", hint: "needs root")
    }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 && Glibc.errno == EINTR {}
    return try body()
  }
}
