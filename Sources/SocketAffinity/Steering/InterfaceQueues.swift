import Glibc

/// One interrupt line: its number, the name its driver gave it in
/// /proc/interrupts (`virtio0-input.2`, `eth0-TxRx-3`, `mlx5_comp3@pci:…`),
/// the CPUs it is delivered to, and how many times each CPU took it.
public struct InterruptLine: Equatable, Sendable {
  public let irq: Int
  public let name: String
  /// Per CPU, in CPU order: the counts of /proc/interrupts.
  public let counts: [UInt64]
}

/// /proc/interrupts: the numbered lines (per-CPU counts, then the chip and
/// the action names); the named lines (NMI, LOC, ...) are not IRQs and are
/// skipped.
public enum Interrupts {
  public static func parse(_ text: String) -> [Int: InterruptLine] {
    var lines = text.split(separator: "\n")
    guard !lines.isEmpty else { return [:] }
    let cpus = lines.removeFirst().split(separator: " ").filter { $0.hasPrefix("CPU") }.count
    var result: [Int: InterruptLine] = [:]
    for line in lines {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard let label = fields.first, label.hasSuffix(":"), let irq = Int(label.dropLast()) else { continue }
      let counts = fields.dropFirst().prefix(cpus).compactMap { UInt64($0) }
      guard counts.count == cpus else { continue }
      // After the counts: the chip, its hardware IRQ description (one or
      // more fields), then the action names, comma separated; the last
      // field is the last action's name.
      let rest = fields.dropFirst(1 + cpus)
      guard let name = rest.last, rest.count >= 2 else { continue }
      result[irq] = InterruptLine(irq: irq, name: String(name), counts: counts)
    }
    return result
  }
}

/// Where an interface's RX queues are serviced, from sysfs and procfs: each
/// queue's IRQ (found by the driver's IRQ names), that IRQ's CPUs, RPS and
/// RFS per queue, and the device's NUMA node. Read from `sys` and `proc`
/// roots so that a fixture directory can stand in for a host.
public struct InterfaceQueues: Sendable {
  public let interface: String
  public let rxQueues: Int
  /// The device's node (`device/numa_node`); nil when the kernel says -1 or
  /// the interface has no device (loopback, veth).
  public let deviceNode: Int?
  /// Whether the interface is backed by a device at all.
  public let hasDevice: Bool
  /// RX queue number to its interrupt: from the kernel's netdev netlink
  /// family where it has queue-get and napi-get (6.8+), else where the
  /// driver's IRQ names tell.
  public let irqByQueue: [Int: InterruptLine]
  /// Per queue in `irqByQueue`: "netlink" or "sysfs", which answered.
  public let irqSource: [Int: String]
  /// RX queue number to the NAPI instance serving it (netlink only).
  public let napiByQueue: [Int: UInt32]
  /// Every numbered line of /proc/interrupts, to name an IRQ netlink gave.
  public let interrupts: [Int: InterruptLine]
  /// Per IRQ: the CPUs it is delivered to now (effective affinity where the
  /// kernel reports it, else the affinity mask). Settable only here, for
  /// `changing(irq:to:)`'s what-if copies.
  public internal(set) var irqCPUs: [Int: [Int]]
  /// Per IRQ whose effective CPU lies outside its mask: the mask, where its
  /// interrupts go from the next one on (`deliveryCPUs`).
  public internal(set) var pendingIRQCPUs: [Int: [Int]]

  /// Where IRQ `irq`'s interrupts go once any pending move is made: the
  /// prediction model's IRQ CPUs.
  public func steadyCPUs(irq: Int) -> [Int] { pendingIRQCPUs[irq] ?? irqCPUs[irq] ?? [] }
  /// Per RX queue: RPS's CPUs (empty: RPS off) and RFS's flow table size.
  public internal(set) var rpsCPUs: [Int: [Int]]
  public let rfsFlows: [Int: Int]
  /// /proc/sys/net/core/rps_sock_flow_entries: RFS is on only when this
  /// and the queue's rps_flow_cnt are both non-zero.
  public let rfsSocketEntries: Int
  /// Threaded NAPI (`/sys/class/net/DEV/threaded`, 5.12+): each NAPI is
  /// polled by a kernel thread of its own, wherever the scheduler runs it.
  public let threaded: Bool
  /// The polling threads by NAPI id, found by name (`napi/<dev>-<id>`).
  /// Empty unless threaded.
  public internal(set) var napiThreads: [UInt32: NAPIThread]
  /// The device's napi_defer_hard_irqs and gro_flush_timeout (ns): with
  /// both set, the IRQ stays masked while the stack or a busy-polling
  /// reader keeps polling.
  public let deferHardIRQs: Int
  public let groFlushTimeout: Int

  /// `netlink`: ask the kernel's netdev family first (false: sysfs and
  /// procfs only, as for a fixture tree). Only an interface with a device
  /// opens a netlink socket or reads /proc/interrupts.
  public init(interface: String, sys: String = "/sys", proc: String = "/proc", netlink: Bool = true) {
    self.interface = interface
    let net = "\(sys)/class/net/\(interface)"
    let queueNames = directoryEntries("\(net)/queues").filter { $0.hasPrefix("rx-") }
    let queues = queueNames.compactMap { Int($0.dropFirst(3)) }.sorted()
    rxQueues = queues.count
    let device = "\(net)/device"
    hasDevice = access(device, F_OK) == 0
    // A virtio NIC's device is the virtio device; its parent is the PCI
    // function that has the node and the MSI vectors.
    let devices = [device, "\(device)/.."]
    deviceNode = devices.lazy.compactMap { readInteger("\($0)/numa_node") }.first.flatMap { $0 >= 0 ? $0 : nil }
    let msi = devices.lazy.map { directoryEntries("\($0)/msi_irqs").compactMap { Int($0) } }.first { !$0.isEmpty }
    let interrupts = hasDevice ? Interrupts.parse((try? readTextFile("\(proc)/interrupts")) ?? "") : [:]
    self.interrupts = interrupts
    // The device's own MSI vectors; without them (no PCI function), the
    // lines that name the interface or the device.
    let deviceName = realpath(device, nil).map { path in
      defer { free(path) }
      return String(cString: path).split(separator: "/").last.map(String.init) ?? ""
    }
    let candidates =
      msi.map { Set($0) }.map { own in interrupts.filter { own.contains($0.key) } }
      ?? interrupts.filter { line in
        line.value.name.contains(interface) || deviceName.map { !$0.isEmpty && line.value.name.contains($0) } == true
      }
    var byQueue = Self.rxInterrupts(candidates.values, interface: interface, queues: queues)
    var source = byQueue.mapValues { _ in "sysfs" }
    // The kernel's own mapping where it has one: queue -> NAPI -> IRQ.
    var napis: [Int: UInt32] = [:]
    let threaded = hasDevice && (readInteger("\(net)/threaded") ?? 0) > 0
    if hasDevice, netlink, let netlink = NetdevNetlink.Connection(),
      let ifindex = readInteger("\(net)/ifindex").map(UInt32.init)
    {
      for queue in queues {
        guard let napi = netlink.rxQueueNAPI(ifindex: ifindex, queue: UInt32(queue)) else { continue }
        napis[queue] = napi
        // Not every driver links its IRQ to the NAPI: then the names decide.
        guard let irq = netlink.napi(id: napi)?.irq else { continue }
        byQueue[queue] = interrupts[irq] ?? InterruptLine(irq: irq, name: "", counts: [])
        source[queue] = "netlink"
      }
    }
    irqByQueue = byQueue
    irqSource = source
    napiByQueue = napis
    var irqCPUs: [Int: [Int]] = [:]
    var pending: [Int: [Int]] = [:]
    for line in irqByQueue.values {
      let effective = (try? readTextFile("\(proc)/irq/\(line.irq)/effective_affinity_list")).flatMap {
        try? CPUList.parse($0)
      }
      let configured = (try? readTextFile("\(proc)/irq/\(line.irq)/smp_affinity_list")).flatMap {
        try? CPUList.parse($0)
      }
      irqCPUs[line.irq] = (effective?.isEmpty == false ? effective : configured) ?? []
      let steady = Self.deliveryCPUs(effective: effective, configured: configured)
      if steady != irqCPUs[line.irq] { pending[line.irq] = steady }
    }
    self.irqCPUs = irqCPUs
    self.pendingIRQCPUs = pending
    var rps: [Int: [Int]] = [:]
    var rfs: [Int: Int] = [:]
    for queue in queues {
      rps[queue] = (try? readTextFile("\(net)/queues/rx-\(queue)/rps_cpus")).map(Self.parseCPUMask) ?? []
      rfs[queue] = readInteger("\(net)/queues/rx-\(queue)/rps_flow_cnt") ?? 0
    }
    rpsCPUs = rps
    rfsFlows = rfs
    rfsSocketEntries = readInteger("\(proc)/sys/net/core/rps_sock_flow_entries") ?? 0
    self.threaded = threaded
    // The threads by their names (`napi/<dev>-<id>`), not napi-get's pid:
    // on 6.12's virtio-net napi-get named, for a NAPI, the thread whose
    // name carries the next NAPI's id, while the packets were processed
    // where the thread named for it ran (measured in the VM lab).
    napiThreads = threaded ? NAPIThread.byName(interface: interface, proc: proc) : [:]
    deferHardIRQs = readInteger("\(net)/napi_defer_hard_irqs") ?? 0
    groFlushTimeout = readInteger("\(net)/gro_flush_timeout") ?? 0
  }

  /// The thread polling RX queue `queue`'s NAPI (threaded NAPI), where
  /// the queue's NAPI is known (netdev queue-get, 6.8+). Before that only
  /// a packet's NAPI id (traced) names the thread: a driver's transmit
  /// NAPIs have threads too, so no count of threads tells.
  public func napiThread(queue: Int) -> NAPIThread? { napiByQueue[queue].flatMap { napiThreads[$0] } }

  /// The RX (or combined) queue interrupts among `lines`, by the queue
  /// number their names end in: `virtio0-input.2`, `eth0-TxRx-2`,
  /// `eth0-rx-2`, `mlx5_comp2@pci:…`. Transmit-only lines (`output`, `tx`)
  /// are not receive queues. A queue with two candidates stays unresolved.
  static func rxInterrupts(_ lines: some Sequence<InterruptLine>, interface: String, queues: [Int]) -> [Int:
    InterruptLine]
  {
    var found: [Int: [InterruptLine]] = [:]
    for line in lines {
      let name = line.name.split(separator: "@").first.map(String.init) ?? line.name
      let lower = name.lowercased()
      let receives = ["input", "rx", "comp"].contains { lower.contains($0) }
      guard receives, !lower.contains("output") else { continue }
      let digits = name.reversed().prefix { $0.isNumber }
      guard !digits.isEmpty, let queue = Int(String(digits.reversed())), queues.contains(queue) else { continue }
      found[queue, default: []].append(line)
    }
    return found.compactMapValues { $0.count == 1 ? $0[0] : nil }
  }

  /// sysfs CPU masks: hex words, most significant first, comma separated
  /// ("00000000,00000003" is CPUs 0 and 1).
  /// Where an IRQ is delivered: its effective affinity, unless that lies
  /// outside the configured mask. x86 moves an MSI without interrupt
  /// remapping when it acknowledges the next interrupt, so until the queue
  /// takes one the effective CPU is still the old one (seen in the VM lab: a
  /// queue left out of the RSS table kept an effective CPU its new mask
  /// excluded). That one interrupt still lands on the old CPU; every later
  /// one where the mask says, and that is the queue's steady state.
  static func deliveryCPUs(effective: [Int]?, configured: [Int]?) -> [Int] {
    guard let effective, !effective.isEmpty else { return configured ?? [] }
    guard let configured, !configured.isEmpty, !Set(effective).isSubset(of: configured) else { return effective }
    return configured
  }

  public static func parseCPUMask(_ text: String) -> [Int] {
    var cpus: [Int] = []
    let words = text.trimmingWhitespace().split(separator: ",").reversed()
    for (index, word) in words.enumerated() {
      guard let value = UInt32(word, radix: 16) else { return [] }
      for bit in 0..<32 where value & (1 << bit) != 0 { cpus.append(index * 32 + bit) }
    }
    return cpus
  }

  /// A sysfs CPU mask for `cpus`: hex words of 32 bits, most significant
  /// first, comma separated (`parseCPUMask`'s inverse).
  public static func cpuMask(_ cpus: [Int]) -> String {
    guard let highest = cpus.max() else { return "0" }
    var words = [UInt32](repeating: 0, count: highest / 32 + 1)
    for cpu in cpus where cpu >= 0 { words[cpu / 32] |= 1 << UInt32(cpu % 32) }
    return words.reversed().map { word in
      let hex = String(word, radix: 16)
      return String(repeating: "0", count: 8 - hex.count) + hex
    }.joined(separator: ",")
  }

  /// RFS steers this queue's flows to their readers' CPUs.
  public func rfs(queue: Int) -> Bool { (rfsFlows[queue] ?? 0) > 0 && rfsSocketEntries > 0 }
}
