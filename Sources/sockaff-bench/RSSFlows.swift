import CSockaffAPI
import Glibc
import SockaffCAPI

/// The VM lab's RSS flows (it has no Python): connected UDP and TCP sockets
/// from chosen local ports to a peer outside the guest, held open while the
/// lab asks sockaff about them. Each flow receives only when asked: the
/// command `send I N` on stdin sends "N" on flow I, the peer answers with N
/// 64-byte datagrams (UDP) or N × 64 bytes (TCP), and the reply line is
/// `got I BYTES NAPI CPU`: what was read, and the kernel's own
/// SO_INCOMING_NAPI_ID and SO_INCOMING_CPU for the socket. `capi I` asks
/// libsockaff's two calls about flow I, as a C program would on its own
/// socket: `capi I STATUS GROUP NUMBER NODE RSS_ENABLED`. `busy-poll I US`
/// sets flow I's SO_BUSY_POLL, as an application would, and answers
/// `busy-poll I RESULT`. `quit` ends it.
/// On start it prints `flow I udp|tcp FD PORT` per flow, then `ready PID`.
enum RSSFlows {
  static func run(local: String, peer: String, udpPort: UInt16, tcpPort: UInt16, udp: [UInt16], tcp: [UInt16])
    -> Never
  {
    var flows: [(fd: Int32, tcp: Bool)] = []
    for (port, isTCP) in udp.map({ ($0, false) }) + tcp.map({ ($0, true) }) {
      let fd = socket(AF_INET, Int32((isTCP ? SOCK_STREAM : SOCK_DGRAM).rawValue), 0)
      var timeout = timeval(tv_sec: 10, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      var source = address(local, port)
      var destination = address(peer, isTCP ? tcpPort : udpPort)
      let bound = withUnsafePointer(to: &source) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
      }
      let connected = withUnsafePointer(to: &destination) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      guard fd >= 0, bound == 0, connected == 0 else { fatalError("flow from port \(port): errno \(errno)") }
      print("flow \(flows.count) \(isTCP ? "tcp" : "udp") \(fd) \(port)")
      flows.append((fd, isTCP))
    }
    print("ready \(getpid())")
    fflush(nil)
    var buffer = [UInt8](repeating: 0, count: 65536)
    while let line = readLine() {
      let words = line.split(separator: " ")
      if words.first == "quit" { exit(0) }
      if words.count == 2, words[0] == "capi", let index = Int(words[1]), flows.indices.contains(index) {
        var answer = sockaff_processor_affinity()
        let status = withUnsafeMutableBytes(of: &answer) {
          sockaffQueryRSSProcessorInfo(flows[index].fd, $0.baseAddress, $0.count, nil)
        }
        var scalability = sockaff_rss_scalability_info()
        _ = withUnsafeMutableBytes(of: &scalability) {
          sockaffQueryRSSScalabilityInfo(flows[index].fd, $0.baseAddress, $0.count, nil)
        }
        print(
          "capi \(index) \(status) \(answer.group) \(answer.number) \(answer.numa_node_id) \(scalability.rss_enabled)")
        fflush(nil)
        continue
      }
      if words.count == 3, words[0] == "busy-poll", let index = Int(words[1]), flows.indices.contains(index),
        var microseconds = Int32(words[2])
      {
        let result = setsockopt(
          flows[index].fd, SOL_SOCKET, 46 /* SO_BUSY_POLL */, &microseconds, socklen_t(MemoryLayout<Int32>.size))
        print("busy-poll \(index) \(result == 0 ? 0 : errno)")
        fflush(nil)
        continue
      }
      guard words.count == 3, words[0] == "send", let index = Int(words[1]), flows.indices.contains(index),
        let count = Int(words[2])
      else {
        print("bad command: \(line)")
        fflush(nil)
        continue
      }
      let flow = flows[index]
      let request = Array((flow.tcp ? "\(count)\n" : "\(count)").utf8)
      _ = request.withUnsafeBytes { send(flow.fd, $0.baseAddress, $0.count, 0) }
      var read = 0
      let wanted = 64 * count
      var datagrams = 0
      while flow.tcp ? read < wanted : datagrams < count {
        let got = buffer.withUnsafeMutableBytes { recv(flow.fd, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { break }  // timed out: report what arrived
        read += got
        datagrams += 1
      }
      print("got \(index) \(read) \(option(flow.fd, SO_INCOMING_NAPI_ID)) \(option(flow.fd, SO_INCOMING_CPU))")
      fflush(nil)
    }
    exit(0)
  }

  private static func option(_ fd: Int32, _ name: Int32) -> Int32 {
    var value: Int32 = -1
    var length = socklen_t(MemoryLayout<Int32>.size)
    return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : -1
  }

  private static func address(_ text: String, _ port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, text, &address.sin_addr) == 1 else { fatalError("not an IPv4 address: \(text)") }
    return address
  }
}
