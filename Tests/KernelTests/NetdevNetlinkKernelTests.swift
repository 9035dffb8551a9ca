import Foundation
import Glibc
import SocketAffinity
import SystemPackage
import XCTest

/// The kernel's netdev netlink family against /sys and /proc: for every RX
/// queue of every NIC here, queue-get's NAPI and napi-get's IRQ must be an
/// MSI vector of the NIC's own device whose name in /proc/interrupts names
/// that queue. On kernels without queue-get/napi-get (before 6.8) the answer
/// must be "none", never a wrong IRQ; the VM lab's 6.1 runs the fallback.
final class NetdevNetlinkKernelTests: XCTestCase {
  func testQueueNAPIAndIRQAgreeWithSysfs() throws {
    let release = KernelFeatures.release()
    let parts = release.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
    let hasNetlink = parts.count >= 2 && (parts[0], parts[1]) >= (6, 8)
    let names = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net").sorted()
    var checked = 0
    for name in names where FileManager.default.fileExists(atPath: "/sys/class/net/\(name)/device") {
      let ifindex = try XCTUnwrap(
        UInt32(
          try String(contentsOfFile: "/sys/class/net/\(name)/ifindex", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)))
      let device = URL(filePath: "/sys/class/net/\(name)/device").resolvingSymlinksInPath()
      let msi =
        [device, device.deletingLastPathComponent()].lazy.compactMap {
          try? FileManager.default.contentsOfDirectory(
            atPath: $0.appending(path: "msi_irqs").path(percentEncoded: false))
        }.first ?? []
      let interrupts = try String(contentsOfFile: "/proc/interrupts", encoding: .utf8).split(separator: "\n")
      let queues = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net/\(name)/queues")
        .filter { $0.hasPrefix("rx-") }.compactMap { UInt32($0.dropFirst(3)) }
      for queue in queues {
        let napi = NetdevNetlink.rxQueueNAPI(ifindex: ifindex, queue: queue)
        guard hasNetlink else {
          XCTAssertNil(napi, "\(release) has no queue-get")
          continue
        }
        let id = try XCTUnwrap(napi, "\(name) rx-\(queue): queue-get answered on \(release)")
        let answer = try XCTUnwrap(NetdevNetlink.napi(id: id), "napi-get \(id)")
        XCTAssertEqual(answer.ifindex, ifindex)
        // Drivers that do not link their IRQ to the NAPI (netif_napi_set_irq)
        // leave it out: then sockaff names the IRQ by sysfs, and says so.
        let queues = InterfaceQueues(interface: name)
        guard let irq = answer.irq else {
          XCTAssertEqual(queues.irqSource[Int(queue)] ?? "sysfs", "sysfs", "\(name) rx-\(queue): no IRQ from netlink")
          XCTAssertEqual(queues.napiByQueue[Int(queue)], id, "the queue's NAPI is netlink's all the same")
          checked += 1
          continue
        }
        XCTAssertEqual(queues.irqSource[Int(queue)], "netlink")
        XCTAssertEqual(queues.irqByQueue[Int(queue)]?.irq, irq)
        XCTAssertTrue(msi.contains("\(irq)"), "IRQ \(irq) is one of \(name)'s device's MSI vectors \(msi)")
        let line = interrupts.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(irq):") } ?? ""
        let label = line.split(separator: " ").last.map(String.init) ?? ""
        XCTAssertTrue(
          label.hasSuffix("input.\(queue)") || label.hasSuffix("-\(queue)") || label.hasSuffix("rx-\(queue)"),
          "/proc/interrupts names IRQ \(irq) '\(label)' for \(name) rx-\(queue)")
        checked += 1
      }
    }
    if hasNetlink { XCTAssertGreaterThan(checked, 0, "a NIC with queues to check") }
    XCTAssertNil(NetdevNetlink.napi(id: 1), "NAPI ids start above the ones reserved for sockets; 1 is none")
  }

  /// ethtool's RSS_GET and the ETHTOOL_GRSSH ioctl: two kernel interfaces to
  /// one configuration, which must agree on every NIC here.
  func testEthtoolNetlinkAndIoctlAgree() throws {
    let release = KernelFeatures.release()
    let parts = release.split(separator: ".").compactMap { Int($0.prefix { $0.isNumber }) }
    let hasRSSGet = parts.count >= 2 && (parts[0], parts[1]) >= (6, 3)
    let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(socket) }
    let names = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net").sorted()
    var compared = 0
    for name in names where FileManager.default.fileExists(atPath: "/sys/class/net/\(name)/device") {
      let ioctl = try? RSSConfiguration.read(interface: name, through: FileDescriptor(rawValue: socket), netlink: false)
      let netlink = EthtoolNetlink.rss(interface: name)
      guard hasRSSGet else {
        XCTAssertNil(netlink, "\(release) has no RSS_GET")
        continue
      }
      guard let ioctl else {
        XCTAssertNil(netlink, "\(name): the ioctl has no RSS, netlink must not either")
        continue
      }
      let answer = try XCTUnwrap(netlink, "\(name): RSS_GET answered on \(release)")
      XCTAssertEqual(answer.key, ioctl.key, name)
      XCTAssertEqual(answer.table, ioctl.table, name)
      XCTAssertEqual(RSSConfiguration.HashFunction(bits: answer.hashFunction), ioctl.hashFunction, name)
      let preferred = try RSSConfiguration.read(interface: name, through: FileDescriptor(rawValue: socket))
      XCTAssertEqual(preferred.source, "netlink", "\(name): netlink first where the kernel has it")
      compared += 1
    }
    if hasRSSGet { XCTAssertGreaterThan(compared, 0, "a NIC with RSS configuration to compare") }
  }
}
