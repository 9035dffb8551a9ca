import NIOSSL
import SystemPackage
import Yams

/// serve's web config: the file of the Prometheus exporter toolkit's
/// `--web.config.file`, which operators already keep for node_exporter, read
/// the way the toolkit reads it:
///
/// - `tls_server_config`: the certificate and key (files, relative to the
///   config's directory, or PEM inline), the client certificate policy and
///   its CAs, TLS versions, cipher suites (up to TLS 1.2) and curves;
/// - `http_server_config`: the toolkit's five security headers (`http2` is
///   accepted and has no effect: sockaff speaks HTTP/1.1);
/// - `basic_auth_users`: user names and their bcrypt hashes;
/// - `rate_limit`: a token bucket over every request.
///
/// Strict, as the toolkit's own parse is: an unknown key, a value of the
/// wrong type or a file that does not load is an error naming the key and
/// its line. Everything is loaded here, certificates and keys included
/// (their mismatch too), so that a bad file is refused at start, not at the
/// first scrape.
public struct WebConfig: Sendable {
  public struct TLS: Sendable {
    /// The toolkit's `client_auth_type`, Go's `tls.ClientAuthType` names.
    public enum ClientAuth: String, Sendable, CaseIterable {
      case noClientCert = "NoClientCert"
      case requestClientCert = "RequestClientCert"
      case requireAnyClientCert = "RequireAnyClientCert"
      case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
      case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

      /// Whether a presented certificate is checked against the client CAs.
      var verifies: Bool { self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert }
    }

    public let clientAuth: ClientAuth
    /// Built once per reading of the file: every connection's handshake uses it.
    public let context: NIOSSLContext
    /// `client_allowed_sans`: a client's certificate must name one of these
    /// as a subject alternative name (DNS name, email, IP address or URI,
    /// compared exactly, as the toolkit does); nil: any.
    public var allowedSANs: [String]? = nil
  }

  /// A token bucket: one request per `interval` seconds, bursts of `burst`.
  public struct RateLimit: Sendable, Equatable {
    public let interval: Double
    public let burst: Int
  }

  /// nil: plain HTTP.
  public let tls: TLS?
  /// Added to every answer, in the file's order.
  public let headers: [(name: String, value: String)]
  /// User name to bcrypt hash; empty: no authentication.
  public let users: [String: String]
  public let rateLimit: RateLimit?
  /// The files the config names (certificates, keys, CAs): a change to any
  /// of them, as to the config itself, makes it read again.
  public let files: [String]

  /// The toolkit's security headers, the only ones it lets a file set.
  static let headerNames = [
    "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
    "Strict-Transport-Security",
  ]

  /// Reads and checks the file at `path`.
  public static func load(path: String) throws(WebConfigError) -> WebConfig {
    let text = try readText(path, key: nil)
    let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
    return try parse(text, directory: directory.isEmpty ? "/" : directory)
  }

  /// `text` as a web config whose relative file names are relative to `directory`.
  static func parse(_ text: String, directory: String) throws(WebConfigError) -> WebConfig {
    let root: Node?
    do {
      root = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      // libyaml's problem at its line; a key twice, with the mapping's line.
      switch error {
      case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
        .composer(_, let problem, let mark, _):
        throw WebConfigError(line: mark.line, key: nil, problem: "not YAML: \(problem)")
      case .duplicatedKeysInMapping(let duplicates, let context):
        throw WebConfigError(
          line: context.mark.line, key: duplicates.joined(separator: ", "), problem: "given twice in one mapping")
      default:
        throw WebConfigError(line: nil, key: nil, problem: "not YAML: \(error)".replacingNewlines())
      }
    } catch {
      throw WebConfigError(line: nil, key: nil, problem: "not YAML: \(error)")
    }
    // An empty file is the toolkit's empty config: plain HTTP, no authentication.
    guard let root, !root.isNull else {
      return WebConfig(tls: nil, headers: [], users: [:], rateLimit: nil, files: [])
    }
    var reader = Reader(directory: directory)
    let top = try reader.mapping(
      root, path: "", keys: ["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"])
    let tls = try top["tls_server_config"].flatMap { node throws(WebConfigError) in try reader.tls(node) }
    var headers: [(String, String)] = []
    if let http = top["http_server_config"] {
      let fields = try reader.mapping(http, path: "http_server_config", keys: ["http2", "headers"])
      if let http2 = fields["http2"] { _ = try reader.bool(http2, path: "http_server_config.http2") }
      if let node = fields["headers"] { headers = try reader.headers(node) }
    }
    var users: [String: String] = [:]
    if let node = top["basic_auth_users"] {
      for (name, value, _) in try reader.entries(node, path: "basic_auth_users") {
        let path = "basic_auth_users.\(name)"
        let hash = try reader.string(value, path: path)
        guard !name.contains(":"), !name.isEmpty else {
          throw WebConfigError(line: value.mark?.line, key: path, problem: "a user name may not be empty or hold ':'")
        }
        guard Bcrypt.isHash(hash) else {
          throw WebConfigError(
            line: value.mark?.line, key: path, problem: "not a bcrypt hash (e.g. from 'htpasswd -nBC 10 \"\"')")
        }
        users[name] = hash
      }
    }
    let rateLimit = try top["rate_limit"].flatMap { node throws(WebConfigError) in try reader.rateLimit(node) }
    return WebConfig(tls: tls, headers: headers, users: users, rateLimit: rateLimit, files: reader.files)
  }

  /// A file's text; `key` names the config key that named it (nil: the config itself).
  static func readText(_ path: String, key: String?, line: Int? = nil) throws(WebConfigError) -> String {
    do {
      let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
      defer { try? fd.close() }
      var bytes: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 65536)
      while true {
        let count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
        if count == 0 { break }
        bytes += chunk[..<count]
        guard bytes.count <= 1 << 20 else { throw Errno.fileTooLarge }
      }
      return String(decoding: bytes, as: UTF8.self)
    } catch {
      let errno = (error as? Errno)?.description ?? "\(error)"
      throw WebConfigError(line: line, key: key, problem: key == nil ? errno : "\(path): \(errno)")
    }
  }
}

/// What is wrong with a web config, in one line: its line, its key, the problem.
public struct WebConfigError: Error, CustomStringConvertible, Sendable, Equatable {
  public let line: Int?
  public let key: String?
  public let problem: String

  public var description: String {
    [line.map { "line \($0)" }, key, problem].compactMap { $0 }.joined(separator: ": ")
  }
}

/// The walk over the file's YAML: keys checked against the format's,
/// values against their types, file names resolved and remembered.
private struct Reader {
  let directory: String
  var files: [String] = []

  /// A mapping's values by key; a key outside `keys`, or twice, is an error.
  func mapping(_ node: Node, path: String, keys: Set<String>) throws(WebConfigError) -> [String: Node] {
    var fields: [String: Node] = [:]
    for (key, value, line) in try entries(node, path: path) {
      let full = path.isEmpty ? key : "\(path).\(key)"
      guard keys.contains(key) else {
        throw WebConfigError(
          line: line, key: full, problem: "not a key of \(path.isEmpty ? "the web config" : path)")
      }
      if !value.isNull { fields[key] = value }
    }
    return fields
  }

  /// A mapping's entries in order, keys as strings with their line, no key twice.
  func entries(_ node: Node, path: String) throws(WebConfigError) -> [(String, Node, line: Int?)] {
    if node.isNull { return [] }
    guard case .mapping(let mapping) = node else {
      throw WebConfigError(line: node.mark?.line, key: path.isEmpty ? nil : path, problem: "not a mapping")
    }
    var seen: Set<String> = []
    var entries: [(String, Node, line: Int?)] = []
    for (key, value) in mapping {
      guard case .scalar(let scalar) = key else {
        throw WebConfigError(line: key.mark?.line, key: path, problem: "a key that is not a string")
      }
      guard seen.insert(scalar.string).inserted else {
        throw WebConfigError(
          line: key.mark?.line, key: path.isEmpty ? scalar.string : "\(path).\(scalar.string)",
          problem: "given twice")
      }
      entries.append((scalar.string, value, key.mark?.line))
    }
    return entries
  }

  func string(_ node: Node, path: String) throws(WebConfigError) -> String {
    guard case .scalar(let scalar) = node else {
      throw WebConfigError(line: node.mark?.line, key: path, problem: "not a string")
    }
    return scalar.string
  }

  func bool(_ node: Node, path: String) throws(WebConfigError) -> Bool {
    guard case .scalar = node, let value = node.bool else {
      throw WebConfigError(line: node.mark?.line, key: path, problem: "not true or false")
    }
    return value
  }

  func strings(_ node: Node, path: String) throws(WebConfigError) -> [String] {
    guard case .sequence(let sequence) = node else {
      throw WebConfigError(line: node.mark?.line, key: path, problem: "not a list")
    }
    var values: [String] = []
    for item in sequence { values.append(try string(item, path: path)) }
    return values
  }

  func oneOf<T>(_ node: Node, path: String, _ choices: [(String, T)]) throws(WebConfigError) -> T {
    let value = try string(node, path: path)
    guard let choice = choices.first(where: { $0.0 == value }) else {
      throw WebConfigError(
        line: node.mark?.line, key: path,
        problem: "'\(value)' is not one of \(choices.map(\.0).joined(separator: ", "))")
    }
    return choice.1
  }

  /// A file the config names, relative to the config's directory, read now.
  mutating func file(_ node: Node, path: String) throws(WebConfigError) -> [UInt8] {
    let name = try string(node, path: path)
    let resolved = name.hasPrefix("/") ? name : "\(directory)/\(name)"
    files.append(resolved)
    return Array(try WebConfig.readText(resolved, key: path, line: node.mark?.line).utf8)
  }

  /// PEM from `inline` or from the file `fileKey` names: exactly one of them.
  mutating func pem(
    _ fields: [String: Node], inline: String, fileKey: String, required: Bool
  ) throws(WebConfigError) -> (bytes: [UInt8], key: String, line: Int?)? {
    let path = "tls_server_config"
    switch (fields[inline], fields[fileKey]) {
    case (.some(let node), .some):
      throw WebConfigError(
        line: node.mark?.line, key: "\(path).\(inline)", problem: "given with \(fileKey): one of the two")
    case (.some(let node), nil):
      return (Array(try string(node, path: "\(path).\(inline)").utf8), "\(path).\(inline)", node.mark?.line)
    case (nil, .some(let node)):
      return (try file(node, path: "\(path).\(fileKey)"), "\(path).\(fileKey)", node.mark?.line)
    case (nil, nil):
      guard required else { return nil }
      throw WebConfigError(line: nil, key: "\(path).\(fileKey)", problem: "missing (or \(inline), inline)")
    }
  }

  static let versions: [(String, TLSVersion)] = [
    ("TLS10", .tlsv1), ("TLS11", .tlsv11), ("TLS12", .tlsv12), ("TLS13", .tlsv13),
  ]

  /// Go's names for the suites BoringSSL offers (up to TLS 1.2; 1.3's are fixed).
  static let cipherSuites: [(String, NIOTLSCipher)] = [
    ("TLS_RSA_WITH_AES_128_CBC_SHA", .TLS_RSA_WITH_AES_128_CBC_SHA),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", .TLS_RSA_WITH_AES_256_CBC_SHA),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", .TLS_RSA_WITH_AES_128_GCM_SHA256),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", .TLS_RSA_WITH_AES_256_GCM_SHA384),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", .TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", .TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
  ]

  /// Go's `tls.CurveID` names.
  static let curves: [(String, NIOTLSCurve)] = [
    ("CurveP256", .secp256r1), ("CurveP384", .secp384r1), ("CurveP521", .secp521r1), ("X25519", .x25519),
    ("X25519MLKEM768", .x25519_MLKEM768),
  ]

  mutating func tls(_ node: Node) throws(WebConfigError) -> WebConfig.TLS? {
    let path = "tls_server_config"
    let fields = try mapping(
      node, path: path,
      keys: [
        "cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
        "client_allowed_sans", "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
        "curve_preferences",
      ])
    // The toolkit's rule: a TLS section naming no certificate at all is plain HTTP.
    let namesCertificate = ["cert", "key", "cert_file", "key_file"].contains { fields[$0] != nil }
    guard namesCertificate else {
      if let first = fields.first {
        throw WebConfigError(
          line: first.value.mark?.line, key: "\(path).\(first.key)", problem: "given without cert_file and key_file")
      }
      return nil
    }
    let certificate = try pem(fields, inline: "cert", fileKey: "cert_file", required: true)!
    let key = try pem(fields, inline: "key", fileKey: "key_file", required: true)!
    let clientCA = try pem(fields, inline: "client_ca", fileKey: "client_ca_file", required: false)
    let clientAuth =
      try fields["client_auth_type"].map { node throws(WebConfigError) in
        try oneOf(node, path: "\(path).client_auth_type", WebConfig.TLS.ClientAuth.allCases.map { ($0.rawValue, $0) })
      } ?? .noClientCert

    let chain: [NIOSSLCertificate]
    do {
      chain = try NIOSSLCertificate.fromPEMBytes(certificate.bytes)
    } catch {
      throw WebConfigError(line: certificate.line, key: certificate.key, problem: "no PEM certificate in it")
    }
    guard !chain.isEmpty else {
      throw WebConfigError(line: certificate.line, key: certificate.key, problem: "no PEM certificate in it")
    }
    let privateKey: NIOSSLPrivateKey
    do {
      privateKey = try NIOSSLPrivateKey(bytes: key.bytes, format: .pem)
    } catch {
      throw WebConfigError(line: key.line, key: key.key, problem: "no PEM private key in it")
    }
    var configuration = TLSConfiguration.makeServerConfiguration(
      certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
    switch (clientAuth, clientCA) {
    case (.noClientCert, .some(let ca)):
      // The toolkit refuses this too: CAs that verify nobody.
      throw WebConfigError(
        line: ca.line, key: ca.key, problem: "given with client_auth_type NoClientCert: no client is verified")
    case (let auth, nil) where auth.verifies:
      throw WebConfigError(
        line: fields["client_auth_type"]?.mark?.line, key: "\(path).client_ca_file",
        problem: "missing: client_auth_type \(auth.rawValue) verifies clients against it")
    case (_, .some(let ca)):
      do {
        let roots = try NIOSSLCertificate.fromPEMBytes(ca.bytes)
        guard !roots.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
        configuration.trustRoots = .certificates(roots)
        configuration.sendCANameList = true
      } catch {
        throw WebConfigError(line: ca.line, key: ca.key, problem: "no PEM certificate in it")
      }
    default: break
    }
    // NIOSSL's modes; the two that take any certificate verify through the
    // handler's callback, which accepts every one (MetricsHTTPServer).
    switch clientAuth {
    case .noClientCert: configuration.certificateVerification = .none
    case .requestClientCert, .verifyClientCertIfGiven: configuration.certificateVerification = .optionalVerification
    case .requireAnyClientCert, .requireAndVerifyClientCert:
      configuration.certificateVerification = .noHostnameVerification
    }
    configuration.minimumTLSVersion =
      try fields["min_version"].map { node throws(WebConfigError) in
        try oneOf(node, path: "\(path).min_version", Self.versions)
      } ?? .tlsv12
    configuration.maximumTLSVersion =
      try fields["max_version"].map { node throws(WebConfigError) in
        try oneOf(node, path: "\(path).max_version", Self.versions)
      } ?? .tlsv13
    let order = Self.versions.map(\.1)
    if let maximum = configuration.maximumTLSVersion,
      order.firstIndex(of: maximum)! < order.firstIndex(of: configuration.minimumTLSVersion)!
    {
      throw WebConfigError(
        line: fields["max_version"]?.mark?.line, key: "\(path).max_version", problem: "below min_version")
    }
    if let node = fields["cipher_suites"] {
      var suites: [NIOTLSCipher] = []
      for name in try strings(node, path: "\(path).cipher_suites") {
        guard let suite = Self.cipherSuites.first(where: { $0.0 == name }) else {
          throw WebConfigError(
            line: node.mark?.line, key: "\(path).cipher_suites", problem: "'\(name)' is not a suite sockaff offers")
        }
        suites.append(suite.1)
      }
      if !suites.isEmpty { configuration.cipherSuiteValues = suites }
    }
    // Go ignores it since 1.18 (the server's order is chosen for the client); so does sockaff.
    if let node = fields["prefer_server_cipher_suites"] {
      _ = try bool(node, path: "\(path).prefer_server_cipher_suites")
    }
    if let node = fields["curve_preferences"] {
      var curves: [NIOTLSCurve] = []
      for name in try strings(node, path: "\(path).curve_preferences") {
        guard let curve = Self.curves.first(where: { $0.0 == name }) else {
          throw WebConfigError(
            line: node.mark?.line, key: "\(path).curve_preferences",
            problem: "'\(name)' is not one of \(Self.curves.map(\.0).joined(separator: ", "))")
        }
        curves.append(curve.1)
      }
      if !curves.isEmpty { configuration.curves = curves }
    }
    var allowedSANs: [String]?
    if let node = fields["client_allowed_sans"] {
      // The toolkit's rule: only where a certificate is required is there one to match.
      guard clientAuth == .requireAnyClientCert || clientAuth == .requireAndVerifyClientCert else {
        throw WebConfigError(
          line: node.mark?.line, key: "\(path).client_allowed_sans",
          problem:
            "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not \(clientAuth.rawValue)")
      }
      allowedSANs = try strings(node, path: "\(path).client_allowed_sans")
    }
    do {
      var tls = WebConfig.TLS(clientAuth: clientAuth, context: try NIOSSLContext(configuration: configuration))
      tls.allowedSANs = allowedSANs
      return tls
    } catch NIOSSLError.failedToLoadPrivateKey {
      // BoringSSL's check that the key is the certificate's.
      throw WebConfigError(line: key.line, key: key.key, problem: "not the key of the certificate")
    } catch {
      throw WebConfigError(line: key.line, key: key.key, problem: "refused with the certificate by TLS: \(error)")
    }
  }

  func headers(_ node: Node) throws(WebConfigError) -> [(String, String)] {
    var headers: [(String, String)] = []
    for (name, value, _) in try entries(node, path: "http_server_config.headers") {
      let path = "http_server_config.headers.\(name)"
      guard WebConfig.headerNames.contains(name) else {
        throw WebConfigError(
          line: value.mark?.line, key: path,
          problem: "not a header the web config sets (\(WebConfig.headerNames.joined(separator: ", ")))")
      }
      let text = try string(value, path: path)
      guard !text.contains(where: { $0.isNewline }) else {
        throw WebConfigError(line: value.mark?.line, key: path, problem: "holds a line break")
      }
      let allowed: [String]? =
        switch name {
        case "X-Frame-Options": ["deny", "sameorigin"]
        case "X-Content-Type-Options": ["nosniff"]
        default: nil
        }
      if let allowed, !allowed.contains(text.lowercased()) {
        throw WebConfigError(
          line: value.mark?.line, key: path, problem: "'\(text)' is not one of \(allowed.joined(separator: ", "))")
      }
      // Blank: unset, as in the toolkit.
      if !text.isEmpty { headers.append((name, text)) }
    }
    return headers
  }

  func rateLimit(_ node: Node) throws(WebConfigError) -> WebConfig.RateLimit? {
    let fields = try mapping(node, path: "rate_limit", keys: ["interval", "burst"])
    let interval =
      try fields["interval"].map { node throws(WebConfigError) in
        let text = try string(node, path: "rate_limit.interval")
        guard let seconds = GoDuration.seconds(text), seconds >= 0 else {
          throw WebConfigError(
            line: node.mark?.line, key: "rate_limit.interval", problem: "'\(text)' is not a duration (e.g. 1s, 500ms)")
        }
        return seconds
      } ?? 0
    let burst =
      try fields["burst"].map { node throws(WebConfigError) in
        guard case .scalar = node, let burst = node.int, burst >= 0 else {
          throw WebConfigError(line: node.mark?.line, key: "rate_limit.burst", problem: "not a whole number, 0 or more")
        }
        return burst
      } ?? 0
    guard interval > 0 else { return nil }  // 0: no limit, as in the toolkit
    guard burst > 0 else {
      throw WebConfigError(
        line: fields["burst"]?.mark?.line ?? node.mark?.line, key: "rate_limit.burst",
        problem: "0 with an interval would refuse every request: give 1 or more")
    }
    return WebConfig.RateLimit(interval: interval, burst: burst)
  }
}

/// Go's `time.ParseDuration` text: "1s", "500ms", "1m30s", "0".
enum GoDuration {
  static let units: [(String, Double)] = [
    ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
  ]

  static func seconds(_ text: String) -> Double? {
    if text == "0" { return 0 }
    var rest = Substring(text)
    var total = 0.0
    guard !rest.isEmpty else { return nil }
    while !rest.isEmpty {
      let number = rest.prefix { $0.isNumber || $0 == "." }
      guard !number.isEmpty, let value = Double(number) else { return nil }
      rest = rest.dropFirst(number.count)
      let unitText = rest.prefix { !($0.isNumber || $0 == ".") }
      guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
      rest = rest.dropFirst(unitText.count)
      total += value * unit.1
    }
    return total
  }
}

extension Node {
  /// YAML's null (`~`, `null`, nothing): the key as if absent.
  fileprivate var isNull: Bool {
    if case .scalar = self { return null != nil }
    return false
  }
}

extension String {
  fileprivate func replacingNewlines() -> String {
    split(whereSeparator: \.isNewline).joined(separator: " ")
  }
}
