import Foundation
import XCTest

@testable import SocketAffinity

/// `advise`'s rules on the 4-queue virtio-net fixture (HostCheckTests's):
/// the NIC on node 1; rx-0..3's IRQs 25, 27, 29, 31 on CPUs 0, 1, 2, 3
/// (node 0); RPS on rx-2 (CPUs 0 and 7), RFS on rx-3. Each change is
/// checked by its file, its values and its effect by the prediction model.
final class AdviceTests: XCTestCase {
  let topology = Topology(cpusByNode: [0: [0, 1, 2, 3], 1: [4, 5, 6, 7]])
  let sys = Fixture.path("rss-virtio/sys")
  let proc = Fixture.path("rss-virtio/proc")

  func nic(table: [UInt32]? = (0..<128).map { UInt32($0 % 4) }, ntuple: Int = 0) -> HostCheck.NIC {
    HostCheck.NIC(
      queues: InterfaceQueues(interface: "eth0", sys: sys, proc: proc, netlink: false), table: table,
      ntupleRules: ntuple)
  }

  /// A traced socket on eth0's `queue`.
  func socket(
    fd: Int32, cookie: UInt64, queue: UInt32, packets: UInt64, busyPolling: BusyPolling? = nil, napiID: UInt32? = nil
  )
    -> SocketAffinity
  {
    var answer = SocketAffinity(
      pid: 812, fd: fd, command: "server", networkNamespace: nil, cookie: cookie, family: .inet, transport: .udp,
      local: "10.0.0.2:\(7000 + fd)", remote: "10.0.0.1:4000", connected: true, cpu: 1, processor: nil,
      numaNode: 0, rxQueue: queue, napiID: napiID, ifindex: 2, interface: "eth0", packets: packets, bytes: packets * 64,
      cpuChanges: 0, cpus: [], otherCPUsPackets: 0, firstSeen: nil, lastSeen: nil, kernelIncomingCPU: 1, source: .bpf,
      consumerCPU: nil, reads: nil, threadNodes: [], locality: nil, crossNUMA: nil)
    if let busyPolling {
      answer.path = SteeringPath(
        interface: "eth0", deviceNode: 1, rxQueue: Int(queue), napiID: nil, interrupt: nil, rpsCPUs: [], rfs: false,
        busyPolling: busyPolling, receiveCPU: 1, receiveNode: 0, readerCPU: nil, readerNode: nil, unresolved: nil)
    }
    return answer
  }

  func advise(
    _ nic: HostCheck.NIC, sockets: [SocketAffinity] = [], readers: [UInt64: [Int]] = [:],
    inScope: @escaping (SocketAffinity) -> Bool = { _ in true }, scoped: Bool = false, irqbalance: Bool = false
  ) -> ReceiveAdvice {
    AdvicePlanning(topology: topology, sys: sys, proc: proc).advise(
      nics: [nic], sockets: sockets, readers: readers, inScope: inScope, scoped: scoped, irqbalanceRunning: irqbalance)
  }

  /// No traced socket: RPS off where RSS spreads, and the IRQs onto the
  /// NIC's node, one CPU each; RFS's rx-3 is left alone, and said.
  func testWithoutSocketsTheNICDecides() throws {
    let advice = advise(nic())
    let summary = advice.changes.map { "\($0.what.rawValue) rx-\($0.rxQueue ?? -1) \($0.before) -> \($0.after)" }
    XCTAssertEqual(
      summary,
      [
        "rps_cpus rx-2 00000000,00000081 -> 0", "irq_affinity rx-0 0-7 -> 4", "irq_affinity rx-1 1 -> 5",
        "irq_affinity rx-2 2 -> 6",
      ])
    XCTAssertEqual(advice.changes[0].path, "\(sys)/class/net/eth0/queues/rx-2/rps_cpus")
    XCTAssertEqual(advice.changes[1].path, "\(proc)/irq/25/smp_affinity_list")
    XCTAssertEqual(advice.changes[1].command, "echo 4 > \(proc)/irq/25/smp_affinity_list")
    XCTAssertTrue(advice.changes.allSatisfy { $0.effects.isEmpty }, "no traced socket to move")
    XCTAssertEqual(advice.withheld.map(\.rxQueue), [3])
    XCTAssertTrue(advice.withheld[0].why.hasPrefix("RFS is on for rx-3"), advice.withheld[0].why)
    XCTAssertEqual(advice.notes, [])
  }

  /// The readers decide: rx-0's reader is on node 0, where its IRQ already
  /// is (no change); rx-1's on node 1, so its IRQ moves there, and the
  /// model gives the socket's CPU before and after.
  func testTheReadersNodeDecidesAndEachEffectIsPredicted() throws {
    let sockets = [
      socket(fd: 5, cookie: 1, queue: 0, packets: 50), socket(fd: 6, cookie: 2, queue: 1, packets: 100),
      socket(fd: 7, cookie: 3, queue: 2, packets: 10),
    ]
    let advice = advise(nic(), sockets: sockets, readers: [1: [0, 1], 2: [4, 5], 3: [0, 4]])
    let irqMoves = advice.changes.filter { $0.what == .irqAffinity }
    XCTAssertEqual(irqMoves.map(\.rxQueue), [1, 2], "rx-0's IRQ is on its reader's node already")
    let rx1 = irqMoves[0]
    XCTAssertEqual(rx1.after, "4", "node 1's least loaded CPU")
    XCTAssertEqual(rx1.reason, "100 of the 100 packets traced on rx-1 are read on node 1")
    XCTAssertEqual(rx1.effects.count, 1)
    let effect = try XCTUnwrap(rx1.effects.first)
    XCTAssertEqual(effect.beforeCPUs, [1])
    XCTAssertEqual(effect.beforeNodes, [0])
    XCTAssertEqual(effect.afterCPUs, [4])
    XCTAssertEqual(effect.afterNodes, [1])
    XCTAssertEqual(
      effect.line,
      "pid 812 fd 6 10.0.0.2:7006 <- 10.0.0.1:4000: received on CPU 4 (node 1) instead of CPU 1 (node 0); "
        + "read on node 1")
    // rx-2's one socket is read on both nodes: not a vote, said; the queue
    // goes to the NIC's node, and RPS (0,7) off: the socket moves too.
    XCTAssertEqual(advice.withheld.first { $0.socket == "pid 812 fd 7" }?.rxQueue, 2)
    let rx2 = irqMoves[1]
    XCTAssertEqual(rx2.after, "5")
    XCTAssertEqual(rx2.effects.map(\.beforeCPUs), [[0, 7]], "RPS's CPUs before")
    XCTAssertEqual(rx2.effects.map(\.afterCPUs), [[5]])
    let rps = try XCTUnwrap(advice.changes.first { $0.what == .rpsCPUs })
    XCTAssertEqual(rps.effects, rx2.effects, "one effect: the changes together")
  }

  /// --pid/--port/--cgroup: only the in-scope sockets' queues change, and
  /// the others on them are shown moving too.
  func testAScopeLimitsTheQueues() throws {
    let sockets = [
      socket(fd: 5, cookie: 1, queue: 1, packets: 50), socket(fd: 6, cookie: 2, queue: 1, packets: 100),
      socket(fd: 7, cookie: 3, queue: 2, packets: 10),
    ]
    let advice = advise(
      nic(), sockets: sockets, readers: [1: [6], 2: [0], 3: [6]], inScope: { $0.fd == 5 }, scoped: true)
    XCTAssertEqual(advice.changes.map(\.rxQueue), [1], "rx-2 (RPS) and the NIC-node moves are out of scope")
    XCTAssertEqual(advice.changes[0].reason, "50 of the 50 packets traced on rx-1 are read on node 1")
    XCTAssertEqual(advice.changes[0].effects.map(\.fd), [5, 6])
    XCTAssertEqual(advice.changes[0].effects.map(\.inScope), [true, false])
  }

  /// What the model cannot predict is not advised: busy polling, ntuple
  /// rules.
  func testWhatCannotBePredictedIsWithheld() throws {
    let polling = BusyPolling(socketMicroseconds: 50, prefer: false, busyRead: 0, busyPoll: 0)
    let advice = advise(
      nic(), sockets: [socket(fd: 5, cookie: 1, queue: 1, packets: 50, busyPolling: polling)], readers: [1: [4]],
      inScope: { _ in true }, scoped: true)
    XCTAssertEqual(advice.changes, [])
    XCTAssertTrue(advice.withheld[0].why.hasPrefix("busy polling (SO_BUSY_POLL 50 us)"), advice.withheld[0].why)
    let ntuple = advise(nic(ntuple: 2))
    XCTAssertEqual(ntuple.changes, [])
    XCTAssertEqual(ntuple.withheld.map(\.interface), ["eth0"])
    XCTAssertTrue(ntuple.withheld[0].why.hasPrefix("2 ntuple rules override RSS"), ntuple.withheld[0].why)
  }

  /// Without RSS (no table), RPS stays and its mask is what moves;
  /// irqbalance running adds the ban to make the IRQs stay.
  func testWithoutRSSTheRPSMaskMovesAndIRQBalanceIsNamed() throws {
    let advice = advise(
      nic(table: nil), sockets: [socket(fd: 5, cookie: 1, queue: 2, packets: 9)],
      readers: [1: [5]], irqbalance: true)
    let rps = try XCTUnwrap(advice.changes.first { $0.rxQueue == 2 })
    XCTAssertEqual(rps.what, .rpsCPUs)
    XCTAssertEqual(rps.after, "000000f0", "node 1's CPUs 4-7")
    XCTAssertEqual(rps.effects.map(\.afterCPUs), [[4, 5, 6, 7]])
    XCTAssertEqual(rps.effects.map(\.afterNodes), [[1]])
    XCTAssertEqual(advice.notes.count, 1)
    XCTAssertTrue(advice.notes[0].contains("--banirq=25 --banirq=27"), advice.notes[0])
  }

  /// An effective affinity outside the mask is a move still pending (x86
  /// moves an MSI at its next interrupt): the mask is where it goes next.
  func testAPendingIRQMoveIsWhereTheMaskSays() {
    XCTAssertEqual(InterfaceQueues.deliveryCPUs(effective: [5], configured: [7]), [7])
    XCTAssertEqual(InterfaceQueues.deliveryCPUs(effective: [3], configured: [0, 1, 2, 3]), [3], "settled")
    XCTAssertEqual(InterfaceQueues.deliveryCPUs(effective: nil, configured: [2, 3]), [2, 3], "no effective affinity")
    XCTAssertEqual(InterfaceQueues.deliveryCPUs(effective: [], configured: nil), [])
  }

  func testCPUMasksRoundTrip() {
    for cpus in [[], [0], [1, 5], [4, 5, 6, 7], [0, 31, 32, 63, 64]] {
      XCTAssertEqual(InterfaceQueues.parseCPUMask(InterfaceQueues.cpuMask(cpus)), cpus)
    }
    XCTAssertEqual(InterfaceQueues.cpuMask([0, 33]), "00000002,00000001")
  }

  // MARK: apply and undo, on a scratch tree standing in for sysfs/procfs

  func scratch() throws -> (root: String, application: AdviceApplication, changes: [ReceiveAdvice.Change]) {
    let root = FileManager.default.temporaryDirectory.appending(path: "advice-\(UUID().uuidString)").path
    let irq = "\(root)/proc/irq/25"
    let queue = "\(root)/sys/class/net/eth0/queues/rx-2"
    for directory in [irq, queue, "\(root)/proc/sys/kernel/random", "\(root)/run"] {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    try "0-7\n".write(toFile: "\(irq)/smp_affinity_list", atomically: false, encoding: .utf8)
    try "00000081\n".write(toFile: "\(queue)/rps_cpus", atomically: false, encoding: .utf8)
    try "boot-a\n".write(toFile: "\(root)/proc/sys/kernel/random/boot_id", atomically: false, encoding: .utf8)
    let application = AdviceApplication(undoPath: "\(root)/run/undo.json", sys: "\(root)/sys", proc: "\(root)/proc")
    let changes: [ReceiveAdvice.Change] = [
      .init(
        what: .rpsCPUs, interface: "eth0", rxQueue: 2, irq: nil, path: "\(queue)/rps_cpus", before: "00000081",
        after: "0", reason: "", effects: []),
      .init(
        what: .irqAffinity, interface: "eth0", rxQueue: 2, irq: 25, path: "\(irq)/smp_affinity_list", before: "0-7",
        after: "5", reason: "", effects: []),
    ]
    return (root, application, changes)
  }

  func read(_ path: String) throws -> String {
    try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func testApplyThenUndoRestoresEveryValue() throws {
    let (root, application, changes) = try scratch()
    defer { try? FileManager.default.removeItem(atPath: root) }
    let undo = try application.apply(changes)
    XCTAssertEqual(undo.bootID, "boot-a")
    XCTAssertEqual(try read(changes[0].path), "0")
    XCTAssertEqual(try read(changes[1].path), "5")
    XCTAssertEqual(try application.load(), undo, "the undo file holds what was applied")
    // A second --apply refuses while the first is not undone.
    XCTAssertThrowsError(try application.apply(changes)) { XCTAssertEqual(($0 as? SockaffError)?.kind, .conflict) }
    XCTAssertEqual(try application.undo().entries.count, 2)
    XCTAssertEqual(try read(changes[0].path), "00000081")
    XCTAssertEqual(try read(changes[1].path), "0-7")
    XCTAssertFalse(FileManager.default.fileExists(atPath: application.undoPath))
    XCTAssertThrowsError(try application.undo()) { XCTAssertEqual(($0 as? SockaffError)?.kind, .noUndo) }
  }

  /// A file changed since --apply, another boot, or a path advise does not
  /// write: stale, and nothing is restored.
  func testAStaleUndoFileChangesNothing() throws {
    let (root, application, changes) = try scratch()
    defer { try? FileManager.default.removeItem(atPath: root) }
    _ = try application.apply(changes)
    try "6\n".write(toFile: changes[1].path, atomically: false, encoding: .utf8)
    XCTAssertThrowsError(try application.undo()) { error in
      XCTAssertEqual((error as? SockaffError)?.kind, .staleUndo)
      XCTAssertTrue("\(error)".contains("holds 6, not the 5 applied"), "\(error)")
    }
    XCTAssertEqual(try read(changes[0].path), "0", "the other file is not restored either")
    try "5\n".write(toFile: changes[1].path, atomically: false, encoding: .utf8)
    try "boot-b\n".write(toFile: "\(root)/proc/sys/kernel/random/boot_id", atomically: false, encoding: .utf8)
    XCTAssertThrowsError(try application.undo()) { XCTAssertEqual(($0 as? SockaffError)?.kind, .staleUndo) }
    try "boot-a\n".write(toFile: "\(root)/proc/sys/kernel/random/boot_id", atomically: false, encoding: .utf8)
    let forged = try read(application.undoPath).replacingOccurrences(of: "smp_affinity_list", with: "../../x")
    try forged.write(toFile: application.undoPath, atomically: false, encoding: .utf8)
    XCTAssertThrowsError(try application.undo()) { error in
      XCTAssertEqual((error as? SockaffError)?.kind, .staleUndo)
      XCTAssertTrue("\(error)".contains("not a file advise writes"), "\(error)")
    }
  }

  /// An RSS table entry names a device, nothing below or beside it, and
  /// holds queue numbers; a thread entry names a NAPI thread's /proc/PID:
  /// anything else in an undo file is not sockaff's.
  func testTableAndThreadEntriesNameWhatAdviseWrites() {
    let application = AdviceApplication(undoPath: "/nonexistent", sys: "/s", proc: "/p")
    func entry(_ path: String, after: String = "0,1,2,3") -> AdviceApplication.UndoFile.Entry {
      .init(what: .rssTable, path: path, before: "0,1,0,1", after: after)
    }
    XCTAssertTrue(application.allowed(entry("/s/class/net/eth0")))
    for path in ["/s/class/net/eth0/queues", "/s/class/net/..", "/s/class/net/", "/sys/class/net/eth0", "/p/irq/5"] {
      XCTAssertFalse(application.allowed(entry(path)), path)
    }
    XCTAssertFalse(application.allowed(entry("/s/class/net/eth0", after: "0,1;reboot")))
    XCTAssertEqual(AdviceApplication.device("/s/class/net/eth0"), "eth0")
    // A NAPI thread's entry: /proc/PID of a thread named napi/..., nothing else.
    func thread(_ path: String, _ name: String?) -> AdviceApplication.UndoFile.Entry {
      var entry = AdviceApplication.UndoFile.Entry(what: .napiThreadAffinity, path: path, before: "0-7", after: "4")
      entry.thread = name
      return entry
    }
    XCTAssertTrue(application.allowed(thread("/p/413", "napi/eth0-8194")))
    XCTAssertFalse(application.allowed(thread("/p/413", "sshd")), "only NAPI threads")
    XCTAssertFalse(application.allowed(thread("/p/413", nil)))
    XCTAssertFalse(application.allowed(thread("/p/self", "napi/eth0-8194")))
    XCTAssertFalse(application.allowed(thread("/p/413/task/413", "napi/eth0-8194")))
  }

  /// A write that fails rolls back the ones before it, and leaves no undo file.
  func testAFailedWriteRollsBack() throws {
    let (root, application, changes) = try scratch()
    defer { try? FileManager.default.removeItem(atPath: root) }
    let directory = "\(root)/proc/irq/26/smp_affinity_list"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let failing = ReceiveAdvice.Change(
      what: .irqAffinity, interface: "eth0", rxQueue: 1, irq: 26, path: directory, before: "0", after: "5", reason: "",
      effects: [])
    XCTAssertThrowsError(try application.apply(changes + [failing])) { error in
      XCTAssertTrue("\(error)".contains("Is a directory (rolled back: nothing changed)"), "\(error)")
    }
    XCTAssertEqual(try read(changes[0].path), "00000081")
    XCTAssertEqual(try read(changes[1].path), "0-7")
    XCTAssertFalse(FileManager.default.fileExists(atPath: application.undoPath))
  }

  /// A table that leaves rx-2 and rx-3 out (`ethtool -X weight 1 1 0 0`):
  /// the even table over all four, alone, with each flow whose NIC hash is
  /// known moved to its bucket's new queue, and its processing CPU by the
  /// model (the queue's IRQ CPU). A flow whose bucket keeps its queue, and
  /// one with no NIC hash, are no effect.
  func testATableThatLeavesQueuesOutIsSpreadEvenly() throws {
    let weighted: [UInt32] = (0..<128).map { UInt32($0 % 2) }
    func hashed(_ answer: SocketAffinity, _ hash: UInt32?) -> SocketAffinity {
      var answer = answer
      answer.hashCheck = HashCheck(
        observedHash: hash, fromNIC: hash != nil, predictedHash: hash, verdict: hash == nil ? .unverifiable : .verified,
        reason: "")
      return answer
    }
    // Buckets: 6 % 128 = 6 (rx-0 -> rx-2), 131 % 128 = 3 (rx-1 -> rx-3), 4 (rx-0 stays).
    let sockets = [
      hashed(socket(fd: 5, cookie: 1, queue: 0, packets: 9), 6),
      hashed(socket(fd: 6, cookie: 2, queue: 1, packets: 9), 131),
      hashed(socket(fd: 7, cookie: 3, queue: 0, packets: 9), 4),
      hashed(socket(fd: 8, cookie: 4, queue: 1, packets: 9), nil),
    ]
    let advice = advise(nic(table: weighted), sockets: sockets, readers: [1: [5], 2: [5], 3: [5], 4: [5]])
    XCTAssertEqual(advice.changes.count, 1, "the table alone: \(advice.changes.map(\.what))")
    let change = try XCTUnwrap(advice.changes.first)
    XCTAssertEqual(change.what, .rssTable)
    XCTAssertNil(change.rxQueue)
    XCTAssertEqual(change.path, "\(sys)/class/net/eth0")
    XCTAssertEqual(change.command, "ethtool -X eth0 equal 4")
    XCTAssertEqual(ReceiveAdvice.Change.tableInWords(change.before), "equal 2")
    XCTAssertEqual(ReceiveAdvice.Change.tableInWords("0,0,0,1,1,1,0,1"), "weight 1 1", "ethtool's blocks")
    XCTAssertEqual(ReceiveAdvice.Change.tableInWords("0,0,2,2"), "weight 1 0 1")
    XCTAssertEqual(change.after.split(separator: ",").count, 128)
    XCTAssertTrue(change.reason.contains("rx-2, rx-3"), change.reason)
    XCTAssertEqual(change.effects.map(\.fd), [5, 6])
    XCTAssertEqual(change.effects.map(\.rxQueue), [0, 1])
    XCTAssertEqual(change.effects.map(\.afterRxQueue), [2, 3])
    XCTAssertEqual(change.effects.map(\.beforeCPUs), [[0], [1]], "rx-0's and rx-1's IRQ CPUs")
    XCTAssertEqual(
      change.effects.map(\.afterCPUs), [[0, 7], [5]],
      "rx-2's RPS mask (it stays: the RPS rule waits); RFS on rx-3: the reader's CPU")
    XCTAssertTrue(change.effects[1].line.contains("received on rx-3 (now rx-1)"), change.effects[1].line)
    XCTAssertTrue(advice.notes.contains { $0.contains("ask advise again") }, "\(advice.notes)")

    // Scoped to one socket: the table is the NIC's, withheld.
    let scoped = advise(
      nic(table: weighted), sockets: sockets, readers: [1: [5]], inScope: { $0.fd == 5 }, scoped: true)
    XCTAssertFalse(scoped.changes.contains { $0.what == .rssTable })
    XCTAssertTrue(scoped.withheld.contains { $0.why.contains("RSS table leaves queues out") }, "\(scoped.withheld)")
  }

  /// Threaded NAPI (the threaded-napi fixture: napi/eth0-8193, pid 412,
  /// pinned to CPU 6; napi/eth0-8194, pid 413, on CPUs 0-7): the queue's
  /// kernel thread is pinned to a CPU of its readers' node, the one with
  /// the fewest of the NIC's pinned threads; a thread already on that node
  /// stays. The effect: from any CPU the scheduler picks to that one.
  func testUnderThreadedNAPIThePollingThreadIsPinned() throws {
    let sys = Fixture.path("threaded-napi/sys")
    let proc = Fixture.path("threaded-napi/proc")
    let threaded = HostCheck.NIC(
      queues: InterfaceQueues(interface: "eth0", sys: sys, proc: proc, netlink: false),
      table: (0..<128).map { UInt32($0 % 4) })
    XCTAssertTrue(threaded.queues.threaded)
    let roaming = socket(fd: 5, cookie: 1, queue: 0, packets: 30, napiID: 8194)
    let pinned = socket(fd: 6, cookie: 2, queue: 1, packets: 30, napiID: 8193)
    let advice = AdvicePlanning(topology: topology, sys: sys, proc: proc).advise(
      nics: [threaded], sockets: [roaming, pinned], readers: [1: [5], 2: [7]], irqbalanceRunning: false)
    let pins = advice.changes.filter { $0.what == .napiThreadAffinity }
    XCTAssertEqual(pins.count, 1, "rx-1's thread is on node 1 already: \(advice.changes.map(\.command))")
    let pin = try XCTUnwrap(pins.first)
    XCTAssertEqual(pin.rxQueue, 0)
    XCTAssertEqual(pin.path, "\(proc)/413")
    XCTAssertEqual(pin.before, "0-7")
    XCTAssertEqual(pin.after, "4", "node 1's CPU with no pinned thread (CPU 6 has napi/eth0-8193)")
    XCTAssertEqual(pin.command, "taskset -pc 4 413")
    XCTAssertTrue(pin.reason.hasPrefix("threaded NAPI: napi/eth0-8194 polls rx-0"), pin.reason)
    XCTAssertEqual(pin.effects.map(\.fd), [5])
    XCTAssertEqual(pin.effects.first?.beforeCPUs, Array(0...7))
    XCTAssertEqual(pin.effects.first?.afterCPUs, [4])
    XCTAssertFalse(advice.changes.contains { $0.what == .irqAffinity }, "the IRQ only wakes the thread")
  }
}
