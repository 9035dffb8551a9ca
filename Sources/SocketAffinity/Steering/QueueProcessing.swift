/// Where one flow's packets are processed once the NIC picked its RX queue:
/// the queue's IRQ CPU, or under threaded NAPI its kernel thread's, then a
/// busy-polling reader's, then RFS's reader CPU or RPS's CPUs. The one model
/// behind `query --predict` (on the host as it is) and `advise` (on the
/// host as an advised change would leave it: `InterfaceQueues.changing`).
public struct QueueProcessing: Sendable, Equatable {
  /// The CPUs that may process the flow's packets (one: known exactly).
  public let cpus: [Int]
  /// The thread polling the queue's NAPI, under threaded NAPI.
  public let napiThread: NAPIThread?
  /// The steps that moved the packets off the IRQ's CPU, in words.
  public let notes: [String]

  /// Why the model cannot say, in words that name the mode that decides.
  public struct Unknown: Error, Sendable, Equatable {
    public let why: String
  }
}

extension InterfaceQueues {
  /// The processing of a flow on RX queue `queue` whose socket is held by
  /// `pid`. `incomingNAPI`: the socket's latest NAPI id (names the polling
  /// thread where the kernel names none for the queue). `readerCPUs`: every
  /// CPU the holder's threads may run on (one: pinned). `busyPolling`: the
  /// socket's busy polling, if any.
  public func processing(
    queue: Int, pid: Int32, incomingNAPI: UInt32?, readerCPUs: [Int], busyPolling: BusyPolling?
  ) throws(QueueProcessing.Unknown) -> QueueProcessing {
    func unknown(_ why: String) -> QueueProcessing.Unknown { QueueProcessing.Unknown(why: why) }
    let irqCPUs = irqByQueue[queue].map { steadyCPUs(irq: $0.irq) } ?? []
    var notes: [String] = []
    // Where the queue's packets are polled: the IRQ's CPU, or under
    // threaded NAPI wherever its kernel thread runs.
    var polled = irqCPUs
    let napiThread = threaded ? napiThread(queue: queue) ?? incomingNAPI.flatMap { napiThreads[$0] } : nil
    if threaded {
      guard let thread = napiThread else {
        throw unknown(
          "threaded NAPI on \(interface): which kernel thread polls rx-\(queue) is not known (the kernel names no "
            + "NAPI for the queue, and the socket received none yet), and the IRQ's cpu only wakes it")
      }
      guard let pinned = thread.pinnedCPU else {
        throw unknown(
          "threaded NAPI on \(interface): \(thread.name) (pid \(thread.pid)) polls rx-\(queue) wherever the "
            + "scheduler runs it (cpus \(CPUList.joined(thread.allowedCPUs))), not on the IRQ's cpu")
      }
      polled = [pinned]
      notes.append(
        "threaded NAPI: \(thread.name) (pid \(thread.pid)), pinned to cpu \(pinned), polls rx-\(queue); "
          + "the IRQ only wakes it")
    }
    let readerCPU = readerCPUs.count == 1 ? readerCPUs[0] : nil
    if let busyPolling {
      guard let readerCPU, polled == [readerCPU] else {
        let readers = readerCPU.map { "cpu \($0)" } ?? "the reading thread's cpu"
        throw unknown(
          "busy polling (\(busyPolling.description)): \(readers) processes the packets while it polls, "
            + "cpu \(CPUList.joined(polled)) otherwise")
      }
      notes.append("busy polling (\(busyPolling.description)) by the reader, on the same cpu \(readerCPU)")
    }
    let rps = rpsCPUs[queue] ?? []
    var candidates = polled
    if rfs(queue: queue) {
      guard let readerCPU else {
        throw unknown(
          "RFS on rx-\(queue) moves the flow to the cpu that last read it, and pid \(pid)'s threads may run on "
            + "cpus \(CPUList.joined(readerCPUs))")
      }
      candidates = [readerCPU]
      notes.append("RFS on rx-\(queue) moves the flow to its reader's cpu \(readerCPU), where pid \(pid) is pinned")
    } else if !rps.isEmpty {
      candidates = rps
      notes.append("RPS on rx-\(queue) spreads its packets over cpus \(CPUList.joined(rps))")
    }
    return QueueProcessing(cpus: candidates, napiThread: napiThread, notes: notes)
  }

  /// This interface as it would be with IRQ `irq` delivered to `cpus`.
  public func changing(irq: Int, to cpus: [Int]) -> InterfaceQueues {
    var changed = self
    changed.irqCPUs[irq] = cpus
    changed.pendingIRQCPUs[irq] = nil
    return changed
  }

  /// This interface as it would be with NAPI `napiID`'s kernel thread
  /// (threaded NAPI) allowed on `cpus` only.
  public func changing(napiThread napiID: UInt32, to cpus: [Int]) -> InterfaceQueues {
    var changed = self
    if let thread = napiThreads[napiID] {
      changed.napiThreads[napiID] = NAPIThread(
        napiID: napiID, pid: thread.pid, name: thread.name, allowedCPUs: cpus, lastCPU: thread.lastCPU,
        source: thread.source)
    }
    return changed
  }

  /// This interface as it would be with RX queue `queue`'s RPS set to
  /// `cpus` (empty: off).
  public func changing(rpsOf queue: Int, to cpus: [Int]) -> InterfaceQueues {
    var changed = self
    changed.rpsCPUs[queue] = cpus
    return changed
  }
}
