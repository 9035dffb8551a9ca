import Foundation
import Glibc

/// Two network namespaces joined by a veth pair, made by the test and removed
/// by it (deinit), also when the test fails. The receiving end's RPS mask
/// steers receive processing to a chosen CPU: the tests' ground truth.
final class NetworkNamespacePair {
  let sender: String
  let receiver: String
  static let senderAddress = "192.0.2.1"  // TEST-NET-1: only ever inside these namespaces
  static let receiverAddress = "192.0.2.2"
  static let receiverDevice = "sockaff-rx"

  /// `queues`: TX and RX queues on each veth end (for RX queue tests).
  init(queues: Int = 1) throws {
    let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max) % 100_000)"
    sender = "sockaff-tx-\(tag)"
    receiver = "sockaff-rx-\(tag)"
    do {
      try Command.must(["ip", "netns", "add", sender])
      try Command.must(["ip", "netns", "add", receiver])
      try Command.must([
        "ip", "-n", sender, "link", "add", "sockaff-tx", "numtxqueues", "\(queues)", "numrxqueues", "\(queues)", "type",
        "veth", "peer", "name", Self.receiverDevice, "netns", receiver, "numtxqueues", "\(queues)", "numrxqueues",
        "\(queues)",
      ])
      try Command.must(["ip", "-n", sender, "addr", "add", "\(Self.senderAddress)/24", "dev", "sockaff-tx"])
      try Command.must(["ip", "-n", receiver, "addr", "add", "\(Self.receiverAddress)/24", "dev", Self.receiverDevice])
      for (namespace, device) in [(sender, "sockaff-tx"), (receiver, Self.receiverDevice)] {
        try Command.must(["ip", "-n", namespace, "link", "set", device, "up"])
        try Command.must(["ip", "-n", namespace, "link", "set", "lo", "up"])
      }
    } catch {
      remove()
      throw error
    }
  }

  /// Steers the receiver's packet processing to `cpu` through RPS. The veth
  /// end is visible in /sys only from inside its namespace.
  func steerReceive(toCPU cpu: Int) throws {
    try setQueueMask("rx-0", cpus: [cpu])
  }

  /// Writes a CPU mask of one queue: `rx-N/rps_cpus` on the receiver, or
  /// `tx-N/xps_cpus` on the sender (which TX queue a CPU's packets take).
  func setQueueMask(_ queue: String, cpus: [Int]) throws {
    let (namespace, device, file) =
      queue.hasPrefix("rx")
      ? (receiver, Self.receiverDevice, "rps_cpus") : (sender, "sockaff-tx", "xps_cpus")
    let mask = String(cpus.reduce(0) { $0 | 1 << $1 }, radix: 16)
    try Command.must([
      "ip", "netns", "exec", namespace, "sh", "-c", "echo \(mask) > /sys/class/net/\(device)/queues/\(queue)/\(file)",
    ])
  }

  private func remove() {
    for namespace in [sender, receiver] { _ = try? Command.run(["ip", "netns", "del", namespace]) }
  }

  deinit { remove() }
}
