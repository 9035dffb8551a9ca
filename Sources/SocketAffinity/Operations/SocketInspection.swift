import FoundationEssentials
import Glibc
import Synchronization

/// Socket options newer than some distributions' headers.
enum SockaffSocketOption {
  static let busyPoll: Int32 = 46  // SO_BUSY_POLL
  static let preferBusyPoll: Int32 = 69  // SO_PREFER_BUSY_POLL (5.11)
}

/// Turns one opened socket, its record and the host topology into the
/// answer. Shared by `query` (one socket, errors for the operator) and `list`
/// (many sockets, skipping those that are not traced).
struct SocketInspection {
  let topology: Topology
  /// Each answer's steering path, each interface read once per inspection.
  let steering: SteeringInspection

  /// `steering`: the interfaces already read for this command or scrape.
  init(topology: Topology, steering: SteeringInspection? = nil) {
    self.topology = topology
    self.steering = steering ?? SteeringInspection(topology: topology)
  }

  /// Interface names per (network namespace, ifindex): a listing asks the
  /// kernel once per interface, not once per socket.
  /// Shared by the threads of one listing, hence the lock.
  final class InterfaceNames: Sendable {
    private let names = Mutex<[String: String?]>([:])

    func name(socket: borrowing TargetSocket, namespace: UInt64?, ifindex: UInt32) -> String? {
      let key = "\(namespace ?? 0)/\(ifindex)"
      if let known = names.withLock({ $0[key] }) { return known }
      let name = socket.interfaceName(ifindex: ifindex)
      names.withLock { $0[key] = name }
      return name
    }
  }

  /// What is the same for every socket of one process: read once per process.
  struct ProcessFacts {
    let command: String?
    let networkNamespace: UInt64?
    /// Its cgroup (v2), relative to the cgroup2 root; nil without one.
    let cgroup: String?
    /// The CPU each thread last ran on, and their nodes.
    let threadCPUs: [Int]
    let threadNodes: [Int]
  }

  func facts(pid: Int32) -> ProcessFacts {
    let cpus = ProcFS.threadCPUs(pid: pid)
    return ProcessFacts(
      command: ProcFS.command(pid: pid), networkNamespace: ProcFS.networkNamespace(pid: pid),
      cgroup: ProcFS.cgroup(pid: pid), threadCPUs: cpus,
      threadNodes: topology.nodes(ofCPUs: cpus))
  }

  /// The socket's busy polling, read through the socket itself, where it
  /// can apply: a NIC's NAPI (loopback and veth have none to poll). nil
  /// when it is off.
  func busyPolling(socket: borrowing TargetSocket, interface: String?, namespace: UInt64?) -> BusyPolling? {
    guard busyPollingApplies(interface: interface, namespace: namespace) else { return nil }
    return busyPolling(
      socketMicroseconds: (try? socket.intOption(SOL_SOCKET, SockaffSocketOption.busyPoll)).map(Int.init),
      prefer: (try? socket.intOption(SOL_SOCKET, SockaffSocketOption.preferBusyPoll)).map { $0 != 0 },
      interface: interface!)
  }

  private func busyPollingApplies(interface: String?, namespace: UInt64?) -> Bool {
    guard let interface, namespace == nil || namespace == ProcFS.ownNetworkNamespace else { return false }
    return steering.shared(of: interface).queues.hasDevice
  }

  /// The socket's own settings (SO_BUSY_POLL, SO_PREFER_BUSY_POLL) with the
  /// host's and the NIC's.
  private func busyPolling(socketMicroseconds: Int?, prefer: Bool?, interface: String) -> BusyPolling? {
    let sysctls = steering.busyPollSysctls
    let shared = steering.shared(of: interface)
    var polling = BusyPolling(
      socketMicroseconds: socketMicroseconds, prefer: prefer, busyRead: sysctls.busyRead, busyPoll: sysctls.busyPoll)
    (polling.deferHardIRQs, polling.groFlushTimeout) = (shared.queues.deferHardIRQs, shared.queues.groFlushTimeout)
    return polling.active ? polling : nil
  }

  /// The socket's kind, or EOPNOTSUPP naming what it is instead. TCP and
  /// UDP imply their socket type, so SO_TYPE is only read for the others.
  func kind(of socket: borrowing TargetSocket) throws(SockaffError) -> SocketKind {
    let domain = try socket.intOption(SOL_SOCKET, SO_DOMAIN)
    let proto = try socket.intOption(SOL_SOCKET, SO_PROTOCOL)
    let type =
      switch proto {
      case Int32(IPPROTO_TCP) where domain == AF_INET || domain == AF_INET6: Int32(SOCK_STREAM.rawValue)
      case Int32(IPPROTO_UDP) where domain == AF_INET || domain == AF_INET6: Int32(SOCK_DGRAM.rawValue)
      default: try socket.intOption(SOL_SOCKET, SO_TYPE)
      }
    let result = SocketKind.classify(domain: domain, type: type, protocol: proto)
    switch result {
    case .success(let kind): return kind
    case .failure(let unsupported):
      throw SockaffError(
        .unsupportedSocket, errno: .notSupported, operation: "pid \(socket.pid) fd \(socket.fd)",
        hint: "\(unsupported.description); sockaff traces TCP and UDP over IPv4 and IPv6")
    }
  }

  /// The answer from the socket's record, or, without one, from the
  /// kernel's SO_INCOMING_CPU; nil when neither knows.
  func answer(
    socket: borrowing TargetSocket, kind: SocketKind, record: ReceiveRecord?, clock: ClockReference?,
    readSampling: Int = 1, process: ProcessFacts, interfaceNames: InterfaceNames = InterfaceNames()
  ) throws(SockaffError) -> SocketAffinity? {
    let incomingCPU = try socket.intOption(SOL_SOCKET, SO_INCOMING_CPU)
    guard record != nil || incomingCPU >= 0 else { return nil }
    let pid = socket.pid
    let remote = socket.address(peer: true)
    let threadNodes = process.threadNodes
    let cpu = record?.lastCPU ?? Int(incomingCPU)
    let cpus = cpuShares(record)
    let locality = record.flatMap {
      self.locality(record: $0, cpus: cpus, threadNodes: threadNodes, readSampling: readSampling)
    }
    let firstSeen: Date? = record.flatMap { r in
      clock.map { Date(timeIntervalSince1970: $0.unixTime(atJiffies: r.firstJiffies)) }
    }
    let lastSeen: Date? = record.flatMap { r in
      clock.map { Date(timeIntervalSince1970: $0.unixTime(atJiffies: r.lastJiffies)) }
    }
    var napiID: UInt32? = record.flatMap { $0.napiID == 0 ? nil : $0.napiID }
    var interface: String?
    var rxQueue = record?.rxQueue
    if let record {
      interface = interfaceNames.name(
        socket: socket, namespace: process.networkNamespace, ifindex: record.ifindex)
    } else {
      // The kernel's own: the NAPI id of the latest packet, and the
      // interface that holds a connected socket's address (its replies
      // come back there), when sockaff runs in the socket's namespace.
      napiID = (try? socket.intOption(SOL_SOCKET, SO_INCOMING_NAPI_ID)).flatMap { $0 > 0 ? UInt32($0) : nil }
      let ownNamespace = process.networkNamespace == nil || process.networkNamespace == ProcFS.ownNetworkNamespace
      // The NAPI that received the latest packet names its interface and
      // queue (netdev netlink, in sockaff's own namespace: NAPI ids are
      // per host, napi-get answers for its caller's namespace only).
      if let napiID, ownNamespace, let served = steering.receiveQueue(ofNAPI: napiID) {
        interface = served.interface
        rxQueue = served.queue.map(UInt32.init)
      } else if remote != nil, let local = socket.endpoint(peer: false), !local.isWildcard, ownNamespace {
        interface = InterfaceAddresses.interface(holding: local.address)
      }
    }
    let crossNUMA: Bool? = locality.map { Self.isCrossNUMA(sameNode: $0.sameNode) }
    let source: SocketAffinity.Source = record == nil ? .kernel : .bpf
    // The record holds the cookie (bpf_get_socket_cookie): one syscall less.
    let cookie: UInt64
    if let record { cookie = record.cookie } else { cookie = try socket.cookie() }
    var answer = SocketAffinity(
      pid: pid, fd: socket.fd, command: process.command, networkNamespace: process.networkNamespace,
      cookie: cookie,
      family: kind.family, transport: kind.transport, local: socket.address(peer: false), remote: remote,
      connected: remote != nil, cpu: cpu, processor: topology.processorNumber(ofCPU: cpu),
      numaNode: topology.node(ofCPU: cpu), rxQueue: rxQueue, napiID: napiID, ifindex: record?.ifindex,
      interface: interface, packets: record?.packets, bytes: record?.bytes, cpuChanges: record?.cpuChanges,
      cpus: cpus, otherCPUsPackets: record?.otherPackets, firstSeen: firstSeen, lastSeen: lastSeen,
      kernelIncomingCPU: incomingCPU, source: source, consumerCPU: record?.readerCPU, reads: record?.reads,
      threadNodes: threadNodes, locality: locality, crossNUMA: crossNUMA)
    answer.cgroup = process.cgroup
    answer.path = steering.path(
      for: answer,
      busyPolling: busyPolling(socket: socket, interface: interface, namespace: process.networkNamespace),
      threadCPUs: process.threadCPUs)
    answer.hashCheck = hashCheck(
      socket: socket, kind: kind, record: record, interface: interface, connected: remote != nil, process: process)
    return answer
  }

  /// A census's answer from the socket's row of the one-pass table
  /// (`KernelSocketTable`): the same as `answer` with no record, from the
  /// kernel's fields as the iterator read them, without opening the socket.
  /// nil when the kernel keeps no receive CPU for it.
  func answer(
    row: KernelSocketTable.Row, pid: Int32, fd: Int32, process: ProcessFacts
  ) -> SocketAffinity? {
    let type = row.protocol == IPPROTO_TCP ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue
    guard row.incoming_cpu >= 0,
      case .success(let kind) = SocketKind.classify(
        domain: Int32(row.family), type: Int32(type), protocol: Int32(row.protocol))
    else { return nil }
    let local = SocketAddress.storage(family: row.family, address: row.local_address, port: row.local_port)
    let remote =
      row.remote_port == 0
      ? nil : SocketAddress.storage(family: row.family, address: row.remote_address, port: row.remote_port)
    let cpu = Int(row.incoming_cpu)
    let napiID = KernelSocketTable.napiID(row)
    let ownNamespace = process.networkNamespace == nil || process.networkNamespace == ProcFS.ownNetworkNamespace
    var interface: String?
    var rxQueue: UInt32?
    if let napiID, ownNamespace, let served = steering.receiveQueue(ofNAPI: napiID) {
      interface = served.interface
      rxQueue = served.queue.map(UInt32.init)
    } else if remote != nil, let endpoint = SocketAddress.endpoint(local), !endpoint.isWildcard, ownNamespace {
      interface = InterfaceAddresses.interface(holding: endpoint.address)
    }
    var answer = SocketAffinity(
      pid: pid, fd: fd, command: process.command, networkNamespace: process.networkNamespace, cookie: row.cookie,
      family: kind.family, transport: kind.transport, local: SocketAddress.format(local),
      remote: remote.flatMap(SocketAddress.format), connected: remote != nil, cpu: cpu,
      processor: topology.processorNumber(ofCPU: cpu), numaNode: topology.node(ofCPU: cpu), rxQueue: rxQueue,
      napiID: napiID, ifindex: nil, interface: interface, packets: nil, bytes: nil, cpuChanges: nil, cpus: [],
      otherCPUsPackets: nil, firstSeen: nil, lastSeen: nil, kernelIncomingCPU: row.incoming_cpu, source: .kernel,
      consumerCPU: nil, reads: nil, threadNodes: process.threadNodes, locality: nil, crossNUMA: nil)
    answer.cgroup = process.cgroup
    let polling =
      busyPollingApplies(interface: interface, namespace: process.networkNamespace)
      ? busyPolling(
        socketMicroseconds: Int(row.busy_poll_usec), prefer: row.prefer_busy_poll != 0, interface: interface!)
      : nil
    answer.path = steering.path(for: answer, busyPolling: polling, threadCPUs: process.threadCPUs)
    answer.hashCheck = interface.map(Self.unrecordedHashCheck)
    return answer
  }

  /// A record's packets by CPU, each with its node and share (none without a record).
  func cpuShares(_ record: ReceiveRecord?) -> [SocketAffinity.CPUShare] {
    guard let record else { return [] }
    let total = Double(max(record.packets, 1))
    return record.packetsByCPU.map {
      SocketAffinity.CPUShare(
        cpu: $0.cpu, numaNode: topology.node(ofCPU: $0.cpu), packets: $0.packets, share: Double($0.packets) / total)
    }
  }

  /// The packets' hash against RSS's for the socket's flow (`HashCheck`).
  func hashCheck(
    socket: borrowing TargetSocket, kind: SocketKind, record: ReceiveRecord?, interface: String?, connected: Bool,
    process: ProcessFacts
  ) -> HashCheck? {
    guard let interface else { return nil }
    guard let record else { return Self.unrecordedHashCheck(interface: interface) }
    // The addresses again, as bytes, only where there is a hash to check
    // (two syscalls per socket a listing need not make for the others).
    let remote = record.rxHash == nil ? nil : socket.endpoint(peer: true)
    let local = remote == nil ? nil : socket.endpoint(peer: false)
    let flow = remote.flatMap { remote in
      local.map { local in
        ReceivedFlow(
          source: remote.address, sourcePort: remote.port, destination: local.address, destinationPort: local.port,
          tcp: kind.transport == .tcp)
      }
    }
    let rss = steering.hashInterface(
      interface, namespace: process.networkNamespace, flowType: flow?.flowType, socket: socket)
    return HashCheck.check(observed: record.rxHash, connected: connected, flow: flow, interface: rss)
  }

  /// Without a record: the kernel's own hash of the socket (sk_rxhash) is
  /// read by no socket option, and a census does not check it (a NIC's
  /// hash is told from the kernel's own only per packet, by the tracer).
  static func unrecordedHashCheck(interface _: String) -> HashCheck {
    HashCheck(
      observedHash: nil, fromNIC: false, predictedHash: nil, verdict: .unverifiable,
      reason: "the kernel keeps a socket's hash (sk_rxhash) where no socket option reads it: 'sockaff trace' keeps it")
  }

  /// Exact locality from traced reads when there are any; otherwise the share
  /// of packets received on a node where the process's threads last ran.
  /// `readSampling`: 1 in how many reads the tracer counted (`PinnedMaps.readSampling`).
  func locality(
    record: ReceiveRecord, cpus: [SocketAffinity.CPUShare], threadNodes: [Int], readSampling: Int = 1
  ) -> SocketAffinity.Locality? {
    if record.reads > 0 {
      let reads = Double(record.reads)
      return .init(
        sameCPU: Double(record.readsSameCPU) / reads, sameNode: Double(record.readsSameNode) / reads,
        source: .recvmsg, readSampling: readSampling)
    }
    guard record.packets > 0 else { return nil }
    return Self.sampledSameNode(
      packetsByCPU: cpus.map { ($0.cpu, $0.packets) }, otherPackets: record.otherPackets, threadNodes: threadNodes,
      topology: topology
    ).map { .init(sameCPU: nil, sameNode: $0, source: .threadSampling) }
  }

  /// Without traced reads: the share of a socket's packets received on a
  /// node where its process's threads last ran (packets on unknown CPUs count
  /// as elsewhere); nil when no thread's node is known.
  static func sampledSameNode(
    packetsByCPU: [(cpu: Int, packets: UInt64)], otherPackets: UInt64, threadNodes: [Int], topology: Topology
  ) -> Double? {
    guard !threadNodes.isEmpty else { return nil }
    let local = packetsByCPU.filter { topology.node(ofCPU: $0.cpu).map(threadNodes.contains) ?? false }
      .reduce(0) { $0 + $1.packets }
    let known = packetsByCPU.reduce(0) { $0 + $1.packets } + otherPackets
    return Double(local) / Double(max(known, 1))
  }

  /// Cross-NUMA: most reads (or, sampled, most packets) off the receiving node.
  static func isCrossNUMA(sameNode: Double) -> Bool { sameNode < 0.5 }
}
