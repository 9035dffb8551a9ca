import Glibc

/// Sockets found by what an operator knows of them, as `ss` finds them: a
/// port, and optionally the protocol and the local or remote address. The
/// kernel's socket tables of each network namespace (/proc/P/net/tcp, tcp6,
/// udp, udp6, read once per namespace through one of its processes) give
/// the matching sockets' inodes; every process's fd links
/// ("socket:[inode]") give their holders. A socket that several processes
/// hold (a pre-fork server's listener) is found under each.
public enum SocketSearch {
  /// What to match. `local` and `remote` are an address ("10.0.0.1",
  /// "::1") or an address and port ("10.0.0.1:80", "[::1]:80").
  public struct Filter: Sendable {
    public let port: UInt16
    public let transport: SocketKind.TransportProtocol?
    public let local: Endpoint?
    public let remote: Endpoint?

    public init(
      port: UInt16, transport: SocketKind.TransportProtocol? = nil, local: Endpoint? = nil, remote: Endpoint? = nil
    ) {
      (self.port, self.transport, self.local, self.remote) = (port, transport, local, remote)
    }
  }

  /// An address, with a port or without (`port` nil: any).
  public struct Endpoint: Sendable, Equatable {
    public let address: [UInt8]
    public let port: UInt16?

    /// "10.0.0.1", "10.0.0.1:80", "::1", "[::1]:80"; nil if it is none of them.
    public init?(_ text: String) {
      var host = text
      var port: UInt16?
      if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        if !rest.isEmpty {
          guard rest.hasPrefix(":"), let number = UInt16(rest.dropFirst()) else { return nil }
          port = number
        }
      } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
        guard let number = UInt16(text[text.index(after: colon)...]) else { return nil }
        (host, port) = (String(text[..<colon]), number)
      }
      var v4 = in_addr()
      var v6 = in6_addr()
      if inet_pton(AF_INET, host, &v4) == 1 {
        address = withUnsafeBytes(of: &v4) { Array($0) }
      } else if inet_pton(AF_INET6, host, &v6) == 1 {
        address = Self.unmapped(withUnsafeBytes(of: &v6) { Array($0) })
      } else {
        return nil
      }
      self.port = port
    }

    init(address: [UInt8], port: UInt16) {
      (self.address, self.port) = (Self.unmapped(address), port)
    }

    /// An IPv4-mapped IPv6 address as the IPv4 address it is.
    static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
      bytes.count == 16 && bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff
        ? Array(bytes.suffix(4)) : bytes
    }

    /// Whether `other` is this address (and this port, when one was given).
    public func matches(_ other: Endpoint) -> Bool { address == other.address && (port == nil || port == other.port) }
  }

  /// One holder of one matching socket.
  public struct Match: Sendable, Equatable {
    public let pid: Int32
    public let fd: Int32
    public let transport: SocketKind.TransportProtocol
  }

  /// Every holder of every socket that matches, by pid then fd. Processes
  /// that cannot be read (no CAP_SYS_PTRACE over them) are left out.
  public static func find(_ filter: Filter) -> [Match] {
    let processes = ProcFS.processIDs()
    var wanted: [UInt64: SocketKind.TransportProtocol] = [:]
    for (_, table) in tables(processes: processes) where filter.transport == nil || filter.transport == table.transport
    {
      for row in table.rows where row.local.port == filter.port {
        if let local = filter.local, !local.matches(row.local) { continue }
        if let remote = filter.remote, !remote.matches(row.remote) { continue }
        wanted[row.inode] = table.transport
      }
    }
    return holders(of: Set(wanted.keys), processes: processes).map { holder in
      Match(pid: holder.pid, fd: holder.fd, transport: wanted[holder.inode]!)
    }
  }

  /// One of a namespace's socket tables, as read through one of its processes.
  struct Table {
    let namespace: UInt64
    let transport: SocketKind.TransportProtocol
    let family: SocketKind.Family
    let rows: [Row]
  }

  /// Every network namespace's four tables, each namespace read through the
  /// first of `processes` found in it.
  static func tables(processes: [Int32]) -> [(reader: Int32, table: Table)] {
    var namespaces: [UInt64: Int32] = [:]
    for pid in processes {
      guard let link = ProcFS.link("/proc/\(pid)/ns/net"), let namespace = ProcFS.inode(inLink: link, kind: "net")
      else { continue }
      if namespaces[namespace] == nil { namespaces[namespace] = pid }
    }
    var tables: [(reader: Int32, table: Table)] = []
    for (namespace, pid) in namespaces.sorted(by: { $0.key < $1.key }) {
      for (name, transport, family) in [
        ("tcp", .tcp, .inet), ("tcp6", .tcp, .inet6), ("udp", .udp, .inet), ("udp6", .udp, .inet6),
      ]
        as [(String, SocketKind.TransportProtocol, SocketKind.Family)]
      {
        guard let text = try? readTextFile("/proc/\(pid)/net/\(name)") else { continue }
        tables.append(
          (pid, Table(namespace: namespace, transport: transport, family: family, rows: parseTable(text))))
      }
    }
    return tables
  }

  /// The holders (pid, fd) of the sockets with these inodes, by pid then fd.
  static func holders(of inodes: Set<UInt64>, processes: [Int32]) -> [(pid: Int32, fd: Int32, inode: UInt64)] {
    guard !inodes.isEmpty else { return [] }
    var holders: [(pid: Int32, fd: Int32, inode: UInt64)] = []
    for pid in processes {
      guard let fds = try? ProcFS.fileDescriptors(pid: pid) else { continue }
      for fd in fds {
        guard let link = ProcFS.link("/proc/\(pid)/fd/\(fd)"), let inode = ProcFS.inode(inLink: link, kind: "socket"),
          inodes.contains(inode)
        else { continue }
        holders.append((pid, fd, inode))
      }
    }
    return holders
  }

  /// One row of /proc/net/{tcp,tcp6,udp,udp6}.
  struct Row: Equatable {
    let local: Endpoint
    let remote: Endpoint
    /// The kernel's state number (TCP's: 0x0A a listener; UDP: 0x07 unconnected, 0x01 connected).
    var state: UInt8 = 0
    var uid: UInt32 = 0
    let inode: UInt64
  }

  /// The rows of one table: "sl local_address rem_address st ... uid timeout
  /// inode", addresses in hex as the kernel stores them (each 32-bit word in
  /// host order), ports in hex.
  static func parseTable(_ text: String) -> [Row] {
    text.split(separator: "\n").dropFirst().compactMap { line in
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count > 9, let local = endpoint(fields[1]), let remote = endpoint(fields[2]),
        let state = UInt8(fields[3], radix: 16), let uid = UInt32(fields[7]), let inode = UInt64(fields[9]), inode != 0
      else { return nil }
      return Row(local: local, remote: remote, state: state, uid: uid, inode: inode)
    }
  }

  /// "0100007F:1F90" or a 32-digit IPv6 address and a port.
  static func endpoint(_ field: Substring) -> Endpoint? {
    let parts = field.split(separator: ":")
    guard parts.count == 2, let port = UInt16(parts[1], radix: 16), parts[0].count == 8 || parts[0].count == 32
    else { return nil }
    var bytes: [UInt8] = []
    var index = parts[0].startIndex
    while index < parts[0].endIndex {
      let next = parts[0].index(index, offsetBy: 8)
      guard let word = UInt32(parts[0][index..<next], radix: 16) else { return nil }
      // The kernel printed each 32-bit word of the address (network byte
      // order in memory) as a host integer: the word's bytes in host order
      // are the address's bytes again, on any host.
      withUnsafeBytes(of: word) { bytes += $0 }
      index = next
    }
    return Endpoint(address: bytes, port: port)
  }
}
