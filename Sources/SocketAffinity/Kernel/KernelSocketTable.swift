import CLibbpf
import CSockaffABI
import CSockaffShims
import Glibc
import Synchronization

/// Every full TCP and UDP socket of some network namespaces, as the kernel
/// keeps it, read in one pass per protocol and namespace by the census's
/// iterators (bpf/sockaff_iter.bpf.c: `sockaff_tcp_sockets` over iter/tcp,
/// `sockaff_udp_sockets` over iter/udp), and found again by the sockfs
/// inode that /proc/P/fd shows. A census then stats each fd instead of
/// opening it (pidfd_getfd and about eight syscalls a socket).
///
/// Each protocol is a capability of its own: a kernel that refuses one
/// iterator leaves that protocol's sockets to the per-socket reading.
/// The iterators walk the namespace their iterator is made in: one is made
/// inside each namespace the listing's processes live in
/// (`sockaff_iter_create_in_netns`). A socket made in a namespace where no
/// process lives (made, then its maker moved) is not in any pass.
struct KernelSocketTable: Sendable {
  typealias Row = sockaff_census_socket

  /// Rows by sockfs inode.
  let rows: [UInt64: Row]
  /// The protocols read in one pass (IPPROTO_TCP, IPPROTO_UDP).
  let protocols: Set<Int32>
  /// The network namespaces (inodes) every one of those passes read.
  let namespaces: Set<UInt64>

  /// Whether a socket absent from `rows`, held by a process of namespace
  /// `namespace`, is known to be no TCP or UDP socket of that namespace
  /// (else it must be read on its own).
  func covers(namespace: UInt64?) -> Bool {
    protocols.count == 2 && namespace.map(namespaces.contains) ?? false
  }

  /// The row's NAPI id as SO_INCOMING_NAPI_ID gives it: sk_napi_id also
  /// holds what is no NAPI (a packet with no NAPI leaves its sender's CPU + 1
  /// there: over loopback), which the option reads as 0. The kernel tells
  /// them apart by NR_CPUS (its NAPI ids start above it), which userspace
  /// cannot read: no possible CPU's number + 1 is a NAPI id.
  static func napiID(_ row: Row) -> UInt32? {
    row.napi_id > possibleCPUs ? row.napi_id : nil
  }

  private static let possibleCPUs = UInt32(max(libbpf_num_possible_cpus(), 1))

  /// The protocols that the kernel lets be read in one pass, as probed.
  static var availableProtocols: Set<Int32> {
    var protocols = Set<Int32>()
    if KernelFeatures.has(KernelFeatures.censusTCPIterator) { protocols.insert(Int32(IPPROTO_TCP)) }
    if KernelFeatures.has(KernelFeatures.censusUDPIterator) { protocols.insert(Int32(IPPROTO_UDP)) }
    return protocols
  }

  /// What keeps a protocol from being read in one pass, per feature not
  /// usable ("iter/tcp refused (EPERM as root)"); empty where both can be.
  static var unavailable: [String] {
    [KernelFeatures.censusTCPIterator, KernelFeatures.censusUDPIterator].compactMap { (name) -> String? in
      guard let feature = KernelFeatures.feature(name), feature.state != .yes else { return nil }
      let state = feature.state.rawValue.split(separator: "_").joined(separator: " ")
      return "\(name) \(state)" + (feature.detail.map { " (\($0))" } ?? "")
    }
  }

  /// One pass per available protocol in each namespace, named by one of
  /// its processes (`namespaces`: namespace inode → pid). A namespace whose
  /// process exited meanwhile, or that cannot be entered, is left out of
  /// `namespaces` (its sockets are read on their own). nil when no
  /// protocol can be read in one pass.
  static func read(namespaces: [UInt64: Int32]) -> KernelSocketTable? {
    let protocols = availableProtocols
    guard !protocols.isEmpty else { return nil }
    return loaded.withLock { (cache) -> KernelSocketTable? in
      do {
        if cache == nil { cache = try Programs(protocols: protocols) }
        guard let programs = cache else { return nil }
        return try programs.read(namespaces: namespaces)
      } catch {
        return nil
      }
    }
  }

  /// The loaded programs, kept for the process's next census (a metrics
  /// server's next scrape) so the verifier runs once; and the memory their
  /// output is read into.
  private final class Programs: @unchecked Sendable {
    let object: LoadedBPFObject
    let names: [(protocol: Int32, program: String)]
    let output = IteratorOutput()

    init(protocols: Set<Int32>) throws(SockaffError) {
      names = [
        (Int32(IPPROTO_TCP), LoadedBPFObject.censusTCPProgramName),
        (Int32(IPPROTO_UDP), LoadedBPFObject.censusUDPProgramName),
      ].filter { protocols.contains($0.protocol) }
      object = try LoadedBPFObject(.readers, programs: Set(names.map(\.program)), mapless: true)
    }

    func read(namespaces: [UInt64: Int32]) throws(SockaffError) -> KernelSocketTable {
      let own = ProcFS.ownNetworkNamespace
      var entered: [(namespace: UInt64, fd: Int32)] = []
      defer { for (_, fd) in entered { close(fd) } }
      for (namespace, pid) in namespaces where namespace != own {
        let fd = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
        // The process names that namespace still (not a reused pid).
        if fd >= 0, ProcFS.networkNamespace(pid: pid) == namespace {
          entered.append((namespace, fd))
        } else if fd >= 0 {
          close(fd)
        }
      }
      var read = Set<UInt64>()
      if let own { read.insert(own) }
      read.formUnion(entered.map(\.namespace))
      var used = 0
      for (_, name) in names {
        let link = try BPFLink(name) { bpf_program__attach_iter(object.program(name), nil) }
        defer { link.close() }
        var iterator = bpf_iter_create(link.fd)
        guard iterator >= 0 else { throw SockaffError.lastErrno(operation: "bpf_iter_create (\(name))") }
        used = try output.read(iterator, name: name, from: used)
        close(iterator)
        for (namespace, fd) in entered where read.contains(namespace) {
          iterator = sockaff_iter_create_in_netns(link.fd, fd)
          if iterator == -2 {
            // This thread could not return to its own namespace: no
            // answer it gives from here on could be trusted.
            fatalError("setns back to sockaff's own network namespace failed: \(String(cString: strerror(errno)))")
          }
          guard iterator >= 0 else {
            read.remove(namespace)
            continue
          }
          defer { close(iterator) }
          do {
            used = try output.read(iterator, name: name, from: used)
          } catch {
            read.remove(namespace)
          }
        }
      }
      let count = used / MemoryLayout<Row>.stride
      var rows = [UInt64: Row](minimumCapacity: count)
      let base = output.bytes.bindMemory(to: Row.self, capacity: count)
      for index in 0..<count where base[index].inode != 0 {
        rows[base[index].inode] = base[index]
      }
      return KernelSocketTable(rows: rows, protocols: Set(names.map(\.protocol)), namespaces: read)
    }
  }

  private static let loaded = Mutex<Programs?>(nil)
}
