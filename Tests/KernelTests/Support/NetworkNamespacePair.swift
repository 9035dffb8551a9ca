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

  init() throws {
    let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max) % 100_000)"
    sender = "sockaff-tx-\(tag)"
    receiver = "sockaff-rx-\(tag)"
    do {
      try Command.must(["ip", "netns", "add", sender])
      try Command.must(["ip", "netns", "add", receiver])
      try Command.must([
        "ip", "-n", sender, "link", "add", "sockaff-tx", "type", "veth", "peer", "name", Self.receiverDevice,
        "netns", receiver,
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
    let mask = String(1 << cpu, radix: 16)
    try Command.must([
      "ip", "netns", "exec", receiver, "sh", "-c",
      "echo \(mask) > /sys/class/net/\(Self.receiverDevice)/queues/rx-0/rps_cpus",
    ])
  }

  private func remove() {
    for namespace in [sender, receiver] { _ = try? Command.run(["ip", "netns", "del", namespace]) }
  }

  deinit { remove() }
}
