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
  public let topology: Topology
  /// Pool slots: how many sockets at once can have every CPU's share
  /// counted apart once a second CPU receives them (PoolSize).
  public let poolSlots: Int

  public init(
    pins: PinLayout = PinLayout(), locality: Bool = true, topology: Topology = .live(),
    poolSlots: Int = PoolSize.defaultSlots(possibleCPUs: PoolSize.possibleCPUs)
  ) {
    self.pins = pins
    self.locality = locality
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
      if try BPF.openPinned(pins.ingressLink).map({ $0.closeQuietly() }) != nil {
        // Attached by this build, or by another one across an upgrade:
        // "already attached" only if this build can read what it records.
        if let records = try BPF.openPinned(pins.records) {
          defer { records.closeQuietly() }
          try PinnedMaps.checkLayout(of: records, pins: pins).closeQuietly()
        }
        return .alreadyAttached
      }
      try removeStaleMapPins(cgroup: cgroup)
      let session = try TracingSession(tracer: self, cgroup: cgroup)
      try session.pinLinks()
      // The pins keep the link and maps alive once the session closes its fds.
      session.release()
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
      if try BPF.openPinned(pins.ingressLink).map({ $0.closeQuietly() }) != nil {
        throw SockaffError(
          .other, operation: "trace --foreground",
          hint: "already attached in pinned mode; run 'sockaff detach' first")
      }
      try removeStaleMapPins(cgroup: cgroup)
      return try TracingSession(tracer: self, cgroup: cgroup)
    }
  }

  public struct DetachOutcome: Sendable, Equatable {
    /// A pinned link was found and detached.
    public let detachedLink: Bool
    /// Pins removed from bpffs.
    public let removedPins: Int
  }

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
      if try BPF.openPinned(pins.ingressLink).map({ $0.closeQuietly() }) == nil,
        let cgroup = Mounts.cgroup2Root(in: mounts),
        try !AttachedPrograms.query(cgroup: cgroup).isEmpty
      {
        throw SockaffError(
          .other, operation: "detach",
          hint: "a 'sockaff trace --foreground' is running; stop it (Ctrl-C or SIGTERM) to detach")
      }
      return try unpinAll()
    }
  }

  /// Detaches the links behind the link pins (if any), then unlinks all pins.
  private func unpinAll() throws(SockaffError) -> DetachOutcome {
    var detached = false
    for path in pins.links {
      guard let link = try BPF.openPinned(path) else { continue }
      defer { link.closeQuietly() }
      // Tracing (raw tracepoint) links cannot be detached explicitly
      // (EOPNOTSUPP): they go when their last reference, the pin, goes below.
      if bpf_link_detach(link.rawValue) != 0 && Glibc.errno != EOPNOTSUPP {
        throw SockaffError.lastErrno(operation: "bpf_link_detach(\(path))")
      }
      detached = true
    }
    var removed = 0
    for path in pins.all {
      if unlink(path) == 0 {
        removed += 1
      } else if Glibc.errno != ENOENT {
        throw SockaffError.lastErrno(operation: "unlink \(path)")
      }
    }
    rmdir(pins.directory)
    return DetachOutcome(detachedLink: detached, removedPins: removed)
  }

  /// Map pins with no link pin are left by a foreground session that died
  /// (SIGKILL): remove them, unless a foreground session is still running.
  private func removeStaleMapPins(cgroup: String) throws(SockaffError) {
    guard access(pins.records, F_OK) == 0 else { return }
    if try !AttachedPrograms.query(cgroup: cgroup).isEmpty {
      throw SockaffError(
        .other, operation: "trace",
        hint: "a 'sockaff trace --foreground' is already running; stop it first")
    }
    _ = try unpinAll()
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

/// A loaded and attached tracer whose kernel objects this process owns until
/// `close()` (foreground mode) or `release()` after pinning (pinned mode).
/// `close()` is the one teardown path: a failed attach, a failed pin, the
/// end of a foreground session and deinit all go through it.
public final class TracingSession: @unchecked Sendable {
  private let object: LoadedBPFObject
  /// In attach order (pool release, reads, ingress); detached in reverse,
  /// so the ingress program goes first and no pool slot is left unreturned.
  private var links: [BPFLink] = []
  /// False once pinned mode has handed the objects over to their pins.
  private var ownsPins = true
  private let pins: PinLayout
  public let cgroup: String
  public let clock: ClockReference
  /// Whether reads are traced too (locality); false where the kernel lacks
  /// the sock_recv_length tracepoint or the caller turned it off.
  public let tracesReads: Bool

  /// The maps readers open, by their name in the object, and their pins.
  private var mapPins: [(name: String, path: String)] {
    [
      ("sockaff_records", pins.records), ("sockaff_counts", pins.counts), ("sockaff_clock", pins.clock),
      ("sockaff_pool", pins.pool),
    ]
  }

  fileprivate init(tracer: Tracer, cgroup: String) throws(SockaffError) {
    try KernelFeatures.requireTracing()
    pins = tracer.pins
    self.cgroup = cgroup
    tracesReads = tracer.locality && KernelFeatures.hasSockRecvLengthTracepoint()
    var programs: Set = [
      LoadedBPFObject.ingressProgramName, LoadedBPFObject.probeProgramName, LoadedBPFObject.releaseProgramName,
    ]
    if tracesReads { programs.insert(LoadedBPFObject.consumerProgramName) }
    let object = try LoadedBPFObject(
      programs: programs, tracingReads: tracesReads, poolSlots: UInt32(clamping: tracer.poolSlots))
    self.object = object
    clock = try ClockReference.calibrate(
      probeFD: bpf_program__fd(object.program(LoadedBPFObject.probeProgramName)),
      clockMapFD: bpf_map__fd(object.map("sockaff_clock")))
    try Self.fillCPUNodes(mapFD: bpf_map__fd(object.map("sockaff_cpu_node")), topology: tracer.topology)
    try Self.fillFreeSlots(mapFD: bpf_map__fd(object.map("sockaff_pool_free")), slots: tracer.poolSlots)

    // Every stored property is set by now, so if this initializer throws,
    // Swift runs deinit, and deinit's close() removes what was made.
    if mkdir(pins.directory, 0o700) != 0 && Glibc.errno != EEXIST {
      throw SockaffError.lastErrno(operation: "mkdir \(pins.directory)")
    }
    for (name, path) in mapPins {
      if bpf_map__pin(object.map(name), path) != 0 {
        throw SockaffError.lastErrno(operation: "pin map \(name) at \(path)")
      }
      chmod(path, 0o600)
    }
    let cgroupFD = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard cgroupFD >= 0 else { throw SockaffError.lastErrno(operation: "open cgroup \(cgroup)") }
    defer { Glibc.close(cgroupFD) }
    // The release program first: every pool slot taken is given back. The
    // consumer next: once packets are recorded, reads are counted too.
    let release = object.program(LoadedBPFObject.releaseProgramName)
    links.append(
      try BPFLink(LoadedBPFObject.releaseProgramName) { bpf_program__attach_cgroup(release, cgroupFD) })
    if tracesReads {
      let consumer = object.program(LoadedBPFObject.consumerProgramName)
      links.append(try BPFLink(LoadedBPFObject.consumerProgramName) { bpf_program__attach(consumer) })
    }
    let ingress = object.program(LoadedBPFObject.ingressProgramName)
    links.append(
      try BPFLink(LoadedBPFObject.ingressProgramName) { bpf_program__attach_cgroup(ingress, cgroupFD) })
  }

  /// NUMA node of every possible CPU, for the consumer's same-node test.
  private static func fillCPUNodes(mapFD: Int32, topology: Topology) throws(SockaffError) {
    for cpu in 0..<max(libbpf_num_possible_cpus(), 0) {
      var key = UInt32(cpu)
      var node = UInt32(topology.node(ofCPU: Int(cpu)) ?? 0)
      if bpf_map_update_elem(mapFD, &key, &node, UInt64(BPF_ANY)) != 0 {
        throw SockaffError.lastErrno(operation: "fill sockaff_cpu_node for CPU \(cpu)")
      }
    }
  }

  /// Every pool slot free: the indexes pushed into the free queue.
  private static func fillFreeSlots(mapFD: Int32, slots: Int) throws(SockaffError) {
    for slot in 0..<slots {
      var value = UInt32(slot)
      if bpf_map_update_elem(mapFD, nil, &value, 0) != 0 {
        throw SockaffError.lastErrno(operation: "fill sockaff_pool_free with slot \(slot)")
      }
    }
  }

  /// The pin of each link, in `links` order.
  private var linkPins: [String] {
    [pins.releaseLink] + (tracesReads ? [pins.consumerLink] : []) + [pins.ingressLink]
  }

  /// Pins the links, the ingress link last: from now on the attachment
  /// outlives this process, and "ingress link pinned" means fully attached.
  /// A failure tears everything down.
  fileprivate func pinLinks() throws(SockaffError) {
    do {
      for (link, path) in zip(links, linkPins) { try link.pin(at: path) }
    } catch {
      close()
      throw error
    }
  }

  /// Drops this process's handles, leaving the pinned objects in place.
  fileprivate func release() {
    ownsPins = false
    for link in links { link.disconnect() }
  }

  /// Detaches and removes every pin this session made. Idempotent.
  public func close() {
    guard ownsPins else { return }
    // A pinned link stays attached while its pin exists: pins first.
    for path in pins.links { unlink(path) }
    for link in links.reversed() { link.close() }
    for (_, path) in mapPins.reversed() { unlink(path) }
    rmdir(pins.directory)
  }

  deinit { close() }
}

extension FileDescriptor {
  func closeQuietly() { try? close() }
}
