import Foundation
import Glibc
import XCTest

/// `sockaff serve --web.config.file`: TLS and basic auth as curl, a real
/// TLS client with its own CA store, sees them. Certificates are made here
/// by openssl, passwords hashed by Python's crypt (libxcrypt), the answers
/// read by curl and the reference parser; nothing of sockaff's checks itself.
final class WebConfigServeTests: KernelTestCase {
  private var directory = ""

  override func setUpWithError() throws {
    try super.setUpWithError()
    directory = FileManager.default.temporaryDirectory.appending(path: "sockaff-web-\(getpid())-\(UUID().uuidString)")
      .path(percentEncoded: false)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: directory)
    try super.tearDownWithError()
  }

  private func file(_ name: String) -> String { "\(directory)/\(name)" }

  /// A CA, and certificates it signs: the server's for 127.0.0.1, a client's.
  private func makeCertificates() throws {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ["ca", "other-ca"] {
      try Command.must(
        ["openssl", "req", "-x509"] + ec + [
          "-days", "2", "-subj", "/CN=sockaff test \(ca)", "-keyout", file("\(ca).key"), "-out", file("\(ca).crt"),
        ])
    }
    for (name, extensions) in [
      ("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth"),
      ("named-client", "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:prometheus.example,URI:spiffe://example.org/p"),
    ] {
      try Command.must(
        ["openssl", "req", "-new"] + ec + [
          "-subj", "/CN=\(name)", "-keyout", file("\(name).key"), "-out", file("\(name).csr"),
        ])
      try "\(extensions)\n".write(toFile: file("\(name).ext"), atomically: true, encoding: .utf8)
      try Command.must([
        "openssl", "x509", "-req", "-in", file("\(name).csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", file("\(name).ext"), "-out", file("\(name).crt"),
      ])
    }
  }

  /// A bcrypt hash of `password`, as `htpasswd -B` would write it.
  private func bcrypt(_ password: String) throws -> String {
    try Command.must([
      "python3", "-W", "ignore", "-c",
      "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))",
      password,
    ]).trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Written as configuration management writes: a new file renamed over the old.
  private func writeConfig(_ text: String) throws {
    try text.write(toFile: file("web.yml.new"), atomically: false, encoding: .utf8)
    XCTAssertEqual(rename(file("web.yml.new"), file("web.yml")), 0)
  }

  /// curl's HTTP status ("000" when no answer came) and exit status.
  private func curl(_ url: String, _ options: [String] = []) throws -> (code: String, exit: Int32, headers: String) {
    let result = try Command.run(
      ["curl", "-s", "-o", file("body"), "-D", file("headers"), "-w", "%{http_code}", "--max-time", "10"] + options + [
        url
      ])
    let headers = (try? String(contentsOfFile: file("headers"), encoding: .utf8)) ?? ""
    return (result.stdout, result.status, headers)
  }

  func testTLSWithBasicAuthRefusesWhatItMustAndReadsAChangedFile() throws {
    try attach()
    try makeCertificates()
    let password = "scrape-\(UUID().uuidString)"
    let config = """
      tls_server_config:
        cert_file: server.crt
        key_file: server.key
      http_server_config:
        headers:
          X-Frame-Options: deny
      basic_auth_users:
        prometheus: \(try bcrypt(password))

      """
    try writeConfig(config)
    let server = try MetricsServer(arguments: ["--web.config.file", file("web.yml")])
    defer { server.stop() }
    XCTAssertTrue(server.url.hasPrefix("https://127.0.0.1:"), server.url)
    let ca = ["--cacert", file("ca.crt")]

    let anonymous = try curl(server.url, ca)
    XCTAssertEqual(anonymous.code, "401", "no credentials")
    XCTAssertTrue(anonymous.headers.lowercased().contains("www-authenticate: basic"), anonymous.headers)
    XCTAssertEqual(try curl(server.url, ca + ["-u", "prometheus:wrong"]).code, "401", "a wrong password")
    XCTAssertEqual(try curl(server.url, ca + ["-u", "nobody:\(password)"]).code, "401", "an unknown user")

    let scrape = try curl(server.url, ca + ["-u", "prometheus:\(password)"])
    XCTAssertEqual(scrape.code, "200")
    XCTAssertTrue(scrape.headers.lowercased().contains("x-frame-options: deny"), scrape.headers)
    XCTAssertEqual(try parse("file", file("body")).values("sockaff_tracer_attached"), [1], "the exposition itself")

    let landing = try curl(
      server.url.replacingOccurrences(of: "/metrics", with: "/"), ca + ["-u", "prometheus:\(password)"])
    XCTAssertEqual(landing.code, "200")
    XCTAssertTrue(
      try String(contentsOfFile: file("body"), encoding: .utf8).contains("href=\"/metrics\""), "links to /metrics")

    let untrusted = try curl(server.url, ["--cacert", file("other-ca.crt"), "-u", "prometheus:\(password)"])
    XCTAssertEqual(untrusted.code, "000", "a client that trusts another CA gets no answer")
    XCTAssertEqual(untrusted.exit, 60, "curl: the peer's certificate cannot be verified")
    let plain = try curl(
      server.url.replacingOccurrences(of: "https://", with: "http://"), ["-u", "prometheus:\(password)"])
    XCTAssertEqual(plain.code, "000", "plain HTTP to the TLS listener gets no HTTP answer")
    XCTAssertNotEqual(plain.exit, 0)

    // A new password, renamed into place: the next request is checked against it.
    let renewed = "renewed-\(UUID().uuidString)"
    try writeConfig(
      """
      tls_server_config:
        cert_file: server.crt
        key_file: server.key
      basic_auth_users:
        prometheus: \(try bcrypt(renewed))

      """)
    XCTAssertEqual(try curl(server.url, ca + ["-u", "prometheus:\(password)"]).code, "401", "the old password")
    XCTAssertEqual(try curl(server.url, ca + ["-u", "prometheus:\(renewed)"]).code, "200", "the new one")

    // A broken edit fails closed (no handshake), and the fixed file serves again.
    try writeConfig("tls_server_config:\n  cert_file: server.crt\n  key_file: absent.key\n")
    let broken = try curl(server.url, ca + ["-u", "prometheus:\(renewed)"])
    XCTAssertEqual(broken.code, "000", "no handshake while the config does not load")
    try writeConfig("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    XCTAssertEqual(try curl(server.url, ca).code, "200", "no basic_auth_users: no authentication")
  }

  /// serve with TLS that verifies clients against ca.crt, `extra` lines
  /// added to tls_server_config.
  private func serveVerifyingClients(_ extra: String) throws -> MetricsServer {
    try makeCertificates()
    try writeConfig(
      "tls_server_config:\n  cert_file: \(file("server.crt"))\n  key_file: \(file("server.key"))\n"
        + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n" + extra)
    return try MetricsServer(arguments: ["--web.config.file", file("web.yml")])
  }

  func testVerifiedClientCertificatesAreRequired() throws {
    let server = try serveVerifyingClients("  min_version: TLS12\n")
    defer { server.stop() }
    let ca = ["--cacert", file("ca.crt")]
    XCTAssertEqual(try curl(server.url, ca + ["--cert", file("client.crt"), "--key", file("client.key")]).code, "200")
    let without = try curl(server.url, ca)
    XCTAssertEqual(without.code, "000", "no client certificate: no answer")
    XCTAssertNotEqual(without.exit, 0)
    // A certificate its CA did not sign: the server's own, signed by the other CA.
    try Command.must([
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=stranger", "-keyout", file("stranger.key"), "-out", file("stranger.crt"),
    ])
    let stranger = try curl(server.url, ca + ["--cert", file("stranger.crt"), "--key", file("stranger.key")])
    XCTAssertEqual(stranger.code, "000", "a client certificate of another CA: no answer")
  }

  /// client_allowed_sans: of two client certificates the CA signed, only
  /// the one naming an allowed SAN gets an answer; the other's connection
  /// is closed before its request is read.
  func testOnlyClientCertificatesNamingAnAllowedSANAreAnswered() throws {
    let server = try serveVerifyingClients("  client_allowed_sans:\n    - spiffe://example.org/p\n")
    defer { server.stop() }
    let ca = ["--cacert", file("ca.crt")]
    let named = try curl(server.url, ca + ["--cert", file("named-client.crt"), "--key", file("named-client.key")])
    XCTAssertEqual(named.code, "200", "its URI SAN is allowed")
    let unnamed = try curl(server.url, ca + ["--cert", file("client.crt"), "--key", file("client.key")])
    XCTAssertEqual(unnamed.code, "000", "signed by the CA, but naming no allowed SAN: no answer")
    XCTAssertNotEqual(unnamed.exit, 0)
    XCTAssertEqual(try curl(server.url, ca).code, "000", "no certificate at all")
  }

  /// A file that does not load is refused at start: one line naming its
  /// line and key, exit 22, nothing on stdout, nothing listening.
  func testABadFileIsRefusedAtStartNamingTheKey() throws {
    try makeCertificates()
    let cases: [(String, String)] = [
      ("tls_server_config:\n  cert_file: server.crt\n  keyfile: server.key\n", "line 3: tls_server_config.keyfile: "),
      ("tls_server_config:\n  cert_file: server.crt\n  key_file: ca.key\n", "line 3: tls_server_config.key_file: "),
      ("basic_auth_users:\n  prometheus: secret\n", "line 2: basic_auth_users.prometheus: "),
      (
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
        "line 4: tls_server_config.client_ca_file: "
      ),
    ]
    for (text, expected) in cases {
      try writeConfig(text)
      let result = try Command.sockaff("serve", "--listen", "127.0.0.1:0", "--web.config.file", file("web.yml"))
      XCTAssertEqual(result.status, 22, text)
      XCTAssertEqual(result.stdout, "", text)
      let lines = result.stderr.split(separator: "\n")
      XCTAssertEqual(lines.count, 1, result.stderr)
      XCTAssertTrue(
        lines.first?.hasPrefix("sockaff serve: web config \(file("web.yml")): \(expected)") ?? false, result.stderr)
    }
    let missing = try Command.sockaff("serve", "--listen", "127.0.0.1:0", "--web.config.file", file("absent.yml"))
    XCTAssertEqual(missing.status, 22)
    XCTAssertTrue(missing.stderr.contains("No such file or directory"), missing.stderr)
  }
}
