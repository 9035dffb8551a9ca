import ArgumentParser
import SocketAffinity

/// The topology used to map CPUs to NUMA nodes and processor groups: the
/// live host's (libnuma) unless a sysfs tree of another host is named.
struct TopologyOptions: ParsableArguments {
  @Option(
    name: .customLong("sysfs-root"),
    help: ArgumentHelp(
      "Read CPU-to-node topology from <dir>/devices/system/node instead of this host (for tests).",
      valueName: "dir", visibility: .hidden))
  var sysfsRoot: String?

  func topology() throws(SockaffError) -> Topology {
    guard let sysfsRoot else { return .live() }
    return try Topology.fromSysfs(root: sysfsRoot)
  }
}
