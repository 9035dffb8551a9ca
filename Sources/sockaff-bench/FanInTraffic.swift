import CSockaffShims
import Glibc

/// Fan-in traffic for the benchmark and the VM lab: one thread per CPU,
/// pinned there, each sending to 127.0.0.1. On loopback the receive path
/// runs in the sender's softirq, so each thread's packets are received on
/// its CPU. Plain threads (not tasks), so each stays on its CPU.
enum FanInTraffic {
  enum Kind {
    /// 64-byte datagrams on one connected UDP socket.
    case datagrams
    /// Connections, each closed at once: a SYN and an ACK to the listener.
    case connections
  }

  /// `count` datagrams or connections from a thread on `cpus[i]` to
  /// `ports[i]`, all threads at once.
  static func run(_ kind: Kind, count: Int, ports: [UInt16], cpus: [Int]) {
    var threads: [pthread_t] = []
    for (port, cpu) in zip(ports, cpus) {
      let sender = Unmanaged.passRetained(Sender(kind: kind, count: count, port: port, cpu: cpu))
      var thread = pthread_t()
      guard pthread_create(&thread, nil, senderThread, sender.toOpaque()) == 0 else { fatalError("pthread_create") }
      threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
  }

  final class Sender {
    let kind: Kind
    let count: Int
    let port: UInt16
    let cpu: Int

    init(kind: Kind, count: Int, port: UInt16, cpu: Int) {
      (self.kind, self.count, self.port, self.cpu) = (kind, count, port, cpu)
    }

    func run() {
      guard sockaff_pin_thread_to_cpu(Int32(cpu)) == 0 else { fatalError("pin to CPU \(cpu)") }
      switch kind {
      case .datagrams:
        let fd = connected(type: SOCK_DGRAM)
        let payload = [UInt8](repeating: 0x78, count: 64)
        payload.withUnsafeBytes { bytes in
          for _ in 0..<count { _ = send(fd, bytes.baseAddress, bytes.count, 0) }
        }
        close(fd)
      case .connections:
        for _ in 0..<count { close(connected(type: SOCK_STREAM)) }
      }
    }

    /// A socket of `type` connected to 127.0.0.1:port.
    private func connected(type: __socket_type) -> Int32 {
      let fd = socket(AF_INET, Int32(type.rawValue), 0)
      var address = loopback(port: port)
      let status = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      guard fd >= 0, status == 0 else { fatalError("connect to 127.0.0.1:\(port): errno \(errno)") }
      return fd
    }
  }
}

/// 127.0.0.1:port, or (any) every local address, for bind.
private func loopback(port: UInt16, any: Bool = false) -> sockaddr_in {
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_port = port.bigEndian
  address.sin_addr.s_addr = any ? 0 : UInt32(0x7f00_0001).bigEndian
  return address
}

/// The receiving end for hosts without Python (the VM lab): a UDP socket on
/// `port` that reads whatever arrives, forever, so the UDP MIB's
/// InDatagrams counts every datagram queued to it.
enum UDPSink {
  static func run(port: UInt16) -> Never {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var address = loopback(port: port, any: true)
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard fd >= 0, bound == 0 else { fatalError("bind UDP port \(port)") }
    print("{\"pid\": \(getpid()), \"fd\": \(fd)}")
    fflush(nil)  // every stream: the line must reach a pipe before the loop
    var buffer = [UInt8](repeating: 0, count: 2048)
    while true { _ = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
  }
}

private func senderThread(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
  Unmanaged<FanInTraffic.Sender>.fromOpaque(context!).takeRetainedValue().run()
  return nil
}
