import Foundation
import NIOSSL
import XCTest

@testable import SockaffWeb

/// The web config as the exporter toolkit defines it: what loads, and the
/// one line that names the key and its line when something does not.
final class WebConfigTests: XCTestCase {
  private var directory = ""

  override func setUpWithError() throws {
    directory = NSTemporaryDirectory() + "sockaff-webconfig-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: directory)
  }

  private func parse(_ text: String) throws(WebConfigError) -> WebConfig {
    try WebConfig.parse(text, directory: directory)
  }

  /// The error `text` is refused with; fails the test if it loads.
  private func refusal(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> WebConfigError? {
    do {
      _ = try parse(text)
      XCTFail("loaded, but should have been refused:\n\(text)", file: file, line: line)
      return nil
    } catch {
      return error
    }
  }

  /// A self-signed certificate and its key from openssl, as an operator makes one.
  private func makeCertificate(_ name: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=localhost", "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).crt",
    ]
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "openssl req")
  }

  func testAnEmptyFileIsPlainHTTPWithoutAuthentication() throws {
    for text in ["", "# nothing\n", "tls_server_config:\nbasic_auth_users:\n"] {
      let config = try parse(text)
      XCTAssertNil(config.tls, text)
      XCTAssertTrue(config.users.isEmpty, text)
      XCTAssertTrue(config.headers.isEmpty, text)
      XCTAssertNil(config.rateLimit, text)
    }
  }

  func testUnknownAndRepeatedKeysAreNamedWithTheirLine() {
    XCTAssertEqual(
      refusal("basic_auth_users: {}\ntls_config:\n  cert_file: a\n")?.description,
      "line 2: tls_config: not a key of the web config")
    XCTAssertEqual(
      refusal("tls_server_config:\n  cert_file: a\n  certfile: b\n")?.description,
      "line 3: tls_server_config.certfile: not a key of tls_server_config")
    let twice = refusal("rate_limit:\n  burst: 1\n  burst: 2\n")
    XCTAssertEqual(twice?.description, "line 2: burst: given twice in one mapping")
    XCTAssertEqual(refusal("- a\n- b\n")?.problem, "not a mapping")
    let broken = refusal("basic_auth_users:\n  a: [\n")
    XCTAssertTrue(broken?.problem.hasPrefix("not YAML: ") ?? false, "\(broken as Any)")
    XCTAssertEqual(broken?.line, 3)
  }

  func testBasicAuthUsersAreBcryptHashes() throws {
    // A published bcrypt test vector (OpenBSD's and crypt_blowfish's): "U*U".
    let hash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
    let config = try parse("basic_auth_users:\n  prometheus: \(hash)\n")
    XCTAssertEqual(config.users, ["prometheus": hash])
    XCTAssertTrue(Bcrypt.matches(password: "U*U", hash: hash))
    XCTAssertFalse(Bcrypt.matches(password: "U*V", hash: hash))
    XCTAssertFalse(Bcrypt.matches(password: "", hash: hash))
    XCTAssertFalse(Bcrypt.matches(password: "U*U", hash: Bcrypt.decoy(like: hash)))
    XCTAssertTrue(Bcrypt.decoy(like: hash).hasPrefix("$2y$05$"), "the decoy costs what the user's hash does")
    XCTAssertTrue(Bcrypt.isHash(Bcrypt.decoy(like: nil)))

    let plain = refusal("basic_auth_users:\n  alice: secret\n")
    XCTAssertEqual(plain?.key, "basic_auth_users.alice")
    XCTAssertEqual(plain?.line, 2)
    XCTAssertEqual(refusal("basic_auth_users:\n  alice: [a]\n")?.problem, "not a string")
  }

  func testHeadersAreTheToolkitsFiveWithTheirValues() throws {
    let config = try parse(
      """
      http_server_config:
        http2: true
        headers:
          X-Frame-Options: deny
          Strict-Transport-Security: max-age=31536000
          X-XSS-Protection: ""
      """)
    XCTAssertEqual(config.headers.map(\.name), ["X-Frame-Options", "Strict-Transport-Security"])
    XCTAssertEqual(config.headers.map(\.value), ["deny", "max-age=31536000"])
    XCTAssertEqual(
      refusal("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")?.description,
      "line 3: http_server_config.headers.X-Frame-Options: 'allow' is not one of deny, sameorigin")
    XCTAssertEqual(
      refusal("http_server_config:\n  headers:\n    Server: x\n")?.key, "http_server_config.headers.Server")
    XCTAssertEqual(refusal("http_server_config:\n  http2: maybe\n")?.problem, "not true or false")
  }

  func testRateLimitTakesGoDurations() throws {
    XCTAssertEqual(GoDuration.seconds("1m30s"), 90)
    XCTAssertEqual(GoDuration.seconds("500ms"), 0.5)
    XCTAssertEqual(GoDuration.seconds("1.5h"), 5400)
    XCTAssertEqual(GoDuration.seconds("0"), 0)
    XCTAssertNil(GoDuration.seconds("10"))
    XCTAssertNil(GoDuration.seconds("1d"))
    XCTAssertNil(GoDuration.seconds(""))
    XCTAssertEqual(try parse("rate_limit:\n  interval: 250ms\n  burst: 4\n").rateLimit, .init(interval: 0.25, burst: 4))
    XCTAssertNil(try parse("rate_limit:\n  interval: 0s\n").rateLimit)
    XCTAssertEqual(refusal("rate_limit:\n  interval: 1s\n")?.key, "rate_limit.burst")
    XCTAssertEqual(refusal("rate_limit:\n  interval: soon\n  burst: 1\n")?.line, 2)
  }

  func testTLSLoadsFilesRelativeToTheConfigAndChecksTheirPairing() throws {
    try makeCertificate("server")
    try makeCertificate("other")
    let config = try parse(
      "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n")
    XCTAssertNotNil(config.tls)
    XCTAssertEqual(config.tls?.clientAuth, .noClientCert)
    XCTAssertEqual(config.files, ["\(directory)/server.crt", "\(directory)/server.key"])

    let mismatched = refusal("tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n")
    XCTAssertEqual(mismatched?.description, "line 3: tls_server_config.key_file: not the key of the certificate")

    let missing = refusal("tls_server_config:\n  cert_file: absent.crt\n  key_file: server.key\n")
    XCTAssertEqual(
      missing?.description,
      "line 2: tls_server_config.cert_file: \(directory)/absent.crt: No such file or directory")

    XCTAssertEqual(
      refusal("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n")?.problem,
      "no PEM certificate in it")
    XCTAssertEqual(refusal("tls_server_config:\n  key_file: server.key\n")?.key, "tls_server_config.cert_file")
    XCTAssertEqual(
      refusal("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n")?.problem,
      "given without cert_file and key_file")
  }

  func testClientCertificatePoliciesNeedTheirCA() throws {
    try makeCertificate("server")
    try makeCertificate("ca")
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    let verified = try parse(base + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n")
    XCTAssertEqual(verified.tls?.clientAuth, .requireAndVerifyClientCert)
    XCTAssertEqual(verified.files.last, "\(directory)/ca.crt")
    XCTAssertEqual(
      try parse(base + "  client_auth_type: RequireAnyClientCert\n").tls?.clientAuth, .requireAnyClientCert)

    XCTAssertEqual(
      refusal(base + "  client_auth_type: VerifyClientCertIfGiven\n")?.key, "tls_server_config.client_ca_file")
    XCTAssertEqual(refusal(base + "  client_ca_file: ca.crt\n")?.key, "tls_server_config.client_ca_file")
    XCTAssertEqual(
      refusal(base + "  client_auth_type: RequireClientCert\n")?.description,
      "line 4: tls_server_config.client_auth_type: 'RequireClientCert' is not one of "
        + WebConfig.TLS.ClientAuth.allCases.map(\.rawValue).joined(separator: ", "))
    XCTAssertEqual(refusal(base + "  min_version: TLS13\n  max_version: TLS12\n")?.key, "tls_server_config.max_version")
    XCTAssertEqual(refusal(base + "  cipher_suites: [TLS_NULL]\n")?.key, "tls_server_config.cipher_suites")
    XCTAssertNotNil(try parse(base + "  curve_preferences: [X25519, CurveP256]\n").tls)
    // client_allowed_sans: only where a certificate is required (the toolkit's rule).
    XCTAssertEqual(
      refusal(base + "  client_allowed_sans: [a]\n")?.description,
      "line 4: tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or "
        + "RequireAndVerifyClientCert, not NoClientCert")
    XCTAssertEqual(
      try parse(
        base + "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [prometheus.example, 10.0.0.9]\n"
      )
      .tls?.allowedSANs, ["prometheus.example", "10.0.0.9"])
    XCTAssertNil(verified.tls?.allowedSANs, "none given: any certificate its CA signed")
    XCTAssertEqual(
      refusal(base + "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: prometheus\n")?.problem,
      "not a list")
  }

  /// A certificate's subject alternative names as the toolkit compares
  /// them: openssl writes each kind into one certificate.
  func testSubjectAlternativeNamesAsTheToolkitWritesThem() throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=client", "-keyout", "\(directory)/sans.key", "-out", "\(directory)/sans.crt", "-addext",
      "subjectAltName=DNS:prometheus.example,IP:10.0.0.9,IP:2001:db8::1,email:ops@example.org,URI:spiffe://example.org/prometheus",
    ]
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "openssl req")
    let certificate = try XCTUnwrap(try NIOSSLCertificate.fromPEMFile("\(directory)/sans.crt").first)
    XCTAssertEqual(
      ClientSANCheck.names(of: certificate),
      ["prometheus.example", "10.0.0.9", "2001:db8::1", "ops@example.org", "spiffe://example.org/prometheus"])
  }

  func testTheStoreReadsAChangedFileAgainAndFailsClosedWhileItIsBroken() throws {
    let path = "\(directory)/web.yml"
    let first = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
    let second = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"
    // Written as configuration management writes: a new file renamed over the old.
    func write(_ text: String) throws {
      try text.write(toFile: path + ".new", atomically: false, encoding: .utf8)
      XCTAssertEqual(rename(path + ".new", path), 0)
    }
    try write("basic_auth_users:\n  a: \(first)\n")
    let store = try WebConfigStore(path: path, log: .init(label: "test"))
    XCTAssertEqual(store.current()?.users["a"], first)
    try write("basic_auth_users:\n  a: \(second)\n")
    XCTAssertEqual(store.current()?.users["a"], second)
    try write("basic_auth_users:\n  a: oops\n")
    XCTAssertNil(store.current())
    XCTAssertNil(store.current())
    try write("basic_auth_users:\n  b: \(first)\n")
    XCTAssertEqual(store.current()?.users, ["b": first])
    XCTAssertThrowsError(try WebConfigStore(path: "\(directory)/absent.yml", log: .init(label: "test")))
  }

  func testCredentialsAndTheRateLimiter() {
    let credentials = BasicCredentials(header: "Basic " + Data("prometheus:a:b".utf8).base64EncodedString())
    XCTAssertEqual(credentials?.user, "prometheus")
    XCTAssertEqual(credentials?.password, "a:b")
    XCTAssertNil(BasicCredentials(header: "Bearer abc"))
    XCTAssertNil(BasicCredentials(header: "Basic !!!"))
    XCTAssertNil(BasicCredentials(header: "Basic " + Data("nocolon".utf8).base64EncodedString()))

    let limiter = RequestRateLimiter()
    let limit = WebConfig.RateLimit(interval: 1, burst: 2)
    XCTAssertEqual((0..<3).map { _ in limiter.admit(under: limit, now: 10) }, [true, true, false])
    XCTAssertFalse(limiter.admit(under: limit, now: 10.5))
    XCTAssertTrue(limiter.admit(under: limit, now: 11.6))
    XCTAssertTrue(limiter.admit(under: nil, now: 11.6))
  }
}
