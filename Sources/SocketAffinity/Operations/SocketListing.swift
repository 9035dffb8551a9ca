import Glibc
import Synchronization

/// Every traced socket of one process, or of the whole host: `sockaff list`.
///
/// Walks /proc/P/fd for socket fds and duplicates each through pidfd_getfd,
/// so a socket shared by several processes (fork, SCM_RIGHTS) is listed
/// under each holder, and sockets in other network namespaces are included,
/// with addresses as their own namespace sees them. Sockets with no traced
/// packet, and sockets that are not TCP/UDP over IP, are left out.
public struct SocketListing: Sendable {
  public let pins: PinLayout
  public let topology: Topology

  public init(pins: PinLayout = PinLayout(), topology: Topology = .live()) {
    self.pins = pins
    self.topology = topology
  }

  /// The sockets, and the processes a host-wide listing had to skip because
  /// reading them was not permitted (the caller lacks CAP_SYS_PTRACE over
  /// them): a listing that silently left them out would look complete.
  public struct Result: Sendable {
    public let sockets: [SocketAffinity]
    public let notPermitted: [Int32]
    /// `.kernel` only: TCP and UDP sockets for which the kernel keeps no
    /// receive CPU (SO_INCOMING_CPU -1: a TCP listener, an unconnected UDP
    /// socket, nothing received yet), left out of `sockets`.
    public var withoutReceiveCPU = 0
    /// Where the answers came from (`.auto` resolved).
    public var source = Source.traced
    /// `.kernel` only: how the census read the sockets.
    public var censusReader: CensusReader?
    /// Why a census read sockets one by one, where it did.
    public var censusNote: String? {
      switch censusReader {
      case nil, .iterator: return nil
      case .procfs where SocketListing.perSocketCensus: return "SOCKAFF_CENSUS=per-socket"
      case .procfs, .mixed:
        let lost = KernelSocketTable.unavailable
        return lost.isEmpty ? "a network namespace could not be read in one pass" : lost.joined(separator: "; ")
      }
    }
  }

  /// Where a listing's answers come from.
  public enum Source: String, Sendable, CaseIterable {
    /// The tracer's records: every socket that received a traced packet.
    case traced
    /// The kernel's own fields of every TCP and UDP socket, no program on
    /// the packet path (a census): SO_INCOMING_CPU (the latest packet's
    /// CPU) and SO_INCOMING_NAPI_ID (its NAPI, hence interface and queue
    /// where the netdev family names them).
    case kernel
    /// The tracer's records where it is attached, else the census: for a
    /// host whose kernel refuses the tracer, or that allows none.
    case auto
  }

  /// How a census read the kernel's fields.
  public enum CensusReader: String, Sendable {
    /// One pass per protocol and namespace (iter/tcp, iter/udp).
    case iterator
    /// Part in one pass, part socket by socket (an iterator refused, or a
    /// namespace that could not be entered).
    case mixed
    /// Socket by socket: each duplicated through pidfd_getfd, its options read.
    case procfs
  }

  /// Processes that exited meanwhile are skipped; with `pid`, any failure
  /// to read the process is an error.
  public func list(pid: Int32? = nil) throws(SockaffError) -> [SocketAffinity] {
    try listReportingSkipped(pid: pid).sockets
  }

  /// `progress(done, total)` is called as slices of sockets are done (from
  /// any thread, one call at a time), for a caller that shows progress.
  /// `reader` and `steering`: the pins and interfaces already read for this
  /// scrape, else read here.
  public func listReportingSkipped(
    pid: Int32? = nil, source: Source = .traced, reading reader: PinnedMaps? = nil,
    steering: SteeringInspection? = nil, progress: (@Sendable (Int, Int) -> Void)? = nil
  ) throws(SockaffError) -> Result {
    var maps: PinnedMaps?
    var used = Source.kernel
    if source != .kernel {
      do {
        let opened: PinnedMaps
        if let reader { opened = reader } else { opened = try PinnedMaps(pins: pins) }
        try opened.requireAttached()
        (maps, used) = (opened, .traced)
      } catch  where source == .auto && error.kind == .notAttached {
        // No tracer: the census answers instead.
      }
    }
    if let pid {
      guard pid > 0, access("/proc/\(pid)", F_OK) == 0 else {
        throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "list pid \(pid)")
      }
    }
    // 1. Per process (cheap, in order): its fd numbers and a pidfd.
    var notPermitted: [Int32] = []
    var found: [SocketHolder] = []
    // A census's namespaces, each named by one of its processes.
    var namespaces: [UInt64: Int32] = [:]
    let processes = pid.map { [$0] } ?? ProcFS.processIDs()
    for process in processes {
      do {
        let fds = try ProcFS.fileDescriptors(pid: process)
        guard !fds.isEmpty else { continue }
        found.append(SocketHolder(handle: try ProcessHandle(pid: process), fds: fds))
        if maps == nil, let namespace = ProcFS.networkNamespace(pid: process), namespaces[namespace] == nil {
          namespaces[namespace] = process
        }
      } catch {
        if pid != nil { throw error }
        if error.kind == .notPermitted { notPermitted.append(process) }
        continue  // exited meanwhile, or not ours to read
      }
    }

    // 2. The fds (which are sockets: /proc's links) and the sockets (about
    // ten syscalls each): in slices, on every CPU.
    let holders = found
    let slices = holders.indices.flatMap { index in
      stride(from: 0, to: holders[index].fds.count, by: Self.sliceSize).map { (holder: index, start: $0) }
    }
    let done = Mutex(0)
    let table = maps == nil && !Self.perSocketCensus ? KernelSocketTable.read(namespaces: namespaces) : nil
    let work = ListingWork(
      maps: maps, table: table, inspection: SocketInspection(topology: topology, steering: steering),
      interfaceNames: SocketInspection.InterfaceNames(),
      hostWide: pid == nil)
    let outcomes = concurrentMap(slices.count) { index in
      let slice = slices[index]
      let holder = holders[slice.holder]
      let outcome = work.list(holder.fds[slice.start..<min(slice.start + Self.sliceSize, holder.fds.count)], of: holder)
      if let progress {
        done.withLock { count in
          count += 1
          progress(count, slices.count)
        }
      }
      return outcome
    }

    // 3. In process and fd order, as if read one by one.
    var answers: [SocketAffinity] = []
    var withoutReceiveCPU = 0
    for (index, outcome) in outcomes.enumerated() {
      if let error = outcome.error { throw error }
      answers += outcome.sockets
      withoutReceiveCPU += outcome.withoutReceiveCPU
      let process = holders[slices[index].holder].handle.pid
      if outcome.notPermitted && notPermitted.last != process { notPermitted.append(process) }
    }
    var result = Result(sockets: answers, notPermitted: notPermitted)
    result.withoutReceiveCPU = withoutReceiveCPU
    result.source = used
    if maps == nil {
      let whole = table.map { table in namespaces.keys.allSatisfy { table.covers(namespace: $0) } } ?? false
      result.censusReader = table == nil ? .procfs : whole ? .iterator : .mixed
    }
    return result
  }

  /// `SOCKAFF_CENSUS=per-socket`: a census reads every socket on its own
  /// even where the kernel runs the one-pass iterators (the tests and the
  /// bench compare the two readers on the same sockets).
  static let perSocketCensus: Bool = getenv("SOCKAFF_CENSUS").map { String(cString: $0) == "per-socket" } ?? false

  /// Sockets per work item: small enough to spread one big process over
  /// every CPU, large enough that scheduling costs nothing.
  static let sliceSize = 256
}
