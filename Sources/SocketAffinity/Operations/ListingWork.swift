import Glibc
import Synchronization

/// A process with socket fds, and the pidfd that names it while it is read.
final class SocketHolder: @unchecked Sendable {
  let handle: ProcessHandle
  let fds: [Int32]
  /// Read once, by whichever thread first needs them.
  private let facts = Mutex<SocketInspection.ProcessFacts?>(nil)

  init(handle: consuming ProcessHandle, fds: [Int32]) {
    self.handle = handle
    self.fds = fds
  }

  func facts(_ inspection: SocketInspection) throws(SockaffError) -> SocketInspection.ProcessFacts {
    if let known = facts.withLock({ $0 }) { return known }
    let read = inspection.facts(pid: handle.pid)
    try handle.requireSameProcess()  // the facts are this process's
    facts.withLock { $0 = read }
    return read
  }
}

/// What one slice of a process's sockets gave.
struct SliceOutcome: Sendable {
  var sockets: [SocketAffinity] = []
  /// A census's TCP and UDP sockets with no receive CPU in the kernel.
  var withoutReceiveCPU = 0
  var error: SockaffError?
  var notPermitted = false
}

/// The per-socket half of a listing, shared by its threads (all read-only
/// or locked inside). Without `maps`, a census: every TCP and UDP socket's
/// answer from the kernel's own fields.
struct ListingWork: @unchecked Sendable {
  let maps: PinnedMaps?
  /// A census's one pass over the kernel's sockets, where the kernel runs it.
  let table: KernelSocketTable?
  let inspection: SocketInspection
  let interfaceNames: SocketInspection.InterfaceNames
  let hostWide: Bool

  func list(_ fds: ArraySlice<Int32>, of holder: SocketHolder) -> SliceOutcome {
    var outcome = SliceOutcome()
    // One open of /proc/P/fd per slice, not per process: a host-wide
    // listing must not hold an fd per process (RLIMIT_NOFILE).
    guard let directory = ProcFS.openFileDescriptorDirectory(pid: holder.handle.pid) else { return outcome }
    defer { try? directory.close() }
    for fd in fds {
      do {
        guard let inode = try ProcFS.socketInode(pid: holder.handle.pid, fd: fd, directory: directory) else {
          continue
        }
        if maps == nil, let table {
          // The census's one pass: the socket's row, found by its inode,
          // or no TCP/UDP socket at all where the pass read its kind and
          // namespace whole; else it is read on its own, below.
          let process = try holder.facts(inspection)
          if let row = table.rows[inode] {
            if let answer = inspection.answer(row: row, pid: holder.handle.pid, fd: fd, process: process) {
              outcome.sockets.append(answer)
            } else {
              outcome.withoutReceiveCPU += 1
            }
            continue
          }
          if table.covers(namespace: process.networkNamespace) { continue }
        }
        let socket = try TargetSocket(process: holder.handle, fd: fd)
        guard let maps else {
          guard let kind = try? inspection.kind(of: socket) else { continue }
          if let answer = try inspection.answer(
            socket: socket, kind: kind, record: nil, clock: nil, process: try holder.facts(inspection),
            interfaceNames: interfaceNames)
          {
            outcome.sockets.append(answer)
          } else {
            outcome.withoutReceiveCPU += 1
          }
          continue
        }
        guard let record = try maps.record(socketFD: socket.descriptor.rawValue) else { continue }
        guard let kind = try? inspection.kind(of: socket) else { continue }
        if let answer = try inspection.answer(
          socket: socket, kind: kind, record: record, clock: maps.clock, readSampling: maps.readSampling,
          process: try holder.facts(inspection),
          interfaceNames: interfaceNames)
        {
          outcome.sockets.append(answer)
        }
      } catch {
        // The process or fd went away meanwhile: nothing to list.
        if [.noSuchProcess, .badFileDescriptor].contains(error.kind) { continue }
        if hostWide && error.kind == .notPermitted {
          outcome.notPermitted = true
          break
        }
        outcome.error = error
        break
      }
    }
    return outcome
  }
}
