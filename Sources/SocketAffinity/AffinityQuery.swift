import Glibc

/// Answers "which CPU and NUMA node process the packets socket `fd` of
/// process `pid` receives", from the pinned maps of a running tracer.
///
///     let query = AffinityQuery()
///     let answer = try query.query(pid: 812, fd: 9)
///     print(answer.cpu, answer.numaNode ?? -1)
public struct AffinityQuery: Sendable {
  public let pins: PinLayout
  public let topology: Topology

  public init(pins: PinLayout = PinLayout(), topology: Topology = .live()) {
    self.pins = pins
    self.topology = topology
  }

  /// One socket's answer. Without a traced packet it falls back to the
  /// kernel's SO_INCOMING_CPU (`source == .kernel`), else throws noPacketsYet.
  public func query(pid: Int32, fd: Int32) throws(SockaffError) -> SocketAffinity {
    let socket = try TargetSocket(pid: pid, fd: fd)
    let inspection = SocketInspection(topology: topology)
    let kind = try inspection.kind(of: socket)
    let maps = try PinnedMaps(pins: pins)
    let record = try maps.record(socketFD: socket.descriptor.rawValue)
    if record == nil { try maps.requireAttached() }
    guard
      let answer = try inspection.answer(
        socket: socket, kind: kind, record: record, clock: maps.clock, process: inspection.facts(pid: pid))
    else {
      throw SockaffError(
        .noPacketsYet, operation: "pid \(pid) fd \(fd)", hint: "no packets received yet since the tracer was attached")
    }
    return answer
  }

  /// Blocks until the socket's first packet is traced, then answers: the
  /// counterpart of the overlapped Windows call. Throws timedOut after
  /// `timeout` seconds. The socket is held (duplicated) while waiting.
  public func query(pid: Int32, fd: Int32, waitingUpTo timeout: Double) throws(SockaffError) -> SocketAffinity {
    let socket = try TargetSocket(pid: pid, fd: fd)
    let inspection = SocketInspection(topology: topology)
    let kind = try inspection.kind(of: socket)
    let maps = try PinnedMaps(pins: pins)
    try maps.requireAttached()
    let deadline = ClockReference.clockNanoseconds(CLOCK_MONOTONIC) + Int64(timeout * 1e9)
    while true {
      if let record = try maps.record(socketFD: socket.descriptor.rawValue),
        let answer = try inspection.answer(
          socket: socket, kind: kind, record: record, clock: maps.clock, process: inspection.facts(pid: pid))
      {
        return answer
      }
      guard ClockReference.clockNanoseconds(CLOCK_MONOTONIC) < deadline else {
        throw SockaffError(
          .timedOut, operation: "pid \(pid) fd \(fd)", hint: "no packet received within \(timeout) s")
      }
      usleep(5_000)  // a map lookup per 5 ms: invisible in load, quick to answer
    }
  }
}
