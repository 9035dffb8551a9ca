import Foundation
import Glibc
import XCTest

/// Load and pressure with the tracer attached: traffic arrives intact, and
/// a million short-lived sockets neither grow the map beyond the live ones
/// nor stop queries from answering.
final class LoadTests: KernelTestCase {
  func statusJSON() throws -> [String: Any] {
    let result = try Command.sockaff("status", "--json")
    guard result.status == 0,
      let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    else { throw HarnessError("status --json failed (\(result.status)): \(result.stderr)") }
    return object
  }

  func load(_ arguments: String...) throws -> [String: Any] {
    let result = try Command.run(["python3", Peer.loadScript] + arguments)
    guard result.status == 0,
      let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    else { throw HarnessError("load.py \(arguments) failed (\(result.status)): \(result.stderr)") }
    return object
  }

  /// 1 GiB over TCP and 1M UDP datagrams, hashed at both ends, first without
  /// the tracer and then with it: nothing lost, reordered or altered.
  func testTrafficArrivesIntactWithTheTracerAttached() throws {
    let gibibyte = "\(1 << 30)"
    let million = "1000000"
    let udpWithout = try load("udp", million)["received"] as? [String: Any]
    try attach()
    let createdBefore = try statusJSON()["records_created"] as? Int ?? 0
    let tcp = try load("tcp", gibibyte)
    let udp = try load("udp", million)
    let received = tcp["received"] as? [String: Any]
    XCTAssertEqual(received?["bytes"] as? Int, 1 << 30, "TCP: every byte arrived")
    XCTAssertEqual(received?["sha256"] as? String, tcp["sent_sha256"] as? String, "TCP: unaltered")

    let datagrams = udp["received"] as? [String: Any]
    XCTAssertEqual(datagrams?["corrupt"] as? Int, 0, "UDP: no datagram altered")
    XCTAssertEqual(datagrams?["out_of_order"] as? Int, 0)
    XCTAssertGreaterThanOrEqual(
      datagrams?["datagrams"] as? Int ?? 0, udpWithout?["datagrams"] as? Int ?? .max,
      "UDP: no more lost with the tracer than without (\(udpWithout ?? [:]))")
    XCTAssertEqual(datagrams?["datagrams"] as? Int, 1_000_000, "UDP: windowed, so none lost on loopback")
    XCTAssertEqual(datagrams?["sha256"] as? String, udp["sent_sha256"] as? String, "UDP: the same bytes, in order")
    // The tracer did see this traffic: both ends of both transports got records.
    let created = try statusJSON()["records_created"] as? Int ?? 0
    XCTAssertGreaterThanOrEqual(created - createdBefore, 4, "records for the TCP and UDP sockets")
  }

  /// 1,000,000 UDP sockets opened, sent one datagram, read and closed in
  /// batches of 1,000: every one gets a record, none fails unnoticed, the
  /// map holds only live sockets (plus those whose release the kernel has
  /// not finished yet), and a query of a long-lived socket keeps answering.
  func testMillionSocketChurnKeepsTheMapToLiveSockets() throws {
    let total = 1_000_000
    let batch = 1_000
    try attach()
    let pair = try PeerPair.start(transport: "udp", serverHost: "127.0.0.1", connectOnFirst: true)
    try pair.exchange(1)
    let start = try statusJSON()
    // The map's fill is the socket-storage iterator's count: where the
    // kernel refuses that iterator, status must say so at every sample
    // instead, and everything else here holds as it is.
    let counting = try feature("iter/bpf_sk_storage_map").state == "yes"
    let baseline = start["live_records"] as? Int ?? -1
    if counting { XCTAssertGreaterThanOrEqual(baseline, 1, "the long-lived pair's records") }

    let churn = try Peer(["churn", "\(total)", "\(batch)"], script: Peer.loadScript)
    XCTAssertEqual(churn.hello["ready"] as? Bool, true)
    var samples: [Int] = []
    var countErrors: [String] = []
    var queries = 0
    var done: [String: Any]?
    for _ in 0..<600 where done == nil {
      let status = try statusJSON()
      if let live = status["live_records"] as? Int {
        samples.append(live)
      } else {
        countErrors.append(status["live_records_error"] as? String ?? "no live_records and no error in \(status)")
      }
      try pair.exchange(1)
      let answer = try queryJSON(pid: pair.server.pid, fd: pair.serverFD)
      XCTAssertEqual(answer["source"] as? String, "bpf", "query answers during the churn")
      queries += 1
      done = try? churn.readLine(timeout: 0)
    }
    XCTAssertEqual(done?["done"] as? Int, total, "the churn finished")
    let end = try statusJSON()
    let created = (end["records_created"] as? Int ?? 0) - (start["records_created"] as? Int ?? 0)
    XCTAssertGreaterThanOrEqual(created, total, "every churned socket got a record")
    XCTAssertEqual(end["untracked_packets"] as? Int, start["untracked_packets"] as? Int, "no insertion failed")
    // Slack: the churn holds one batch (plus its sender). A closed UDP
    // socket (SOCK_RCU_FREE) and its record are freed after an RCU grace
    // period, so under churn the sockets closed in the last few ms are
    // still counted: measured here up to 3 batches (3,000 sockets closed in
    // ~45 ms). The bound allows 7; what matters is that it does not grow.
    XCTAssertGreaterThan(queries, 3)
    guard counting else {
      XCTAssertEqual(samples, [], "no count without the iterator")
      XCTAssertGreaterThan(countErrors.count, 3, "sampled during the churn")
      XCTAssertEqual(
        countErrors.filter { !$0.contains("iter/bpf_sk_storage_map") }, [], "each sample says what is missing")
      return
    }
    let bound = baseline + 1 + batch + 7 * batch
    XCTAssertLessThanOrEqual(samples.max() ?? .max, bound, "map fill samples \(samples)")
    let quarter = max(samples.count / 4, 1)
    XCTAssertLessThanOrEqual(
      samples.suffix(quarter).max() ?? .max, (samples.prefix(quarter).max() ?? 0) + 4 * batch,
      "the fill does not creep up over a million sockets: \(samples)")
    XCTAssertGreaterThan(samples.count, 3, "sampled during the churn")
    XCTAssertEqual(countErrors, [], "status counted the live records every time (\(samples.count) did)")
    print(
      "churn: \(total) sockets in \(done?["seconds"] ?? "?") s; live records max \(samples.max() ?? -1) over \(samples.count) samples (baseline \(baseline), bound \(bound))"
    )
    XCTAssertLessThanOrEqual(try eventuallyLiveRecords(atMost: baseline + 1), baseline + 1, "freed after the churn")
  }

  /// A million TCP connections in storms of 1,000 (issue found: the pool
  /// leaked under such churn, 1,179 to 4,510 slots after six storms of
  /// 100,000): each connection is sent a byte from CPU 0 and one from CPU 1,
  /// so both of its sockets take a pool slot; half of each storm is left in
  /// the accept queue when its listener closes, and every client is reset.
  /// The slots in use must come back to where they started, by the pool's
  /// own counters (taken and given back by the BPF programs). Where the
  /// kernel lacks the TCP_CLOSE tracepoint, a short storm shows the leak
  /// instead (the degraded behaviour), and status says what is missing.
  func testMillionConnectionStormsGiveEveryPoolSlotBack() throws {
    try attach()
    let closing = try feature("tp_btf/inet_sock_set_state").state == "yes"
    let total = closing ? 1_000_000 : 20_000
    let batch = 1_000
    let start = try statusJSON()
    let baseline = start["pool_slots_in_use"] as? Int ?? -1
    let storm = try Peer(["storm", "\(total)", "\(batch)"], script: Peer.loadScript)
    XCTAssertEqual(storm.hello["ready"] as? Bool, true)
    var done: [String: Any]?
    for _ in 0..<600 where done == nil { done = try? storm.readLine(timeout: 1) }
    XCTAssertEqual(done?["done"] as? Int, total, "the storms finished")
    var inUse = Int.max
    for _ in 0..<50 {
      inUse = try statusJSON()["pool_slots_in_use"] as? Int ?? .max
      if inUse <= baseline { break }
      usleep(100_000)
    }
    let end = try statusJSON()
    let created = (end["records_created"] as? Int ?? 0) - (start["records_created"] as? Int ?? 0)
    XCTAssertGreaterThanOrEqual(created, 2 * total, "both ends of every connection were traced")
    print(
      "storms: \(total) connections in \(done?["seconds"] ?? "?") s; pool slots in use \(baseline) before, \(inUse) after; exhausted \(end["pool_exhausted_sockets"] ?? "?")"
    )
    if closing {
      XCTAssertEqual(inUse, baseline, "every slot given back")
      XCTAssertEqual(end["pool_exhausted_sockets"] as? Int, start["pool_exhausted_sockets"] as? Int, "never full")
    } else {
      XCTAssertGreaterThanOrEqual(inUse - baseline, total / 2, "without the tracepoint the unaccepted keep theirs")
    }
  }

  func eventuallyLiveRecords(atMost limit: Int) throws -> Int {
    var live = Int.max
    for _ in 0..<20 {
      live = try statusJSON()["live_records"] as? Int ?? .max
      if live <= limit { break }
      usleep(100_000)
    }
    return live
  }
}
