import CLibbpf
import CSockaffABI
import Foundation
import Glibc
import SystemPackage

/// Answers "which CPU and NUMA node process the packets socket `fd` of
/// process `pid` receives", from the pinned maps of a running tracer.
///
///     let query = try AffinityQuery()
///     let answer = try query.query(pid: 812, fd: 9)
///     print(answer.cpu, answer.numaNode ?? -1)
public struct AffinityQuery: Sendable {
  public let pins: PinLayout
  public let topology: Topology

  public init(pins: PinLayout = PinLayout(), topology: Topology = .live()) {
    self.pins = pins
    self.topology = topology
  }

  public func query(pid: Int32, fd: Int32) throws(SockaffError) -> SocketAffinity {
    let socket = try TargetSocket(pid: pid, fd: fd)
    let domain = try socket.intOption(SOL_SOCKET, SO_DOMAIN)
    let kind: SocketKind
    switch SocketKind.classify(
      domain: domain, type: try socket.intOption(SOL_SOCKET, SO_TYPE),
      protocol: try socket.intOption(SOL_SOCKET, SO_PROTOCOL))
    {
    case .success(let found): kind = found
    case .failure(let unsupported):
      throw SockaffError(
        .unsupportedSocket, errno: .notSupported, operation: "pid \(pid) fd \(fd)",
        hint: "\(unsupported.description); sockaff traces TCP and UDP over IPv4 and IPv6")
    }

    let record = try lookupRecord(socket: socket)
    let incomingCPU = try socket.intOption(SOL_SOCKET, SO_INCOMING_CPU)
    let remote = socket.address(peer: true)
    let base = (
      cookie: try socket.cookie(), local: socket.address(peer: false), remote: remote
    )

    guard let (record, clock) = record else {
      // Nothing traced yet (e.g. all packets arrived before `trace`): the
      // kernel's own last receiving CPU is still an answer, and says so.
      guard incomingCPU >= 0 else {
        throw SockaffError(
          .noPacketsYet, operation: "pid \(pid) fd \(fd)",
          hint: "no packets received yet since the tracer was attached")
      }
      let cpu = Int(incomingCPU)
      return SocketAffinity(
        pid: pid, fd: fd, cookie: base.cookie, family: kind.family, transport: kind.transport,
        local: base.local, remote: remote, connected: remote != nil, cpu: cpu,
        processor: topology.processorNumber(ofCPU: cpu), numaNode: topology.node(ofCPU: cpu),
        rxQueue: nil, napiID: nil, ifindex: nil, interface: nil, packets: nil, bytes: nil,
        cpuChanges: nil, cpus: [], otherCPUsPackets: nil, firstSeen: nil, lastSeen: nil,
        kernelIncomingCPU: incomingCPU, source: .kernel)
    }

    let total = max(record.packets, 1)
    return SocketAffinity(
      pid: pid, fd: fd, cookie: base.cookie, family: kind.family, transport: kind.transport,
      local: base.local, remote: remote, connected: remote != nil, cpu: record.lastCPU,
      processor: topology.processorNumber(ofCPU: record.lastCPU),
      numaNode: topology.node(ofCPU: record.lastCPU), rxQueue: record.rxQueue,
      napiID: record.napiID == 0 ? nil : record.napiID, ifindex: record.ifindex,
      interface: socket.interfaceName(ifindex: record.ifindex), packets: record.packets,
      bytes: record.bytes, cpuChanges: record.cpuChanges,
      cpus: record.packetsByCPU.map {
        .init(
          cpu: $0.cpu, numaNode: topology.node(ofCPU: $0.cpu), packets: $0.packets,
          share: Double($0.packets) / Double(total))
      },
      otherCPUsPackets: record.otherPackets,
      firstSeen: clock.map { Date(timeIntervalSince1970: $0.unixTime(atJiffies: record.firstJiffies)) },
      lastSeen: clock.map { Date(timeIntervalSince1970: $0.unixTime(atJiffies: record.lastJiffies)) },
      kernelIncomingCPU: incomingCPU, source: .bpf)
  }

  /// The socket's record from the pinned map (keyed by our duplicate fd: the
  /// kernel resolves it to the same socket), or nil if it has none.
  private func lookupRecord(
    socket: borrowing TargetSocket
  ) throws(SockaffError) -> (ReceiveRecord, ClockReference?)? {
    guard Mounts.isBPFFSMounted(in: try Mounts.current()),
      let records = try BPF.openPinned(pins.records)
    else {
      throw SockaffError(.notAttached, operation: "query", hint: "tracer not attached; run 'sockaff trace' first")
    }
    defer { records.closeQuietly() }
    let info = try BPF.mapInfo(records)
    guard info.value_size == MemoryLayout<sockaff_record>.size else {
      throw SockaffError(
        .incompatiblePins, operation: "read \(pins.records)",
        hint:
          "pinned by a sockaff with another record layout (\(info.value_size) bytes, this one reads \(MemoryLayout<sockaff_record>.size)); run 'sockaff detach' and 'sockaff trace'"
      )
    }
    var key = socket.descriptor.rawValue
    var raw = sockaff_record()
    guard bpf_map_lookup_elem(records.rawValue, &key, &raw) == 0 else {
      let errno = Errno(rawValue: Glibc.errno)
      guard errno == .noSuchFileOrDirectory else {
        throw SockaffError.fromErrno(errno, operation: "lookup record of pid \(socket.pid) fd \(socket.fd)")
      }
      try requireAttached()
      return nil
    }
    let clock = try BPF.openPinned(pins.clock).flatMap { fd in
      defer { fd.closeQuietly() }
      return try? ClockReference.load(clockMapFD: fd.rawValue)
    }
    return (ReceiveRecord(raw), clock)
  }

  /// Pinned maps without an attached program are what a killed foreground
  /// tracer leaves: no new packets will be recorded, so say so.
  private func requireAttached() throws(SockaffError) {
    let cgroup = try Mounts.requireCgroup2Root()
    if try AttachedPrograms.query(cgroup: cgroup).isEmpty {
      throw SockaffError(.notAttached, operation: "query", hint: "tracer not attached; run 'sockaff trace' first")
    }
  }
}
