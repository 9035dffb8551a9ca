import FoundationEssentials

/// Compact JSON for many records: one object per line, written straight into
/// bytes. The same document as JSONEncoder's (without sorted keys or escaped
/// slashes), which a unit test checks value for value.
///
/// Public entry points are concrete types on purpose, each declared beside
/// its type (Model): the generic writer is specialized inside this module
/// only, and unspecialized it spent a third of its time in generic metadata
/// and witness calls.
public enum JSONLines {
  /// One value as a compact JSON object.
  static func object<Value: JSONFields>(_ value: Value) throws -> String {
    var writer = JSONObjectWriter()
    try writer.object(value)
    return String(decoding: writer.bytes, as: UTF8.self)
  }

  /// `[`, one object per line, `]`, handed to `write` in parts (about 512
  /// records each, encoded on every CPU) so the whole text is never in
  /// memory twice.
  static func parallelDocument<Value: JSONFields & Sendable>(_ values: [Value], write: ([UInt8]) throws -> Void)
    throws
  {
    guard !values.isEmpty else { return try write(Array("[]\n".utf8)) }
    let parts = concurrentSlices(values.count, size: 512) { range in Result { try lines(values[range]) } }
    for (index, part) in parts.enumerated() {
      try write(Array((index == 0 ? "[\n" : ",\n").utf8) + part.get())
    }
    try write(Array("\n]\n".utf8))
  }

  /// The values as lines of an array's body: objects joined by ",\n".
  static func lines<Value: JSONFields>(_ values: ArraySlice<Value>) throws -> [UInt8] {
    var writer = JSONObjectWriter()
    for index in values.indices {
      if index != values.startIndex { writer.bytes.append(contentsOf: ",\n".utf8) }
      try writer.object(values[index])
    }
    return writer.bytes
  }
}

struct JSONObjectWriter: JSONFieldVisitor {
  var bytes: [UInt8] = []
  /// No field written yet in the innermost open object.
  private var atFirstField = true

  init() { bytes.reserveCapacity(1024) }

  mutating func object(_ value: some JSONFields) throws {
    bytes.append(UInt8(ascii: "{"))
    atFirstField = true
    try value.visitFields(&self)
    atFirstField = false
    bytes.append(UInt8(ascii: "}"))
  }

  /// Keys are literals in sockaff's own source: nothing to escape.
  private mutating func key(_ key: StaticString) {
    if !atFirstField { bytes.append(UInt8(ascii: ",")) }
    atFirstField = false
    bytes.append(UInt8(ascii: "\""))
    key.withUTF8Buffer { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: "\":".utf8)
  }

  /// The key, then null or what `write` makes of the value.
  private mutating func field<Value>(
    _ key: StaticString, _ value: Value?, _ write: (inout Self, Value) throws -> Void
  ) rethrows {
    self.key(key)
    guard let value else { return null() }
    try write(&self, value)
  }

  mutating func field(_ key: StaticString, _ value: String?) throws { field(key, value) { $0.string($1) } }
  mutating func field(_ key: StaticString, _ value: UInt64?) throws { field(key, value) { $0.digits($1) } }
  mutating func field(_ key: StaticString, _ value: Double?) throws { try field(key, value) { try $0.double($1) } }

  mutating func field(_ key: StaticString, _ value: Int64?) throws {
    field(key, value) { writer, value in
      if value < 0 { writer.bytes.append(UInt8(ascii: "-")) }
      writer.digits(value.magnitude)
    }
  }

  mutating func field(_ key: StaticString, _ value: Bool?) throws {
    field(key, value) { $0.bytes.append(contentsOf: ($1 ? "true" : "false").utf8) }
  }

  mutating func field(_ key: StaticString, _ values: [Int]) throws {
    self.key(key)
    bytes.append(UInt8(ascii: "["))
    for (index, value) in values.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      if value < 0 { bytes.append(UInt8(ascii: "-")) }
      digits(UInt64(value.magnitude))
    }
    bytes.append(UInt8(ascii: "]"))
  }

  mutating func field(_ key: StaticString, _ values: [String]) throws {
    self.key(key)
    bytes.append(UInt8(ascii: "["))
    for (index, value) in values.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      string(value)
    }
    bytes.append(UInt8(ascii: "]"))
  }

  mutating func field(_ key: StaticString, _ value: Date?) throws {
    field(key, value) { writer, date in
      writer.bytes.append(UInt8(ascii: "\""))
      RFC3339.append(date, to: &writer.bytes)
      writer.bytes.append(UInt8(ascii: "\""))
    }
  }

  mutating func field<Object: JSONFields>(_ key: StaticString, _ value: Object?) throws {
    try field(key, value) { try $0.object($1) }
  }

  mutating func field<Object: JSONFields>(_ key: StaticString, _ values: [Object]) throws {
    self.key(key)
    bytes.append(UInt8(ascii: "["))
    for (index, value) in values.enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      try object(value)
    }
    bytes.append(UInt8(ascii: "]"))
  }

  private mutating func null() { bytes.append(contentsOf: "null".utf8) }

  /// Decimal digits written in place (String(value) allocated per number).
  private mutating func digits(_ value: UInt64) {
    guard value != 0 else { return bytes.append(UInt8(ascii: "0")) }
    let start = bytes.count
    var rest = value
    while rest != 0 {
      bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
      rest /= 10
    }
    bytes[start...].reverse()
  }

  private mutating func double(_ value: Double) throws {
    guard value.isFinite else {
      throw EncodingError.invalidValue(
        value, EncodingError.Context(codingPath: [], debugDescription: "\(value) is not valid in JSON"))
    }
    // Integral values as integers, like JSONEncoder; others in Swift's
    // shortest round-tripping form, which is valid JSON.
    if value == value.rounded(), abs(value) < 1e15 {
      if value < 0 { bytes.append(UInt8(ascii: "-")) }
      digits(UInt64(abs(value)))
    } else {
      bytes.append(contentsOf: "\(value)".utf8)
    }
  }

  private mutating func string(_ text: String) {
    bytes.append(UInt8(ascii: "\""))
    // Most strings (addresses, names) need no escape: copied whole.
    let copied = text.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
      guard !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
        return false
      }
      bytes.append(contentsOf: utf8)
      return true
    }
    if copied == true { return bytes.append(UInt8(ascii: "\"")) }
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "\""): bytes.append(contentsOf: "\\\"".utf8)
      case UInt8(ascii: "\\"): bytes.append(contentsOf: "\\\\".utf8)
      case 0x0A: bytes.append(contentsOf: "\\n".utf8)
      case 0x0D: bytes.append(contentsOf: "\\r".utf8)
      case 0x09: bytes.append(contentsOf: "\\t".utf8)
      case 0x08: bytes.append(contentsOf: "\\b".utf8)
      case 0x0C: bytes.append(contentsOf: "\\f".utf8)
      case 0..<0x20:
        let hex = "0123456789abcdef".utf8
        bytes.append(contentsOf: "\\u00".utf8)
        bytes.append(hex[hex.index(hex.startIndex, offsetBy: Int(byte >> 4))])
        bytes.append(hex[hex.index(hex.startIndex, offsetBy: Int(byte & 0xF))])
      default: bytes.append(byte)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }
}
