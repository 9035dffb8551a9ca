import ArgumentParser
import CSockaffShims
import FoundationEssentials
import Glibc
import SockaffPresentation
import SocketAffinity
import SystemPackage

struct WatchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "watch",
    abstract: "Live view of traced sockets, sorted by packet rate.",
    discussion: paragraphs(
      """
      Refreshes every --interval seconds; a receiving CPU that changed since the last
      refresh shows as OLD>NEW. Quit with q or Ctrl-C; the terminal is restored.

      --source kernel watches the census instead (every TCP and UDP socket's latest
      receive CPU from the kernel, no tracer): no rates, but a socket whose latest
      packet moved to another CPU shows as OLD>NEW.
      """))

  @Option(
    help: ArgumentHelp(
      "'traced' (the tracer's records), 'kernel' (the census: the kernel's own fields, no tracer needed), or 'auto' (traced where the tracer is attached, else the census).",
      valueName: "traced|kernel|auto"))
  var source: SocketListing.Source = .traced

  @Option(parsing: .unconditional, help: "Only this process.")
  var pid: Int32?

  @Option(help: ArgumentHelp("Seconds between refreshes.", valueName: "seconds"))
  var interval: Double = 1

  @Flag(help: "Take two samples one interval apart, print the rates once and exit.")
  var once = false

  @Flag(help: "With --once: print one JSON array.")
  var json = false

  @Flag(help: "Every column (REMOTE, IRQ, IFACE, CPU SHARE too); without it the table fits 80 columns for IPv4.")
  var wide = false

  @OptionGroup var topologyOptions: TopologyOptions

  var columns: [SocketTable.Column] { wide ? SocketTable.wide : SocketTable.narrow }

  func validate() throws {
    guard (0.1...3600).contains(interval) else { throw ValidationError("--interval takes 0.1 to 3600 seconds") }
    if json && !once { throw ValidationError("--json needs --once") }
    if let pid, pid <= 0 { throw ValidationError("--pid takes a process id (1 or more), not \(pid)") }
  }

  func run() throws {
    try reporting(json: json) {
      let listing = SocketListing(topology: try topologyOptions.topology())
      var rates = ReceiveRates()
      if once {
        _ = rates.update(try listing.listReportingSkipped(pid: pid, source: source).sockets)
        usleep(useconds_t(interval * 1e6))
        let entries = rates.update(try listing.listReportingSkipped(pid: pid, source: source).sockets)
        if json { return try Output.jsonLines(entries) }
        return print(WatchScreen.table(entries, columns: columns))
      }
      let terminal = try LiveTerminal()
      defer { terminal.restore() }
      while true {
        let entries = rates.update(try listing.listReportingSkipped(pid: pid, source: source).sockets)
        terminal.draw(WatchScreen.frame(entries, interval: interval, rows: terminal.rows, columns: columns))
        if terminal.waitForQuit(seconds: interval) { return }
      }
    }
  }
}

/// The terminal while `watch` runs: alternate screen, no echo, keys read one
/// by one, SIGINT/SIGTERM/SIGHUP taken through a signalfd so that every way
/// out restores the terminal.
final class LiveTerminal {
  private var saved = termios()
  private let interactive: Bool
  private let signals: Int32

  init() throws(SockaffError) {
    interactive = isatty(STDIN_FILENO) == 1
    signals = sockaff_termination_signalfd()
    guard signals >= 0 else {
      throw SockaffError(.other, errno: Errno(rawValue: errno), operation: "signalfd for watch")
    }
    if interactive {
      tcgetattr(STDIN_FILENO, &saved)
      var raw = saved
      raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
      raw.c_cc.6 = 0  // VMIN: reads return what is there
      raw.c_cc.5 = 0  // VTIME
      tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }
    write("\u{1B}[?1049h\u{1B}[?25l")  // alternate screen, hide cursor
  }

  var rows: Int {
    var size = winsize()
    return ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_row > 0 ? Int(size.ws_row) : 40
  }

  func draw(_ frame: String) {
    write(
      "\u{1B}[H\u{1B}[2J" + frame.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n"))
  }

  /// Waits up to `seconds` for q, Ctrl-C or a signal; true means quit.
  func waitForQuit(seconds: Double) -> Bool {
    let deadline = Self.now + seconds
    while true {
      let remaining = deadline - Self.now
      if remaining <= 0 { return false }
      var fds = [pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
      if interactive { fds.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
      let ready = poll(&fds, nfds_t(fds.count), Int32(remaining * 1000) + 1)
      if ready < 0 && errno == EINTR { continue }
      if fds[0].revents != 0 { return true }
      if fds.count > 1 && fds[1].revents != 0 {
        var byte: UInt8 = 0
        let count = read(STDIN_FILENO, &byte, 1)
        if count == 1, byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3 { return true }
      }
    }
  }

  private static var now: Double { Double(SystemClock.nanoseconds(CLOCK_MONOTONIC)) / 1e9 }

  func restore() {
    write("\u{1B}[?25h\u{1B}[?1049l")  // show cursor, leave alternate screen
    if interactive { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
    close(signals)
  }

  /// A frame to the terminal; a reader gone leaves nothing to draw on.
  private func write(_ text: String) {
    _ = try? FileDescriptor.standardOutput.writeAll(text.utf8)
  }
}
