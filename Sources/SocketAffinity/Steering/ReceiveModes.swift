import Glibc

/// The receive modes that take packet processing off the CPU an RX queue's
/// interrupt is delivered to, so that the IRQ's CPU is not the answer:
///
/// - threaded NAPI (5.12): the poll runs in a kernel thread
///   `napi/<dev>-<napi id>` wherever the scheduler puts it; the IRQ only
///   wakes it;
/// - busy polling: a reading thread polls the socket's NAPI itself
///   (SO_BUSY_POLL, net.core.busy_read and busy_poll), so the packets are
///   processed on the reader's CPU while it polls;
/// - RPS and RFS, read per queue by `InterfaceQueues`.
///
/// What `SteeringPath` and the prediction use to name the hop that decides.

/// The kernel thread that polls one NAPI instance under threaded NAPI.
public struct NAPIThread: Sendable, Equatable, JSONFields {
  public let napiID: UInt32
  public let pid: Int32
  /// Its name (`napi/eth0-8193`; 15 characters at most, as the kernel keeps it).
  public let name: String
  /// The CPUs it may run on (its affinity).
  public let allowedCPUs: [Int]
  /// The CPU it last ran on.
  public let lastCPU: Int?
  /// What named the thread: "name" (its command, `napi/<dev>-<id>`).
  public let source: String

  public init(napiID: UInt32, pid: Int32, name: String, allowedCPUs: [Int], lastCPU: Int?, source: String) {
    self.napiID = napiID
    self.pid = pid
    self.name = name
    self.allowedCPUs = allowedCPUs
    self.lastCPU = lastCPU
    self.source = source
  }

  /// The one CPU it may run on, if it is pinned.
  public var pinnedCPU: Int? { allowedCPUs.count == 1 ? allowedCPUs[0] : nil }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("napi_id", napiID)
    try visitor.field("pid", pid)
    try visitor.field("name", name)
    try visitor.field("allowed_cpus", allowedCPUs)
    try visitor.field("last_cpu", lastCPU)
    try visitor.field("source", source)
  }

  /// Reads thread `pid`'s affinity and last CPU from `proc`.
  static func read(pid: Int32, napiID: UInt32, source: String, proc: String = "/proc") -> NAPIThread? {
    guard let comm = try? readTextFile("\(proc)/\(pid)/comm") else { return nil }
    let allowed = (try? readTextFile("\(proc)/\(pid)/status")).flatMap(ProcFS.allowedCPUs(statusText:))
    let last = (try? readTextFile("\(proc)/\(pid)/stat")).flatMap(ProcFS.lastCPU(statLine:))
    return NAPIThread(
      napiID: napiID, pid: pid, name: comm.trimmingWhitespace(), allowedCPUs: allowed ?? [], lastCPU: last,
      source: source)
  }

  /// The NAPI threads of `interface`, by NAPI id, found by their names
  /// (`napi/<dev>-<id>`). A name the kernel cut at 15 characters no longer
  /// ends in its id and is not taken.
  static func byName(interface: String, proc: String = "/proc") -> [UInt32: NAPIThread] {
    let prefix = "napi/\(interface)-"
    var found: [UInt32: NAPIThread] = [:]
    for pid in ProcFS.numericEntries(proc) {
      guard let comm = (try? readTextFile("\(proc)/\(pid)/comm"))?.trimmingWhitespace(), comm.hasPrefix(prefix),
        comm.count < 15,
        let id = UInt32(comm.dropFirst(prefix.count))
      else { continue }
      found[id] = read(pid: pid, napiID: id, source: "name", proc: proc)
    }
    return found
  }
}

/// Busy polling as it applies to one socket: its own SO_BUSY_POLL (which
/// starts as net.core.busy_read when the socket is made) and the poll and
/// epoll setting net.core.busy_poll. Either makes a reading thread poll the
/// socket's NAPI itself, processing packets on the reader's CPU.
public struct BusyPolling: Sendable, Equatable, JSONFields {
  /// SO_BUSY_POLL in microseconds; nil when it could not be read.
  public let socketMicroseconds: Int?
  /// SO_PREFER_BUSY_POLL (5.11): the IRQ stays masked while the reader polls.
  public let prefer: Bool?
  /// net.core.busy_read and net.core.busy_poll, in microseconds.
  public let busyRead: Int
  public let busyPoll: Int
  /// The NIC's napi_defer_hard_irqs and gro_flush_timeout (ns): with both
  /// set, its IRQ stays masked while the reader keeps polling, so more of
  /// the packets are processed on the reader's CPU.
  public var deferHardIRQs: Int = 0
  public var groFlushTimeout: Int = 0

  public init(socketMicroseconds: Int?, prefer: Bool?, busyRead: Int, busyPoll: Int) {
    self.socketMicroseconds = socketMicroseconds
    self.prefer = prefer
    self.busyRead = busyRead
    self.busyPoll = busyPoll
  }

  /// A read, poll or epoll of this socket busy-polls its NAPI.
  public var active: Bool { (socketMicroseconds ?? 0) > 0 || busyPoll > 0 }

  /// In words: "SO_BUSY_POLL 50 us", "net.core.busy_poll 50 us".
  public var description: String {
    var parts: [String] = []
    if let socket = socketMicroseconds, socket > 0 { parts.append("SO_BUSY_POLL \(socket) us") }
    if busyPoll > 0 { parts.append("net.core.busy_poll \(busyPoll) us") }
    if prefer == true { parts.append("SO_PREFER_BUSY_POLL") }
    if deferHardIRQs > 0 && groFlushTimeout > 0 {
      parts.append("IRQs deferred (napi_defer_hard_irqs \(deferHardIRQs), gro_flush_timeout \(groFlushTimeout) ns)")
    }
    return parts.joined(separator: ", ")
  }

  public func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws {
    try visitor.field("socket_us", socketMicroseconds)
    try visitor.field("prefer", prefer)
    try visitor.field("busy_read_us", busyRead)
    try visitor.field("busy_poll_us", busyPoll)
    try visitor.field("defer_hard_irqs", deferHardIRQs)
    try visitor.field("gro_flush_timeout_ns", groFlushTimeout)
  }

  /// The host's sysctls, from `proc`.
  static func sysctls(proc: String = "/proc") -> (busyRead: Int, busyPoll: Int) {
    (
      readInteger("\(proc)/sys/net/core/busy_read") ?? 0,
      readInteger("\(proc)/sys/net/core/busy_poll") ?? 0
    )
  }
}
