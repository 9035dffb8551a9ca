import CNuma
import Glibc

/// A Windows-style processor number: processor group and number within it.
public struct ProcessorNumber: Equatable, Hashable, Sendable, Codable {
  public let group: Int
  public let number: Int

  public init(group: Int, number: Int) {
    self.group = group
    self.number = number
  }
}

/// Which NUMA node each CPU belongs to, and the Windows-style processor number
/// derived from that.
///
/// The processor-number rule (Windows numbers logical processors in groups of
/// at most 64, and a NUMA node never spans two groups unless it alone has more
/// than 64 CPUs):
/// 1. Take nodes in ascending node id, each node's CPUs in ascending CPU id.
/// 2. A node goes whole into the current group if the group has room for all
///    of its CPUs; otherwise it starts a new group.
/// 3. A node with more than 64 CPUs fills whole groups of 64 in turn.
/// 4. `number` is the CPU's position within its group.
/// On a host with at most 64 CPUs everything is group 0 and number = position.
public struct Topology: Equatable, Sendable {
  public static let groupSize = 64

  /// CPU ids of each NUMA node.
  public let cpusByNode: [Int: [Int]]
  private let nodeByCPU: [Int: Int]
  private let numberByCPU: [Int: ProcessorNumber]

  public init(cpusByNode: [Int: [Int]]) {
    self.cpusByNode = cpusByNode.mapValues { $0.sorted() }
    var nodeByCPU: [Int: Int] = [:]
    var numberByCPU: [Int: ProcessorNumber] = [:]
    var group = 0
    var used = 0
    for node in cpusByNode.keys.sorted() {
      let cpus = self.cpusByNode[node] ?? []
      if used > 0 && used + cpus.count > Self.groupSize {
        group += 1
        used = 0
      }
      for cpu in cpus {
        if used == Self.groupSize {
          group += 1
          used = 0
        }
        nodeByCPU[cpu] = node
        numberByCPU[cpu] = ProcessorNumber(group: group, number: used)
        used += 1
      }
    }
    self.nodeByCPU = nodeByCPU
    self.numberByCPU = numberByCPU
  }

  public var cpus: [Int] { nodeByCPU.keys.sorted() }
  public var nodes: [Int] { cpusByNode.keys.sorted() }

  public func node(ofCPU cpu: Int) -> Int? { nodeByCPU[cpu] }
  /// The distinct nodes of `cpus`, ascending (unknown CPUs left out).
  public func nodes(ofCPUs cpus: [Int]) -> [Int] { Set(cpus.compactMap { nodeByCPU[$0] }).sorted() }
  public func processorNumber(ofCPU cpu: Int) -> ProcessorNumber? { numberByCPU[cpu] }

  /// The live host's topology from libnuma. Without NUMA support in the kernel
  /// (numa_available() < 0) every configured CPU is on node 0.
  public static func live() -> Topology {
    let cpuCount = Int(sysconf(Int32(_SC_NPROCESSORS_CONF)))
    guard numa_available() >= 0 else {
      return Topology(cpusByNode: [0: Array(0..<max(cpuCount, 1))])
    }
    var cpusByNode: [Int: [Int]] = [:]
    for cpu in 0..<Int(numa_num_configured_cpus()) {
      let node = Int(numa_node_of_cpu(Int32(cpu)))
      guard node >= 0 else { continue }  // possible but not present CPU
      cpusByNode[node, default: []].append(cpu)
    }
    return Topology(cpusByNode: cpusByNode)
  }

  /// A topology read from a sysfs tree: `<root>/devices/system/node/node<N>/cpulist`.
  /// With root "/sys" this is the host; with a fixture directory it is any host.
  public static func fromSysfs(root: String) throws(SockaffError) -> Topology {
    let nodeDirectory = root + "/devices/system/node"
    let names: [String]
    do {
      names = try readDirectoryNames(nodeDirectory)
    } catch {
      throw SockaffError(.environment, operation: "read \(nodeDirectory)", hint: "no NUMA sysfs")
    }
    var cpusByNode: [Int: [Int]] = [:]
    for name in names {
      guard name.hasPrefix("node"), let node = Int(name.dropFirst(4)) else { continue }
      let path = "\(nodeDirectory)/\(name)/cpulist"
      let text = try readTextFile(path)
      do {
        cpusByNode[node] = try CPUList.parse(text)
      } catch {
        throw SockaffError(.environment, operation: "parse \(path)", hint: error.description)
      }
    }
    return Topology(cpusByNode: cpusByNode)
  }
}
