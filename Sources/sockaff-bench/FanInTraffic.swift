import CSockaffShims
import Glibc

/// Fan-in traffic for the benchmark: one thread per CPU, pinned there, each
/// sending 64-byte datagrams to 127.0.0.1. Plain threads (not tasks), so
/// each stays on its CPU for the whole run.
enum UDPSenders {
  /// Sends `count` datagrams from a thread on `cpus[i]` to `ports[i]`, all at once.
  static func run(count: Int, ports: [UInt16], cpus: [Int]) {
    var threads: [pthread_t] = []
    for (port, cpu) in zip(ports, cpus) {
      let sender = Unmanaged.passRetained(Sender(count: count, port: port, cpu: cpu))
      var thread = pthread_t()
      guard pthread_create(&thread, nil, senderThread, sender.toOpaque()) == 0 else { fatalError("pthread_create") }
      threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
  }

  final class Sender {
    let count: Int
    let port: UInt16
    let cpu: Int
    init(count: Int, port: UInt16, cpu: Int) { (self.count, self.port, self.cpu) = (count, port, cpu) }

    func run() {
      guard sockaff_pin_thread_to_cpu(Int32(cpu)) == 0 else { fatalError("pin to CPU \(cpu)") }
      let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = port.bigEndian
      address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      guard fd >= 0, connected == 0 else { fatalError("UDP socket to port \(port)") }
      let payload = [UInt8](repeating: 0x78, count: 64)
      payload.withUnsafeBytes { bytes in
        for _ in 0..<count { _ = send(fd, bytes.baseAddress, bytes.count, 0) }
      }
      close(fd)
    }
  }
}

/// The receiving end for hosts without Python (the VM lab): a UDP socket on
/// `port` that reads whatever arrives, forever, so the UDP MIB's
/// InDatagrams counts every datagram queued to it.
enum UDPSink {
  static func run(port: UInt16) -> Never {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
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
  Unmanaged<UDPSenders.Sender>.fromOpaque(context!).takeRetainedValue().run()
  return nil
}
