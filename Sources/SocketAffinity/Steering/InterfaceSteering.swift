import Glibc
import SystemPackage

/// `status`'s view of one NIC: its RX queues, whether RSS spreads over them
/// and with what (hash function, key size, table size, ntuple rules), and
/// each queue's IRQ → CPUs → nodes and RPS (what `Get-NetAdapterRss` shows
/// on Windows).
public struct InterfaceSteering: Sendable, Codable, Equatable {
  public struct Queue: Sendable, Codable, Equatable {
    public let queue: Int
    public let irq: Int?
    public let irqName: String?
    public let cpus: [Int]
    public let nodes: [Int]
    public let rpsCPUs: [Int]
    public let rfs: Bool
    /// Which told the queue's IRQ: "netlink" or "sysfs" (nil: neither).
    public let irqSource: String?

    enum CodingKeys: String, CodingKey {
      case queue, irq, cpus, nodes, rfs
      case irqName = "irq_name"
      case irqSource = "irq_source"
      case rpsCPUs = "rps_cpus"
    }
  }

  public let interface: String
  public let deviceNode: Int?
  public let queues: Int
  /// RSS configured with a table to spread by (ETHTOOL_GRSSH answered with one).
  public let rss: Bool
  /// Why not, when the kernel said (e.g. "Operation not supported").
  public let rssError: String?
  public let hashFunction: String?
  /// Where the RSS configuration came from: "netlink" or "ioctl".
  public let rssSource: String?
  public let keyBytes: Int?
  public let tableSize: Int?
  public let ntupleRules: Int?
  /// ethtool's input transform (`none`, `symmetric-xor`, ...), with RSS.
  public let inputTransform: String?
  /// The NIC hands the kernel its RSS hash with each packet (receive-hashing
  /// on): what `hash_check` verifies predictions against.
  public let rxhash: Bool?
  /// Threaded NAPI: kernel threads, not the IRQs' CPUs, poll the queues.
  public let threadedNAPI: Bool
  /// XDP programs on the interface (nil: none), their cpumaps and xskmaps.
  public let xdp: InterfaceXDP?
  public let rxQueues: [Queue]
  /// What `SteeringSnapshot` keeps of it (key and table whole): not in
  /// the JSON.
  public var snapshot: SteeringSnapshot.NIC? = nil

  enum CodingKeys: String, CodingKey {
    case interface, queues, rss
    case deviceNode = "device_node"
    case rssError = "rss_error"
    case hashFunction = "hash_function"
    case rssSource = "rss_source"
    case keyBytes = "key_bytes"
    case tableSize = "table_size"
    case ntupleRules = "ntuple_rules"
    case inputTransform = "input_transform"
    case rxhash
    case threadedNAPI = "threaded_napi"
    case xdp
    case rxQueues = "rx_queues"
  }

  /// Every interface with a device in sockaff's network namespace, by name
  /// (software interfaces, loopback and veth, have no queues to steer).
  /// `queues`: where to take each interface's queues from (a cache shared
  /// with the sockets' paths), instead of reading them here.
  public static func all(
    topology: Topology, sys: String = "/sys", queues cached: ((String) -> InterfaceQueues)? = nil
  ) -> [InterfaceSteering] {
    let names = directoryEntries("\(sys)/class/net").sorted()
    let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    defer { if socket >= 0 { close(socket) } }
    return names.compactMap { (name) -> InterfaceSteering? in
      let queues = cached?(name) ?? InterfaceQueues(interface: name, sys: sys)
      guard queues.hasDevice else { return nil }
      var configuration: RSSConfiguration?
      var failure: String?
      if socket >= 0 {
        do {
          configuration = try RSSConfiguration.read(interface: name, through: FileDescriptor(rawValue: socket))
        } catch let error as SockaffError {
          failure = error.errno?.description ?? error.description
        } catch {
          failure = "\(error)"
        }
      }
      let rxQueues = (0..<queues.rxQueues).map { queue in
        let line = queues.irqByQueue[queue]
        let cpus = line.flatMap { queues.irqCPUs[$0.irq] } ?? []
        return Queue(
          queue: queue, irq: line?.irq, irqName: line?.name, cpus: cpus,
          nodes: topology.nodes(ofCPUs: cpus), rpsCPUs: queues.rpsCPUs[queue] ?? [],
          rfs: queues.rfs(queue: queue), irqSource: queues.irqSource[queue])
      }
      var nic = InterfaceSteering(
        interface: name, deviceNode: queues.deviceNode, queues: queues.rxQueues,
        rss: configuration.map { !$0.table.isEmpty } ?? false, rssError: failure,
        hashFunction: configuration.map { $0.hashFunction.description }, rssSource: configuration?.source,
        keyBytes: configuration?.key.count,
        tableSize: configuration?.table.count, ntupleRules: configuration?.ntupleRules,
        inputTransform: configuration.map { $0.inputTransform.description }, rxhash: configuration?.deliversHash,
        threadedNAPI: queues.threaded, xdp: InterfaceXDP.read(interface: name), rxQueues: rxQueues)
      nic.snapshot = SteeringSnapshot.NIC(queues: queues, configuration: configuration)
      return nic
    }
  }
}
