import Glibc

/// A self-contained check that sockaff works on this host: opens a loopback
/// TCP connection in this process, sends a few messages over it, and returns
/// the accepted socket's pid and fd for a query, plus the kernel's
/// SO_INCOMING_CPU of that socket to compare against.
public final class LoopbackDemo {
  public let pid: Int32 = getpid()
  public private(set) var serverFD: Int32 = -1
  private var listenerFD: Int32 = -1
  private var clientFD: Int32 = -1

  public init(messages: Int = 32) throws(SockaffError) {
    listenerFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
        bind(listenerFD, pointer, length) == 0 && listen(listenerFD, 1) == 0
          && getsockname(listenerFD, pointer, &length) == 0
      }
    }
    guard listenerFD >= 0, bound else { throw SockaffError.lastErrno(operation: "demo: listen on 127.0.0.1") }
    clientFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(clientFD, $0, length) == 0 }
    }
    guard clientFD >= 0, connected else { throw SockaffError.lastErrno(operation: "demo: connect to 127.0.0.1") }
    serverFD = accept(listenerFD, nil, nil)
    guard serverFD >= 0 else { throw SockaffError.lastErrno(operation: "demo: accept") }

    var buffer = [UInt8](repeating: 0x61, count: 100)
    for _ in 0..<messages {
      guard send(clientFD, &buffer, buffer.count, 0) == buffer.count,
        recv(serverFD, &buffer, buffer.count, Int32(MSG_WAITALL)) == buffer.count
      else { throw SockaffError.lastErrno(operation: "demo: send over loopback") }
    }
  }

  deinit {
    for fd in [clientFD, serverFD, listenerFD] where fd >= 0 { close(fd) }
  }
}
