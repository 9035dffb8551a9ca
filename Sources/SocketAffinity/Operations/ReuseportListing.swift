import Glibc

/// Every SO_REUSEPORT group of the host: `sockaff list --reuseport`.
///
/// 1. Each network namespace's socket tables (/proc/P/net/{tcp,udp}{,6})
///    give the candidates cheaply, without touching a socket: TCP listeners
///    and unconnected UDP sockets that share a family, local address, port
///    and owner uid with another (a group needs all four the same).
/// 2. Every process's fd links give each candidate's holders.
/// 3. Through one holder each, the socket itself: SO_REUSEPORT (a UDP port
///    shared by SO_REUSEADDR alone is no group), SO_BINDTOIFINDEX (also part
///    of a group's identity), SO_INCOMING_CPU, the cookie, and the tracer's
///    record of where its packets were received.
/// Then the steering evidence (`ReuseportSteeringObjects`) per member.
/// Connected UDP sockets are left out: the kernel matches them by their
/// four-tuple before any group is asked.
public struct ReuseportListing: Sendable {
  public let pins: PinLayout
  public let topology: Topology

  public init(pins: PinLayout = PinLayout(), topology: Topology = .live()) {
    self.pins = pins
    self.topology = topology
  }

  public struct Result: Sendable {
    public var groups: [ReuseportGroup] = []
    /// Why received CPUs are missing (the tracer is not attached), or nil.
    public var limits: String?
    /// Members none of whose holders could be read (not permitted).
    public var unreadableMembers = 0
  }

  /// Groups with two members or more (a lone SO_REUSEPORT socket shares
  /// nothing), ordered by namespace, protocol and address.
  public func groups() throws(SockaffError) -> Result {
    var result = Result()
    var maps: PinnedMaps?
    do {
      let opened = try PinnedMaps(pins: pins)
      try opened.requireAttached()
      maps = opened
    } catch  where error.kind == .notAttached {
      result.limits =
        "the tracer is not attached: where members' packets were received is unknown (the kernel keeps no receive CPU for listeners and unconnected UDP sockets)"
    }

    // 1. Candidates, by what a group must share.
    struct Key: Hashable {
      let namespace: UInt64
      let transport: SocketKind.TransportProtocol
      let family: SocketKind.Family
      let address: [UInt8]
      let port: UInt16
      let uid: UInt32
    }
    let processes = ProcFS.processIDs()
    var candidates: [Key: [UInt64]] = [:]
    for (_, table) in SocketSearch.tables(processes: processes) {
      let unbound: UInt8 = table.transport == .tcp ? 0x0A : 0x07  // TCP_LISTEN; UDP's TCP_CLOSE
      for row in table.rows where row.state == unbound {
        guard let port = row.local.port, port != 0 else { continue }
        let key = Key(
          namespace: table.namespace, transport: table.transport, family: table.family, address: row.local.address,
          port: port, uid: row.uid)
        candidates[key, default: []].append(row.inode)
      }
    }
    candidates = candidates.filter { $0.value.count > 1 }
    guard !candidates.isEmpty else { return result }

    // 2. Their holders.
    var holders: [UInt64: [(pid: Int32, fd: Int32)]] = [:]
    for holder in SocketSearch.holders(of: Set(candidates.values.joined()), processes: processes) {
      holders[holder.inode, default: []].append((holder.pid, holder.fd))
    }

    // 3. Each member through one of its holders.
    let inspection = SocketInspection(topology: topology)
    let steering = ReuseportSteeringObjects.read()
    var facts: [Int32: SocketInspection.ProcessFacts] = [:]
    var waiting: [Int32: [WaitingThreads.Thread]] = [:]
    func factsOf(_ pid: Int32) -> ProcessSample {
      if facts[pid] == nil { facts[pid] = inspection.facts(pid: pid) }
      if waiting[pid] == nil { waiting[pid] = WaitingThreads.threads(pid: pid) }
      return ProcessSample(facts: facts[pid]!, waiting: waiting[pid]!)
    }
    for (key, inodes) in candidates {
      var byDevice: [Int32: [ReuseportGroup.Member]] = [:]
      var local: String?
      var deviceNames: [Int32: String] = [:]
      for inode in inodes {
        let held = holders[inode] ?? []
        guard let seen = try inspect(held, maps: maps, steering: steering, inspection: inspection, facts: factsOf)
        else {
          result.unreadableMembers += 1
          continue
        }
        guard seen.reuseport else { continue }
        local = local ?? seen.local
        deviceNames[seen.boundIfindex] = deviceNames[seen.boundIfindex] ?? seen.boundInterface
        byDevice[seen.boundIfindex, default: []].append(seen.member)
      }
      for (ifindex, members) in byDevice where members.count > 1 {
        let ordered = members.sorted { Self.firstHolder($0) < Self.firstHolder($1) }
        result.groups.append(
          ReuseportGroup(
            networkNamespace: key.namespace, family: key.family, transport: key.transport,
            local: local ?? "port \(key.port)",
            boundInterface: ifindex > 0 ? deviceNames[ifindex] ?? "ifindex \(ifindex)" : nil, members: ordered,
            steering: .judge(members: ordered, hostPrograms: steering.programs)))
      }
    }
    if let limits = steering.limits {
      result.limits = [result.limits, limits].compactMap { $0 }.joined(separator: "; ")
    }
    result.groups.sort {
      ($0.networkNamespace ?? 0, $0.transport.rawValue, $0.family.rawValue, $0.local)
        < ($1.networkNamespace ?? 0, $1.transport.rawValue, $1.family.rawValue, $1.local)
    }
    return result
  }

  /// One member as its first readable holder shows it; nil when no holder
  /// could be read.
  private func inspect(
    _ held: [(pid: Int32, fd: Int32)], maps: PinnedMaps?, steering: ReuseportSteeringObjects.Found,
    inspection: SocketInspection,
    facts: (Int32) -> ProcessSample
  ) throws(SockaffError) -> (
    member: ReuseportGroup.Member, reuseport: Bool, boundIfindex: Int32, boundInterface: String?, local: String?
  )? {
    for holder in held {
      let socket: TargetSocket
      do {
        socket = try TargetSocket(pid: holder.pid, fd: holder.fd)
      } catch {
        // Exited, closed, or not ours to read: the next holder may be.
        if [.noSuchProcess, .badFileDescriptor, .notPermitted].contains(error.kind) { continue }
        throw error
      }
      guard let reuseport = try? socket.intOption(SOL_SOCKET, SO_REUSEPORT) else { continue }
      let boundIfindex = (try? socket.intOption(SOL_SOCKET, Self.bindToIfindex)) ?? 0
      let incoming = (try? socket.intOption(SOL_SOCKET, SO_INCOMING_CPU)) ?? -1
      let cookie = try? socket.cookie()
      let record = try maps?.record(socketFD: socket.descriptor.rawValue)
      let allHolders = held.map {
        ReuseportGroup.Holder(pid: $0.pid, fd: $0.fd, command: facts($0.pid).facts.command)
      }
      // Its workers: the threads waiting on it, else every holder's thread.
      let workers = held.flatMap { holder in facts(holder.pid).waiting.filter { $0.fds.contains(holder.fd) } }
      let threadCPUs =
        workers.isEmpty
        ? Set(held.flatMap { facts($0.pid).facts.threadCPUs }).sorted() : Set(workers.compactMap(\.cpu)).sorted()
      let threadNodes = topology.nodes(ofCPUs: threadCPUs)
      let cpus = inspection.cpuShares(record)
      let locality = record.flatMap {
        inspection.locality(record: $0, cpus: cpus, threadNodes: threadNodes, readSampling: maps?.readSampling ?? 1)
      }
      let member = ReuseportGroup.Member(
        cookie: cookie, holders: allHolders, threadCPUs: threadCPUs, threadNodes: threadNodes,
        threads: workers.isEmpty ? .holders : .waiting, incomingCPU: incoming >= 0 ? Int(incoming) : nil,
        packets: record.map(\.packets) ?? (maps == nil ? nil : 0), cpus: cpus,
        readerCPU: record?.readerCPU, locality: locality,
        slots: cookie.flatMap { steering.slotsByCookie[$0] } ?? [])
      let device = boundIfindex > 0 ? socket.interfaceName(ifindex: UInt32(boundIfindex)) : nil
      return (member, reuseport != 0, boundIfindex, device, socket.address(peer: false))
    }
    return nil
  }

  /// What a member's holder process tells: its facts, and its threads
  /// blocked on a socket now.
  struct ProcessSample {
    let facts: SocketInspection.ProcessFacts
    let waiting: [WaitingThreads.Thread]
  }

  /// Members in the order of their first holder's pid and fd.
  static func firstHolder(_ member: ReuseportGroup.Member) -> Int64 {
    Int64(member.holders.first?.pid ?? 0) << 32 | Int64(member.holders.first?.fd ?? 0)
  }

  /// SO_BINDTOIFINDEX (5.1), newer than some headers.
  static let bindToIfindex: Int32 = 62
}
