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
  }

  /// Processes that exited meanwhile are skipped; with `pid`, any failure
  /// to read the process is an error.
  public func list(pid: Int32? = nil) throws(SockaffError) -> [SocketAffinity] {
    try listReportingSkipped(pid: pid).sockets
  }

  /// `progress(done, total)` is called as slices of sockets are done (from
  /// any thread, one call at a time), for a caller that shows progress.
  public func listReportingSkipped(pid: Int32? = nil, progress: (@Sendable (Int, Int) -> Void)? = nil)
    throws(SockaffError)
    -> Result
  {
    let maps = try PinnedMaps(pins: pins)
    try maps.requireAttached()
    if let pid {
      guard pid > 0, access("/proc/\(pid)", F_OK) == 0 else {
        throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "list pid \(pid)")
      }
    }
    // 1. Per process (cheap, in order): its fd numbers and a pidfd.
    var notPermitted: [Int32] = []
    var found: [SocketHolder] = []
    let processes = pid.map { [$0] } ?? ProcFS.processIDs()
    for process in processes {
      do {
        let fds = try ProcFS.fileDescriptors(pid: process)
        guard !fds.isEmpty else { continue }
        found.append(SocketHolder(handle: try ProcessHandle(pid: process), fds: fds))
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
    let work = ListingWork(
      maps: maps, inspection: SocketInspection(topology: topology), interfaceNames: SocketInspection.InterfaceNames(),
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
    for (index, outcome) in outcomes.enumerated() {
      if let error = outcome.error { throw error }
      answers += outcome.sockets
      let process = holders[slices[index].holder].handle.pid
      if outcome.notPermitted && notPermitted.last != process { notPermitted.append(process) }
    }
    return Result(sockets: answers, notPermitted: notPermitted)
  }

  /// Sockets per work item: small enough to spread one big process over
  /// every CPU, large enough that scheduling costs nothing.
  static let sliceSize = 256
}

/// A process with socket fds, and the pidfd that names it while it is read.
final class SocketHolder: @unchecked Sendable {
  let handle: ProcessHandle
  let fds: [Int32]
  /// Read once, by whichever thread first needs them.
  private let facts = Mutex<SocketInspection.ProcessFacts?>(nil)

  init(handle: consuming ProcessHandle, fds: [Int32]) {
    self.handle = handle
    self.fds = fds
  }

  func facts(_ inspection: SocketInspection) throws(SockaffError) -> SocketInspection.ProcessFacts {
    if let known = facts.withLock({ $0 }) { return known }
    let read = inspection.facts(pid: handle.pid)
    try handle.requireSameProcess()  // the facts are this process's
    facts.withLock { $0 = read }
    return read
  }
}

/// What one slice of a process's sockets gave.
struct SliceOutcome: Sendable {
  var sockets: [SocketAffinity] = []
  var error: SockaffError?
  var notPermitted = false
}

/// The per-socket half of a listing, shared by its threads (all read-only
/// or locked inside).
struct ListingWork: @unchecked Sendable {
  let maps: PinnedMaps
  let inspection: SocketInspection
  let interfaceNames: SocketInspection.InterfaceNames
  let hostWide: Bool

  func list(_ fds: ArraySlice<Int32>, of holder: SocketHolder) -> SliceOutcome {
    var outcome = SliceOutcome()
    // One open of /proc/P/fd per slice, not per process: a host-wide
    // listing must not hold an fd per process (RLIMIT_NOFILE).
    guard let directory = ProcFS.openFileDescriptorDirectory(pid: holder.handle.pid) else { return outcome }
    defer { try? directory.close() }
    for fd in fds {
      do {
        guard try ProcFS.isSocket(pid: holder.handle.pid, fd: fd, directory: directory) else { continue }
        let socket = try TargetSocket(process: holder.handle, fd: fd)
        guard let record = try maps.record(socketFD: socket.descriptor.rawValue) else { continue }
        guard let kind = try? inspection.kind(of: socket) else { continue }
        if let answer = try inspection.answer(
          socket: socket, kind: kind, record: record, clock: maps.clock, process: try holder.facts(inspection),
          interfaceNames: interfaceNames)
        {
          outcome.sockets.append(answer)
        }
      } catch {
        // The process or fd went away meanwhile: nothing to list.
        if [.noSuchProcess, .badFileDescriptor].contains(error.kind) { continue }
        if hostWide && error.kind == .notPermitted {
          outcome.notPermitted = true
          break
        }
        outcome.error = error
        break
      }
    }
    return outcome
  }
}

/// Per process: where its received packets are processed compared with
/// where its threads (or reads) are, for `list --mismatch`.
public struct ProcessMismatch: Sendable, Encodable {
  public let pid: Int32
  public let command: String?
  /// Share of the process's received packets per NUMA node.
  public let receiveNodeShares: [Int: Double]
  public let threadNodes: [Int]
  public let crossNUMASockets: Int
  public let sockets: Int

  enum CodingKeys: String, CodingKey {
    case pid, command, sockets
    case receiveNodeShares = "receive_node_shares"
    case threadNodes = "thread_nodes"
    case crossNUMASockets = "cross_numa_sockets"
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(pid, forKey: .pid)
    try c.encode(command, forKey: .command)
    // JSON object keys are strings; an [Int: Double] would encode as an array.
    try c.encode(
      Dictionary(uniqueKeysWithValues: receiveNodeShares.map { ("\($0.key)", $0.value) }), forKey: .receiveNodeShares)
    try c.encode(threadNodes, forKey: .threadNodes)
    try c.encode(crossNUMASockets, forKey: .crossNUMASockets)
    try c.encode(sockets, forKey: .sockets)
  }

  /// One line, e.g. "62% of nginx's (pid 812) received packets are processed
  /// on node 1; its threads ran on node 0".
  public var summary: String {
    let (node, share) = receiveNodeShares.max { $0.value < $1.value } ?? (-1, 0)
    let name = command.map { "\($0)'s (pid \(pid))" } ?? "pid \(pid)'s"
    let threads = threadNodes.map(String.init).joined(separator: ",")
    return
      "\(Int((share * 100).rounded()))% of \(name) received packets are processed on node \(node); its threads ran on node \(threads.isEmpty ? "-" : threads) (\(crossNUMASockets) of \(sockets) sockets cross-NUMA)"
  }

  public static func summarize(_ answers: [SocketAffinity]) -> [ProcessMismatch] {
    Dictionary(grouping: answers, by: \.pid).compactMap { pid, sockets in
      let crossing = sockets.filter { $0.crossNUMA == true }.count
      guard crossing > 0 else { return nil }
      var packets: [Int: UInt64] = [:]
      for socket in sockets {
        for (node, count) in socket.packetsByNode { packets[node, default: 0] += count }
      }
      let total = Double(max(packets.values.reduce(0, +), 1))
      return ProcessMismatch(
        pid: pid, command: sockets.first?.command,
        receiveNodeShares: packets.mapValues { Double($0) / total }, threadNodes: sockets.first?.threadNodes ?? [],
        crossNUMASockets: crossing, sockets: sockets.count)
    }.sorted { $0.pid < $1.pid }
  }
}
