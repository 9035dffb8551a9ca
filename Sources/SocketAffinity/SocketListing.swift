import Glibc

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

  /// `progress(done, total)` is called after each process, for a caller
  /// that shows progress on a long host-wide listing.
  public func listReportingSkipped(pid: Int32? = nil, progress: ((Int, Int) -> Void)? = nil) throws(SockaffError)
    -> Result
  {
    let maps = try PinnedMaps(pins: pins)
    try maps.requireAttached()
    let inspection = SocketInspection(topology: topology)
    if let pid {
      guard pid > 0, access("/proc/\(pid)", F_OK) == 0 else {
        throw SockaffError(.noSuchProcess, errno: .noSuchProcess, operation: "list pid \(pid)")
      }
    }
    var answers: [SocketAffinity] = []
    var notPermitted: [Int32] = []
    let interfaceNames = SocketInspection.InterfaceNames()
    let processes = pid.map { [$0] } ?? ProcFS.processIDs()
    for (index, process) in processes.enumerated() {
      defer { progress?(index + 1, processes.count) }
      let fds: [(fd: Int32, inode: UInt64)]
      let handle: ProcessHandle
      do {
        fds = try ProcFS.socketFDs(pid: process)
        guard !fds.isEmpty else { continue }
        handle = try ProcessHandle(pid: process)
      } catch {
        if pid != nil { throw error }
        if error.kind == .notPermitted { notPermitted.append(process) }
        continue  // exited meanwhile, or not ours to read
      }
      var facts: SocketInspection.ProcessFacts?
      for (fd, _) in fds {
        do {
          let socket = try TargetSocket(process: handle, fd: fd)
          guard let record = try maps.record(socketFD: socket.descriptor.rawValue) else { continue }
          guard let kind = try? inspection.kind(of: socket) else { continue }
          if facts == nil {
            facts = inspection.facts(pid: process)
            try handle.requireSameProcess()  // the facts are this process's
          }
          if let answer = try inspection.answer(
            socket: socket, kind: kind, record: record, clock: maps.clock, process: facts!,
            interfaceNames: interfaceNames)
          {
            answers.append(answer)
          }
        } catch {
          // The process or fd went away meanwhile: nothing to list.
          if [.noSuchProcess, .badFileDescriptor].contains(error.kind) { continue }
          if pid == nil && error.kind == .notPermitted {
            notPermitted.append(process)
            break
          }
          throw error
        }
      }
    }
    return Result(sockets: answers, notPermitted: notPermitted)
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
