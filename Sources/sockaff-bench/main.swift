// Times sockaff's library calls in-process, for `make bench`:
//   sockaff-bench query PID FD REPEATS   one socket's query, repeated
//   sockaff-bench list PID REPEATS       a process's listing, repeated
//   sockaff-bench json PID REPEATS       `list --json`'s encoding of the process's records, per record
// Prints one JSON object: median and p99 in microseconds, and the repeats.
//   sockaff-bench udp-send COUNT PORT[,PORT...] CPU[,CPU...]
//                                        fan-in traffic: one thread per CPU, pinned there, sends COUNT
//                                        64-byte datagrams to 127.0.0.1:PORT (the i-th CPU to the i-th
//                                        port, or all to the one port); prints {"seconds", "packets"}
//   sockaff-bench tcp-connect COUNT PORT[,PORT...] CPU[,CPU...]
//                                        the same with COUNT connections per CPU, each closed at once
//   sockaff-bench udp-sink PORT          a UDP socket on PORT that reads forever; prints {"pid", "fd"}

import FoundationEssentials
import Glibc
import SocketAffinity

func microseconds(_ body: () throws -> Void) rethrows -> Double {
  var start = timespec()
  var end = timespec()
  clock_gettime(CLOCK_MONOTONIC, &start)
  try body()
  clock_gettime(CLOCK_MONOTONIC, &end)
  return Double(end.tv_sec - start.tv_sec) * 1e6 + Double(end.tv_nsec - start.tv_nsec) / 1e3
}

func report(_ samples: [Double]) {
  let sorted = samples.sorted()
  let median = sorted[sorted.count / 2]
  let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
  print("{\"median_us\": \(median), \"p99_us\": \(p99), \"repeats\": \(sorted.count)}")
}

let arguments = CommandLine.arguments
if arguments.count == 3, arguments[1] == "udp-sink", let port = UInt16(arguments[2]) { UDPSink.run(port: port) }
if arguments.count == 5, ["udp-send", "tcp-connect"].contains(arguments[1]), let count = Int(arguments[2]) {
  let ports = arguments[3].split(separator: ",").compactMap { UInt16($0) }
  let cpus = arguments[4].split(separator: ",").compactMap { Int($0) }
  guard !ports.isEmpty, !cpus.isEmpty, ports.count == 1 || ports.count == cpus.count else { exit(64) }
  let start = ClockReference.clockNanoseconds(CLOCK_MONOTONIC)
  FanInTraffic.run(
    arguments[1] == "udp-send" ? .datagrams : .connections, count: count,
    ports: cpus.indices.map { ports[ports.count == 1 ? 0 : $0] }, cpus: cpus)
  let seconds = Double(ClockReference.clockNanoseconds(CLOCK_MONOTONIC) - start) / 1e9
  print("{\"seconds\": \(seconds), \"packets\": \(count * cpus.count)}")
  exit(0)
}
guard arguments.count >= 4, let pid = Int32(arguments[2]) else {
  _ = "usage: sockaff-bench query PID FD REPEATS | list PID REPEATS\n".withCString { write(2, $0, strlen($0)) }
  exit(64)
}
do {
  let topology = Topology.live()
  switch arguments[1] {
  case "query":
    guard arguments.count == 5, let fd = Int32(arguments[3]), let repeats = Int(arguments[4]) else { exit(64) }
    let query = AffinityQuery(topology: topology)
    report(try (0..<repeats).map { _ in try microseconds { _ = try query.query(pid: pid, fd: fd) } })
  case "list":
    guard let repeats = Int(arguments[3]) else { exit(64) }
    let listing = SocketListing(topology: topology)
    report(try (0..<repeats).map { _ in try microseconds { _ = try listing.list(pid: pid) } })
  case "json":
    guard let repeats = Int(arguments[3]) else { exit(64) }
    let records = try SocketListing(topology: topology).list(pid: pid)
    guard !records.isEmpty else { throw SockaffError(.noPacketsYet, operation: "no traced socket in pid \(pid)") }
    report(
      try (0..<repeats).map { _ in
        try microseconds { _ = try JSONLines.document(records) { _ in } } / Double(records.count)
      })
  default:
    exit(64)
  }
} catch {
  _ = "sockaff-bench: \(error)\n".withCString { write(2, $0, strlen($0)) }
  exit(1)
}
