/// Which of a process's threads wait on which of its sockets, right now.
///
/// A server with one SO_REUSEPORT socket per worker thread (Envoy, a
/// thread-per-core UDP server) holds every member in one process, so the
/// process's threads say nothing about any one member. A worker blocked in
/// the kernel names its socket, though: /proc/P/task/T/syscall gives the
/// blocking call and its first argument, which is the socket itself for
/// accept and recv, and for epoll_wait an epoll instance whose registered
/// fds /proc/P/fdinfo/EPFD lists ("tfd:"). A thread that is running, or
/// blocked in poll, select or io_uring, names nothing: it is not counted.
/// A sample of this instant, not a history: the caller says so.
enum WaitingThreads {
  /// One blocked thread: its id, the CPU it last ran on, and the fds it waits on.
  struct Thread: Equatable {
    let tid: Int32
    let cpu: Int?
    let fds: Set<Int32>
  }

  /// The blocked threads of `pid` that name at least one fd.
  static func threads(pid: Int32) -> [Thread] {
    var epollTargets: [Int32: Set<Int32>] = [:]
    return ProcFS.numericEntries("/proc/\(pid)/task").compactMap { tid in
      guard let text = try? readTextFile("/proc/\(pid)/task/\(tid)/syscall"),
        let call = blockingCall(syscallLine: text)
      else { return nil }
      var fds: Set<Int32>
      if call.isEpollWait {
        if epollTargets[call.fd] == nil {
          epollTargets[call.fd] = (try? readTextFile("/proc/\(pid)/fdinfo/\(call.fd)")).map(epollTargetFDs) ?? []
        }
        fds = epollTargets[call.fd] ?? []
      } else {
        fds = [call.fd]
      }
      guard !fds.isEmpty else { return nil }
      let cpu = (try? readTextFile("/proc/\(pid)/task/\(tid)/stat")).flatMap(ProcFS.lastCPU(statLine:))
      return Thread(tid: tid, cpu: cpu, fds: fds)
    }
  }

  /// A syscall line ("232 0x5 0x7ffd... ..."): the call's number in decimal,
  /// then its arguments in hex. "running" or a call that names no socket: nil.
  static func blockingCall(syscallLine: String) -> (fd: Int32, isEpollWait: Bool)? {
    let fields = syscallLine.split(separator: " ")
    guard fields.count > 1, let number = Int(fields[0]), fields[1].hasPrefix("0x"),
      let argument = UInt64(fields[1].dropFirst(2), radix: 16), argument < UInt64(Int32.max)
    else { return nil }
    if Syscalls.epollWait.contains(number) { return (Int32(argument), true) }
    if Syscalls.onSocket.contains(number) { return (Int32(argument), false) }
    return nil
  }

  /// The "tfd:" lines of an epoll fd's fdinfo: the fds registered in it.
  static func epollTargetFDs(fdinfo: String) -> Set<Int32> {
    Set(
      fdinfo.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("tfd:") else { return nil }
        return line.dropFirst(4).split(separator: " ").first.flatMap { Int32($0) }
      })
  }

  /// The calls whose first argument is an epoll fd, or the socket itself,
  /// by this architecture's numbers.
  enum Syscalls {
    #if arch(x86_64)
      // epoll_wait, epoll_pwait, epoll_pwait2
      static let epollWait: Set<Int> = [232, 281, 441]
      // read, recvfrom, recvmsg, accept, accept4, recvmmsg
      static let onSocket: Set<Int> = [0, 45, 47, 43, 288, 299]
    #elseif arch(arm64)
      static let epollWait: Set<Int> = [22, 441]
      static let onSocket: Set<Int> = [63, 207, 212, 202, 242, 243]
    #else
      static let epollWait: Set<Int> = []
      static let onSocket: Set<Int> = []
    #endif
  }
}
