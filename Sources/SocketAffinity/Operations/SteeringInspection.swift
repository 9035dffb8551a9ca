import CSockaffShims
import Glibc
import Synchronization
import SystemPackage

/// Builds a socket's `SteeringPath` from its answer (the traced queue, NAPI
/// id, receiving and reading CPUs) and what the kernel says about that
/// interface now (`InterfaceQueues`). One per query, listing or scrape:
/// each interface is read once, however many sockets it serves, and a
/// scrape's status reads its NICs from the same cache.
public final class SteeringInspection: Sendable {
  let topology: Topology
  private let queues = Mutex<[String: SharedQueues]>([:])

  /// One interface's read, handed out by reference: a cache hit that
  /// copied the struct retained its dozen dictionaries, for every socket
  /// of a listing (`shared(of:)` on the per-socket paths).
  final class SharedQueues: Sendable {
    let queues: InterfaceQueues
    init(_ queues: InterfaceQueues) { self.queues = queues }
  }
  /// Per network namespace, interface and flow type: what a hash check
  /// compares with, read once.
  private let rss = Mutex<[String: HashCheck.Interface]>([:])

  /// net.core.busy_read and busy_poll, read once per command or scrape,
  /// not once per socket.
  let busyPollSysctls: (busyRead: Int, busyPoll: Int)

  public init(topology: Topology) {
    self.topology = topology
    busyPollSysctls = BusyPolling.sysctls()
  }

  /// XDP per interface of sockaff's own namespace, read once (`.some(nil)`: none).
  private let xdpPrograms = Mutex<[String: InterfaceXDP?]>([:])

  func xdp(of interface: String) -> InterfaceXDP? {
    if let known = xdpPrograms.withLock({ $0[interface] }) { return known }
    let read = InterfaceXDP.read(interface: interface)
    xdpPrograms.withLock { $0[interface] = .some(read) }
    return read
  }

  /// What may re-steer flows on a NIC of sockaff's own namespace before or
  /// instead of RSS, read once per interface (ethtool, a control socket).
  struct Resteering: Sendable {
    var ntupleRules = 0
    var ntupleEnabled = false
    var atr: String?
  }
  private let resteering = Mutex<[String: Resteering]>([:])

  func resteering(of interface: String) -> Resteering {
    if let known = resteering.withLock({ $0[interface] }) { return known }
    var read = Resteering()
    let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    if socket >= 0 {
      defer { close(socket) }
      let descriptor = FileDescriptor(rawValue: socket)
      // The rule count and the flags, as RSSConfiguration reads them, not its key and table.
      var rules: UInt32 = 0
      if sockaff_ethtool_rule_count(socket, interface, &rules) == 0 { read.ntupleRules = Int(rules) }
      var flags: UInt32 = 0
      if sockaff_ethtool_flags(socket, interface, &flags) == 0 {
        read.ntupleEnabled = flags & UInt32(ETH_FLAG_NTUPLE.rawValue) != 0
      }
      read.atr = ApplicationTargetedRouting.reason(
        interface: interface, through: descriptor, ntupleEnabled: read.ntupleEnabled)
    }
    resteering.withLock { $0[interface] = read }
    return read
  }

  /// The path's `may_resteer` for RX queue `queue` of `interface`.
  func mayResteer(_ interface: String, queue: Int?, queues: InterfaceQueues) -> [String] {
    guard queues.hasDevice else { return [] }
    let known = resteering(of: interface)
    var found: [String] = []
    if known.ntupleRules > 0 { found.append("ntuple_rules") }
    if known.atr != nil { found.append("atr") }
    if known.ntupleEnabled, let queue, queues.rfs(queue: queue) { found.append("arfs") }
    return found
  }

  func queues(of interface: String) -> InterfaceQueues { shared(of: interface).queues }

  func shared(of interface: String) -> SharedQueues {
    if let known = queues.withLock({ $0[interface] }) { return known }
    let read = SharedQueues(InterfaceQueues(interface: interface))
    queues.withLock { $0[interface] = read }
    return read
  }

  /// NAPI ids already asked of the netdev family: their interface and RX
  /// queue, nil where it does not say (before 6.8, a NAPI of another
  /// namespace, a driver that links no queue to its NAPI).
  private let napis = Mutex<[UInt32: (interface: String, queue: Int?)?]>([:])

  /// The interface and RX queue of NAPI instance `id` in sockaff's own
  /// network namespace: napi-get names its interface, the interface's
  /// queue-get its queue; where the driver links no queue to its NAPIs
  /// (queue-get without a NAPI id), the NAPI's IRQ names the queue whose
  /// interrupt it is. What a kernel answer (SO_INCOMING_NAPI_ID) has in
  /// place of a traced queue.
  func receiveQueue(ofNAPI id: UInt32) -> (interface: String, queue: Int?)? {
    if let known = napis.withLock({ $0[id] }) { return known }
    var found: (interface: String, queue: Int?)?
    if let napi = NetdevNetlink.napi(id: id) {
      var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
      if if_indextoname(napi.ifindex, &name) != nil {
        let interface = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let served = queues(of: interface)
        let queue =
          served.napiByQueue.first { $0.value == id }?.key
          ?? napi.irq.flatMap { irq in served.irqByQueue.first { $0.value.irq == irq }?.key }
        found = (interface, queue)
      }
    }
    napis.withLock { $0[id] = .some(found) }
    return found
  }

  /// nil when nothing was traced (no interface to start from).
  /// `busyPolling`: the socket's, where it applies; `threadCPUs`: where the
  /// holder's threads last ran (the reader, when reads are not traced).
  func path(for answer: SocketAffinity, busyPolling: BusyPolling? = nil, threadCPUs: [Int] = []) -> SteeringPath? {
    guard let interface = answer.interface else { return nil }
    let rxQueue = answer.rxQueue.map(Int.init)
    // A kernel answer's CPU is the latest packet's (SO_INCOMING_CPU).
    let receiveCPU: Int? = answer.cpu
    // The traced reader; else, where every thread of the holder last ran.
    let threadCPU = Set(threadCPUs).count == 1 ? threadCPUs.first : nil
    let readerCPU = answer.consumerCPU ?? threadCPU
    let readerSource = answer.consumerCPU != nil ? "recvmsg" : (threadCPU != nil ? "threads" : nil)
    func path(_ queues: InterfaceQueues?, interrupt: SteeringPath.Interrupt?, unresolved: String?) -> SteeringPath {
      // XDP as this namespace sees it: none for another namespace's interface.
      let xdp = queues == nil ? nil : xdp(of: interface)
      let resteer = queues.map { mayResteer(interface, queue: rxQueue, queues: $0) } ?? []
      return SteeringPath(
        interface: interface, softwareInterface: queues.map { !$0.hasDevice } ?? false, deviceNode: queues?.deviceNode,
        rxQueue: rxQueue, napiID: answer.napiID,
        interrupt: interrupt, rpsCPUs: rxQueue.flatMap { queues?.rpsCPUs[$0] } ?? [],
        rfs: rxQueue.map { queues?.rfs(queue: $0) ?? false } ?? false,
        napiThread: answer.napiID.flatMap { queues?.napiThreads[$0] }, busyPolling: busyPolling, xdp: xdp,
        mayResteer: resteer, receiveCPU: receiveCPU, receiveNode: receiveCPU.flatMap(topology.node(ofCPU:)),
        readerCPU: readerCPU,
        readerNode: readerCPU.flatMap(topology.node(ofCPU:)), readerSource: readerSource, readerCPUs: threadCPUs,
        unresolved: unresolved)
    }
    // sysfs shows the interfaces of the network namespace sockaff runs in.
    if let namespace = answer.networkNamespace, let own = ProcFS.ownNetworkNamespace, namespace != own {
      return path(
        nil, interrupt: nil,
        unresolved: "\(interface) is in network namespace \(namespace), whose queues sysfs does not show here")
    }
    let shared = shared(of: interface)
    let queues = shared.queues
    guard queues.hasDevice else { return path(queues, interrupt: nil, unresolved: nil) }
    guard let rxQueue else {
      let why =
        answer.source == .kernel
        ? "the kernel keeps no RX queue per socket, and its NAPI id names none here (netdev queue-get, 6.8+): "
          + "the tracer records it ('sockaff trace')"
        : "the driver recorded no RX queue"
      return path(queues, interrupt: nil, unresolved: why)
    }
    guard let line = queues.irqByQueue[rxQueue] else {
      return path(
        queues, interrupt: nil,
        unresolved: "no interrupt of \(interface)'s device names RX queue \(rxQueue) in /proc/interrupts")
    }
    let cpus = queues.irqCPUs[line.irq] ?? []
    let interrupt = SteeringPath.Interrupt(
      number: line.irq, name: line.name, cpus: cpus, nodes: topology.nodes(ofCPUs: cpus),
      source: queues.irqSource[rxQueue] ?? "sysfs")
    return path(queues, interrupt: interrupt, unresolved: nil)
  }

  /// The RSS that hashed a socket's packets on `interface`, through the
  /// socket itself (its ioctl asks the socket's own network namespace).
  /// `flowType` nil: no flow to hash (no hash kept), so no hashed fields
  /// to ask the driver for.
  func hashInterface(
    _ interface: String, namespace: UInt64?, flowType: FlowType?, socket: borrowing TargetSocket
  ) -> HashCheck.Interface {
    let key = "\(namespace ?? 0)/\(interface)/\(flowType?.rawValue ?? "-")"
    if let known = rss.withLock({ $0[key] }) { return known }
    let ownNamespace = namespace == nil || namespace == ProcFS.ownNetworkNamespace
    let read: HashCheck.Interface
    if ownNamespace && !shared(of: interface).queues.hasDevice {
      read = .software(interface)
    } else {
      do {
        let configuration = try RSSConfiguration.read(interface: interface, through: socket.descriptor)
        read = .rss(
          configuration,
          fields: flowType.flatMap {
            RSSConfiguration.hashFields(interface: interface, flow: $0, through: socket.descriptor)
          })
      } catch {
        read = .noRSS(interface, why: error.errno?.description ?? error.description)
      }
    }
    rss.withLock { $0[key] = read }
    return read
  }
}
