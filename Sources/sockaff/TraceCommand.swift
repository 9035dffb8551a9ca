import ArgumentParser
import Glibc
import SocketAffinity

struct TraceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "trace",
    abstract: "Attach the receive-path tracer to the root cgroup v2.",
    discussion: paragraphs(
      """
      By default the program and maps are pinned under /sys/fs/bpf/sockaff and tracing
      continues after this command returns, until 'sockaff detach'. Attaching twice is
      harmless: the second call reports that it is already attached.
      """))

  @Flag(help: "Stay in the foreground and detach on exit, SIGINT, SIGTERM or SIGHUP.")
  var foreground = false

  @Flag(
    inversion: .prefixedNo,
    help: "Trace where sockets are read (recvmsg, kernel 6.3+) to measure locality; a small cost per read.")
  var locality = true

  @Flag(
    help: ArgumentHelp(
      "Count one read in \(Tracer.readSample) at random, as that many: reads and locality become estimates, "
        + "each read costs about an empty program's."))
  var sampledReads = false

  @Option(
    help: ArgumentHelp(
      "Sockets that can have every receiving CPU counted apart at once (default: 16 MiB / (CPUs x 48 B), at most 16384).",
      valueName: "n"))
  var poolSlots: Int?

  @OptionGroup var topologyOptions: TopologyOptions

  func validate() throws {
    if sampledReads && !locality {
      throw ValidationError("--sampled-reads samples traced reads: it cannot go with --no-locality")
    }
    if let poolSlots, !PoolSize.allowedSlots.contains(poolSlots) {
      throw ValidationError(
        "--pool-slots must be \(PoolSize.allowedSlots.lowerBound)...\(PoolSize.allowedSlots.upperBound), not \(poolSlots)"
      )
    }
  }

  func run() throws {
    try reporting {
      let tracer = Tracer(
        locality: locality, sampledReads: sampledReads, topology: try topologyOptions.topology(),
        poolSlots: poolSlots ?? PoolSize.defaultSlots(possibleCPUs: PoolSize.possibleCPUs))
      // What this kernel makes sockaff do without: said once, at attach.
      if locality, let reads = KernelFeatures.feature(KernelFeatures.readTracepoint), reads.state != .yes {
        Output.standardError("sockaff: reads are not traced (\(reads.reason)): locality is sampled from thread CPUs")
      }
      guard foreground else {
        switch try tracer.attach() {
        case .attached:
          print("sockaff: attached to \(Mounts.cgroup2Root(in: try Mounts.current()) ?? "the cgroup v2 root")")
        case .alreadyAttached: print("sockaff: already attached")
        }
        return
      }
      // Block the signals before attaching: one that arrives during load is
      // then taken by sigwait below and still detaches cleanly.
      var signals = sigset_t()
      sigemptyset(&signals)
      for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
      pthread_sigmask(SIG_BLOCK, &signals, nil)
      let session = try tracer.attachForeground()
      print("sockaff: tracing in the foreground on \(session.cgroup); Ctrl-C to detach")
      fflush(nil)  // all streams: the line must reach a pipe before we block
      var received: Int32 = 0
      sigwait(&signals, &received)
      session.close()
      Output.standardError("sockaff: detached")
    }
  }
}

struct DetachCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "detach",
    abstract: "Detach the pinned tracer and remove its pins from bpffs.")

  func run() throws {
    try reporting {
      let outcome = try Tracer().detach()
      print(outcome.detachedLink || outcome.removedPins > 0 ? "sockaff: detached" : "sockaff: was not attached")
    }
  }
}
