import CSockaffShims
import FoundationEssentials
import Glibc

/// `advise --apply` and `--undo`: the advised writes made, and unmade,
/// exactly. Before any write the undo file records every file's value
/// before and the value written (whole, synced, renamed into place); a
/// write that fails, or does not read back, is rolled back with the ones
/// before it and the undo file removed. `--undo` restores only a file
/// that still holds what `--apply` wrote, on the same boot: anything else
/// is stale, and it changes nothing.
public struct AdviceApplication: Sendable {
  /// The undo file: what `--apply` changed, for `--undo`.
  public struct UndoFile: Sendable, Equatable, Codable {
    public struct Entry: Sendable, Equatable, Codable {
      public let what: ReceiveAdvice.Change.What
      public let path: String
      public let before: String
      public let after: String
      /// A NAPI thread's name when applied: its pid names that thread only
      /// while it lives (threaded NAPI turned off and on makes new ones).
      public var thread: String? = nil
    }

    public var version = 1
    /// /proc/sys/kernel/random/boot_id when applied: sysfs and procfs
    /// values do not outlive a boot.
    public let bootID: String
    /// CLOCK_REALTIME seconds.
    public let appliedAt: Double
    public let entries: [Entry]

    enum CodingKeys: String, CodingKey {
      case version, entries
      case bootID = "boot_id"
      case appliedAt = "applied_at"
    }
  }

  public static let defaultUndoPath = "/run/sockaff/advise-undo.json"

  public let undoPath: String
  /// The roots the files may be under: an undo file naming any other file
  /// is not one sockaff wrote.
  public let sys: String
  public let proc: String

  public init(undoPath: String = Self.defaultUndoPath, sys: String = "/sys", proc: String = "/proc") {
    self.undoPath = undoPath
    self.sys = sys
    self.proc = proc
  }

  public static func bootID(proc: String = "/proc") -> String {
    ((try? readTextFile("\(proc)/sys/kernel/random/boot_id")) ?? "").trimmingWhitespace()
  }

  /// Whether a file's text means `value`: CPU lists and masks compare by
  /// their CPUs ("00000002" is "2" is "02"), as the kernel prints them back.
  static func same(_ what: ReceiveAdvice.Change.What, _ text: String, _ value: String) -> Bool {
    switch what {
    case .irqAffinity, .napiThreadAffinity:
      guard let a = try? CPUList.parse(text), let b = try? CPUList.parse(value) else { return false }
      return a == b
    case .rpsCPUs:
      return InterfaceQueues.parseCPUMask(text) == InterfaceQueues.parseCPUMask(value)
        && !text.trimmingWhitespace().isEmpty
    case .rssTable:
      return !text.isEmpty && text == value
    }
  }

  /// The value `entry`'s file, table or thread holds now; a thread that is
  /// no longer the one applied to holds nothing ("").
  static func read(_ entry: UndoFile.Entry) throws(SockaffError) -> String {
    switch entry.what {
    case .irqAffinity, .rpsCPUs: return try readTextFile(entry.path).trimmingWhitespace()
    case .rssTable:
      return try RSSConfiguration.table(interface: device(entry.path)).map(String.init).joined(separator: ",")
    case .napiThreadAffinity:
      guard (try? readTextFile(entry.path + "/comm"))?.trimmingWhitespace() == entry.thread else { return "" }
      return ProcFS.allowedCPUs(statusText: try readTextFile(entry.path + "/status")).map(CPUList.format) ?? ""
    }
  }

  /// Writes `value` as `entry`'s kind of value: a file's text, a table, or
  /// a thread's affinity.
  static func write(_ value: String, for entry: UndoFile.Entry) throws(SockaffError) {
    switch entry.what {
    case .irqAffinity, .rpsCPUs: try write(value, to: entry.path)
    case .rssTable:
      let queues = value.split(separator: ",").compactMap { UInt32($0) }
      try RSSConfiguration.setTable(queues, interface: device(entry.path))
    case .napiThreadAffinity:
      guard let cpus = try? CPUList.parse(value), let tid = Int32(device(entry.path)) else {
        throw SockaffError(.other, operation: "taskset \(entry.path)", hint: "not a CPU list: \(value)")
      }
      let status = cpus.map(Int32.init).withUnsafeBufferPointer {
        sockaff_set_thread_affinity(tid, $0.baseAddress, Int32($0.count))
      }
      guard status == 0 else { throw .lastErrno(operation: "sched_setaffinity(\(tid), \(value))") }
    }
  }

  /// A table entry's device: the last component of /sys/class/net/DEV.
  static func device(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }

  static func write(_ value: String, to path: String) throws(SockaffError) {
    // O_TRUNC as the shell's `echo V > F`: sysfs and procfs ignore it; a plain file needs it.
    let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
    guard fd >= 0 else { throw .lastErrno(operation: "open \(path)") }
    defer { close(fd) }
    let bytes = Array((value + "\n").utf8)
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw .lastErrno(operation: "write \(value) to \(path)") }
  }

  /// Whether `entry` names a file advise writes: PROC/irq/N/smp_affinity_list
  /// or SYS/class/net/DEV/queues/rx-Q/rps_cpus, nothing above or beside them.
  func allowed(_ entry: UndoFile.Entry) -> Bool {
    let (prefix, suffix) =
      switch entry.what {
      case .irqAffinity: ("\(proc)/irq/", "/smp_affinity_list")
      case .rpsCPUs: ("\(sys)/class/net/", "/rps_cpus")
      case .rssTable: ("\(sys)/class/net/", "")
      case .napiThreadAffinity: ("\(proc)/", "")
      }
    guard entry.path.hasPrefix(prefix), entry.path.hasSuffix(suffix) else { return false }
    let middle = entry.path.dropFirst(prefix.count).dropLast(suffix.count).split(
      separator: "/", omittingEmptySubsequences: false)
    switch entry.what {
    case .irqAffinity:
      return middle.count == 1 && Int(middle[0]) != nil
    case .rpsCPUs:
      return middle.count == 3 && !middle[0].isEmpty && middle[0] != ".." && middle[0] != "."
        && middle[1] == "queues" && middle[2].hasPrefix("rx-") && Int(middle[2].dropFirst(3)) != nil
    case .rssTable:
      return middle.count == 1 && !middle[0].isEmpty && middle[0] != ".." && middle[0] != "."
        && entry.after.split(separator: ",").allSatisfy { UInt32($0) != nil }
    case .napiThreadAffinity:
      return middle.count == 1 && Int32(middle[0]) != nil && entry.thread?.hasPrefix("napi/") == true
    }
  }

  /// Whether an earlier `--apply` left its undo file.
  public var pending: Bool { access(undoPath, F_OK) == 0 }

  /// Makes `changes`: the undo file first, then each write, read back.
  /// Refuses (conflict) while an undo file is there.
  public func apply(_ changes: [ReceiveAdvice.Change]) throws(SockaffError) -> UndoFile {
    guard !pending else {
      throw SockaffError(
        .conflict, operation: "--apply",
        hint: "\(undoPath) holds an earlier --apply's changes: 'sockaff advise --undo' first")
    }
    let entries = changes.map { change in
      var entry = UndoFile.Entry(what: change.what, path: change.path, before: change.before, after: change.after)
      if change.what == .napiThreadAffinity {
        entry.thread = (try? readTextFile(change.path + "/comm"))?.trimmingWhitespace()
      }
      return entry
    }
    for entry in entries where [.irqAffinity, .rpsCPUs].contains(entry.what) && access(entry.path, W_OK) != 0 {
      throw SockaffError.lastErrno(operation: "--apply: \(entry.path)", hint: "not writable: nothing changed")
    }
    let undo = UndoFile(
      bootID: Self.bootID(proc: proc), appliedAt: Double(SystemClock.nanoseconds(CLOCK_REALTIME)) / 1e9,
      entries: entries)
    try save(undo)
    var done: [UndoFile.Entry] = []
    do throws(SockaffError) {
      for entry in entries {
        try Self.write(entry.after, for: entry)
        done.append(entry)
        let back = try Self.read(entry)
        guard Self.same(entry.what, back, entry.after) else {
          throw SockaffError(
            .other, operation: "--apply: \(entry.path)", hint: "wrote \(entry.after), reads back \(back)")
        }
      }
    } catch {
      // Unmade in reverse, then the undo file is no longer true.
      for entry in done.reversed() { try? Self.write(entry.before, for: entry) }
      unlink(undoPath)
      throw SockaffError(
        error.kind, errno: error.errno, operation: error.operation,
        hint: (error.hint.map { $0 + "; " } ?? "") + "rolled back: nothing changed")
    }
    return undo
  }

  func save(_ undo: UndoFile) throws(SockaffError) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let bytes: [UInt8]
    do { bytes = Array(try encoder.encode(undo)) } catch {
      throw SockaffError(.other, operation: "encode \(undoPath)", hint: "\(error)")
    }
    try writeWholeFile(undoPath, bytes)
  }

  /// The undo file, checked: there (else noUndo), sockaff's, this boot's,
  /// and every file still as `--apply` left it (else staleUndo).
  public func load() throws(SockaffError) -> UndoFile {
    let operation = "--undo \(undoPath)"
    let text: String
    do { text = try readTextFile(undoPath) } catch {
      if error.errno == .noSuchFileOrDirectory {
        throw SockaffError(.noUndo, operation: operation, hint: "no undo file: nothing was applied, or it was undone")
      }
      throw error
    }
    guard let undo = try? JSONDecoder().decode(UndoFile.self, from: Data(text.utf8)), undo.version == 1 else {
      throw SockaffError(.staleUndo, operation: operation, hint: "not an undo file sockaff wrote: nothing changed")
    }
    guard undo.bootID == Self.bootID(proc: proc) else {
      throw SockaffError(
        .staleUndo, operation: operation,
        hint: "applied on another boot (boot id \(undo.bootID)): its values are gone; nothing changed")
    }
    for entry in undo.entries {
      guard allowed(entry) else {
        throw SockaffError(
          .staleUndo, operation: operation, hint: "names \(entry.path), not a file advise writes: nothing changed")
      }
      let now = (try? Self.read(entry)) ?? ""
      guard Self.same(entry.what, now, entry.after) else {
        throw SockaffError(
          .staleUndo, operation: operation,
          hint: "\(entry.path) holds \(now.isEmpty ? "nothing readable" : now), not the \(entry.after) applied: "
            + "changed since; nothing changed")
      }
    }
    return undo
  }

  /// Restores every file's value before `--apply`, reads each back, then
  /// removes the undo file. Returns what it restored.
  public func undo() throws(SockaffError) -> UndoFile {
    let undo = try load()
    for entry in undo.entries.reversed() {
      try Self.write(entry.before, for: entry)
      let back = try Self.read(entry)
      guard Self.same(entry.what, back, entry.before) else {
        throw SockaffError(
          .other, operation: "--undo: \(entry.path)",
          hint: "wrote \(entry.before), reads back \(back); \(undoPath) kept")
      }
    }
    guard unlink(undoPath) == 0 else { throw .lastErrno(operation: "remove \(undoPath)") }
    return undo
  }
}
