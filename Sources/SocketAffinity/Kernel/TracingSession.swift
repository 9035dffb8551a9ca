import CLibbpf
import CSockaffABI
import CSockaffShims
import Glibc
import SystemPackage

/// A loaded and attached tracer whose kernel objects this process owns until
/// `close()` (foreground mode) or `release()` after pinning (pinned mode).
/// `close()` is the session's teardown: a failed attach, a failed pin, the
/// end of a foreground session and deinit all go through it, and it ends in
/// the pin table's one teardown (`PinLayout.removeAll`).
public final class TracingSession: @unchecked Sendable {
  private let object: LoadedBPFObject
  /// In attach order (pool release, TCP close, reads, ingress); detached in reverse,
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
  /// Reads counted one in SOCKAFF_READ_SAMPLE (`sockaff_sampled`), not each.
  public let samplesReads: Bool
  /// Whether TCP sockets that reach TCP_CLOSE give their pool slot back
  /// (tp_btf/inet_sock_set_state): those freed without close() otherwise
  /// keep theirs until detach.
  public let returnsClosedSlots: Bool

  /// Made by `Tracer` only, under its lock, after stale pins are gone.
  /// `nodeOfCPU` is the topology's CPU → NUMA node map (the read tracer's
  /// same-node test), passed in so that this kernel-layer type needs no model.
  init(
    pins: PinLayout, locality: Bool, sampledReads: Bool = false, poolSlots: Int, nodeOfCPU: (Int) -> Int?,
    cgroup: String
  ) throws(SockaffError) {
    try KernelFeatures.requireTracing()
    self.pins = pins
    self.cgroup = cgroup
    tracesReads = locality && KernelFeatures.has(KernelFeatures.readTracepoint)
    samplesReads = tracesReads && sampledReads
    let consumerName =
      samplesReads ? LoadedBPFObject.sampledConsumerProgramName : LoadedBPFObject.consumerProgramName
    var programs: Set = [
      LoadedBPFObject.ingressProgramName, LoadedBPFObject.probeProgramName, LoadedBPFObject.releaseProgramName,
    ]
    if tracesReads { programs.insert(consumerName) }
    returnsClosedSlots = KernelFeatures.has(KernelFeatures.stateTracepoint)
    if returnsClosedSlots { programs.insert(LoadedBPFObject.closedProgramName) }
    let object = try LoadedBPFObject(
      programs: programs, tracingReads: tracesReads, poolSlots: UInt32(clamping: poolSlots))
    self.object = object
    clock = try ClockReference.calibrate(
      probeFD: bpf_program__fd(object.program(LoadedBPFObject.probeProgramName)),
      clockMapFD: bpf_map__fd(object.map("sockaff_clock")))
    try Self.fillCPUNodes(mapFD: bpf_map__fd(object.map("sockaff_cpu_node")), nodeOfCPU: nodeOfCPU)

    // Every stored property is set by now, so if this initializer throws,
    // Swift runs deinit, and deinit's close() removes what was made.
    if mkdir(pins.directory, 0o700) != 0 && Glibc.errno != EEXIST {
      throw SockaffError.lastErrno(operation: "mkdir \(pins.directory)")
    }
    for (name, path) in pins.maps {
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
    if returnsClosedSlots {
      let closed = object.program(LoadedBPFObject.closedProgramName)
      links.append(try BPFLink(LoadedBPFObject.closedProgramName) { bpf_program__attach(closed) })
    }
    if tracesReads {
      let consumer = object.program(consumerName)
      links.append(try BPFLink(consumerName) { bpf_program__attach(consumer) })
    }
    let ingress = object.program(LoadedBPFObject.ingressProgramName)
    links.append(
      try BPFLink(LoadedBPFObject.ingressProgramName) { bpf_program__attach_cgroup(ingress, cgroupFD) })
  }

  /// NUMA node of every possible CPU, for the consumer's same-node test.
  private static func fillCPUNodes(mapFD: Int32, nodeOfCPU: (Int) -> Int?) throws(SockaffError) {
    for cpu in 0..<max(libbpf_num_possible_cpus(), 0) {
      var key = UInt32(cpu)
      var node = UInt32(nodeOfCPU(Int(cpu)) ?? 0)
      if bpf_map_update_elem(mapFD, &key, &node, UInt64(BPF_ANY)) != 0 {
        throw SockaffError.lastErrno(operation: "fill sockaff_cpu_node for CPU \(cpu)")
      }
    }
  }

  /// Pins the links, the ingress link last: from now on the attachment
  /// outlives this process, and "ingress link pinned" means fully attached.
  /// A failure tears everything down.
  func pinLinks() throws(SockaffError) {
    do {
      for (link, path) in zip(links, pins.links(tracingReads: tracesReads, returningClosedSlots: returnsClosedSlots)) {
        try link.pin(at: path)
      }
    } catch {
      close()
      throw error
    }
  }

  /// Drops this process's handles, leaving the pinned objects in place.
  func release() {
    ownsPins = false
    for link in links { link.disconnect() }
  }

  /// Detaches and removes every pin this session made. Idempotent.
  public func close() {
    guard ownsPins else { return }
    // Its own links first, pinned or not, the ingress program first; then
    // the pins, through the table's one teardown.
    for link in links.reversed() { link.detach() }
    links = []
    _ = try? pins.removeAll()
  }

  deinit { close() }
}
