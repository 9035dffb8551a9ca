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

  /// One socket's observed answer. Without a traced packet it falls back to
  /// the kernel's SO_INCOMING_CPU (`source == .kernel`), else throws
  /// noPacketsYet (or notAttached). `resolve` adds the prediction.

  public func query(pid: Int32, fd: Int32) throws(SockaffError) -> SocketAffinity {
    try answer(pid: pid, fd: fd, waitingUpTo: nil)
  }

  /// The one fallback chain, for every caller (the CLI's `query`, the C
  /// library): the traced answer, else the kernel's own fields, else RSS's
  /// prediction of where the socket's first packets will go. Throws the
  /// observed path's error when none of the three can say.
  public func resolve(pid: Int32, fd: Int32) throws(SockaffError) -> ResolvedAffinity {
    do {
      return .observed(try query(pid: pid, fd: fd))
    } catch  where [.noPacketsYet, .notAttached, .notPermitted].contains(error.kind) {
      guard let predicted = try? predict(pid: pid, fd: fd) else { throw error }
      return .predicted(predicted)
    }
  }

  /// Blocks until the socket's first packet is traced, then answers: the
  /// counterpart of the overlapped Windows call. Throws timedOut after
  /// `timeout` seconds. The socket is held (duplicated) while waiting.
  public func query(pid: Int32, fd: Int32, waitingUpTo timeout: Double) throws(SockaffError) -> SocketAffinity {
    try answer(pid: pid, fd: fd, waitingUpTo: timeout)
  }

  private func answer(pid: Int32, fd: Int32, waitingUpTo timeout: Double?) throws(SockaffError) -> SocketAffinity {
    let handle = try ProcessHandle(pid: pid)
    let socket = try TargetSocket(process: handle, fd: fd)
    let inspection = SocketInspection(topology: topology)
    let kind = try inspection.kind(of: socket)
    let maps: PinnedMaps
    do {
      maps = try PinnedMaps(pins: pins)
      // Pins without an attached program (a killed `trace --foreground`) hold
      // records that no longer grow: never answer from them as if live.
      try maps.requireAttached()
    } catch  where [.notAttached, .notPermitted].contains(error.kind) && timeout == nil {
      // No tracer, or its pins are not this user's to read (they are
      // root's, 0600): what the kernel itself keeps for the socket, saying
      // what that lacks; exit 8 (or 7) only when the kernel knows nothing either.
      let process = inspection.facts(pid: pid)
      try handle.requireSameProcess()
      guard var answer = try inspection.answer(socket: socket, kind: kind, record: nil, clock: nil, process: process)
      else { throw error }
      let why =
        error.kind == .notAttached ? "the tracer is not attached" : "the tracer's pins are not readable by this user"
      answer.limits =
        "\(why): the kernel's SO_INCOMING_CPU and SO_INCOMING_NAPI_ID only, no RX queue, "
        + "packet counts, CPU shares or history ('sockaff trace' for those)"
      return answer
    }
    let process = inspection.facts(pid: pid)
    // The facts came from /proc/PID: valid only if PID still names the
    // process behind the pidfd (not reaped, so not reused).
    try handle.requireSameProcess()
    let deadline = SystemClock.nanoseconds(CLOCK_MONOTONIC) + Int64((timeout ?? 0) * 1e9)
    while true {
      let record = try maps.record(socketFD: socket.descriptor.rawValue)
      // Waiting means waiting for a traced packet, not the kernel's fallback.
      if record != nil || timeout == nil {
        if let answer = try inspection.answer(
          socket: socket, kind: kind, record: record, clock: maps.clock, readSampling: maps.readSampling,
          process: process)
        {
          return answer
        }
        throw SockaffError(
          .noPacketsYet, operation: "pid \(pid) fd \(fd)", hint: "no packets received yet since the tracer was attached"
        )
      }
      guard SystemClock.nanoseconds(CLOCK_MONOTONIC) < deadline else {
        throw SockaffError(
          .timedOut, operation: "pid \(pid) fd \(fd)", hint: "no packet received within \(timeout ?? 0) s")
      }
      usleep(5_000)  // a map lookup per 5 ms: invisible in load, quick to answer
    }
  }
}

/// What `AffinityQuery.resolve` found: an observed answer (traced, or the
/// kernel's own fields: `source` says which) or a prediction. Encoded as
/// the answer it holds.
public enum ResolvedAffinity: Sendable, Encodable {
  case observed(SocketAffinity)
  case predicted(PredictedAffinity)

  public func encode(to encoder: any Encoder) throws {
    switch self {
    case .observed(let answer): try answer.encode(to: encoder)
    case .predicted(let prediction): try prediction.encode(to: encoder)
    }
  }

  /// The CPU either answer names (a prediction may name only candidates).
  public var cpu: Int? {
    switch self {
    case .observed(let answer): answer.cpu
    case .predicted(let prediction): prediction.cpu
    }
  }
}
