/// A Codable encoder that writes compact JSON straight into a byte buffer,
/// keys in the order `encode(to:)` gives them. Same text, as JSON, as
/// FoundationEssentials' JSONEncoder without sorted keys and without escaped
/// slashes (a unit test compares the two), at a fraction of the cost: that
/// encoder builds a tree of boxed values and dictionaries first, which made
/// it ~30 µs per socket record, most of a 100k-socket `list --json`.
public enum CompactJSON {
  public static func encode(_ value: some Encodable) throws -> String {
    let output = JSONOutput()
    try output.write(value)
    return String(decoding: output.bytes, as: UTF8.self)
  }
}

/// The buffer, shared by every container of one document.
/// Coding paths are not tracked (always empty): they would cost an array
/// per value and serve only error messages.
final class JSONOutput {
  var bytes: [UInt8] = []
  /// One encoder per nesting depth, reused: an encoder per value was most
  /// of the cost (allocation and reference counting).
  private var encoders: [StreamingJSONEncoder] = []
  private var depth = 0

  init() { bytes.reserveCapacity(1024) }

  /// Writes one value: whatever container its encode(to:) opens is closed
  /// when it returns (Codable has no "end of container" call of its own).
  func write(_ value: some Encodable) throws {
    if encoders.count == depth { encoders.append(StreamingJSONEncoder(output: self)) }
    let encoder = encoders[depth]
    encoder.reset()
    depth += 1
    defer { depth -= 1 }
    try value.encode(to: encoder)
    encoder.close()
  }

  func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

  func appendString(_ text: String) {
    bytes.append(UInt8(ascii: "\""))
    let utf8 = text.utf8
    // Most strings (every key, most values) need no escape: copy them whole.
    guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
      bytes.append(contentsOf: utf8)
      bytes.append(UInt8(ascii: "\""))
      return
    }
    for byte in utf8 {
      switch byte {
      case UInt8(ascii: "\""): append("\\\"")
      case UInt8(ascii: "\\"): append("\\\\")
      case 0x0A: append("\\n")
      case 0x0D: append("\\r")
      case 0x09: append("\\t")
      case 0x08: append("\\b")
      case 0x0C: append("\\f")
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        append("\\u00")
        bytes.append(hex[Int(byte >> 4)])
        bytes.append(hex[Int(byte & 0xF)])
      default: bytes.append(byte)
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }

  func appendDouble(_ value: Double) throws {
    guard value.isFinite else {
      throw EncodingError.invalidValue(
        value, EncodingError.Context(codingPath: [], debugDescription: "\(value) is not valid in JSON"))
    }
    // Integral values as integers, like JSONEncoder; others in Swift's
    // shortest round-tripping form, which is valid JSON.
    if value == value.rounded(), abs(value) < 1e15 {
      append(String(Int64(value)))
    } else {
      append("\(value)")
    }
  }
}

/// Which container an encoder opened, so that it can be closed.
private enum OpenContainer {
  case none, keyed, unkeyed, single
}

final class StreamingJSONEncoder: Encoder {
  unowned let output: JSONOutput
  var codingPath: [any CodingKey] { [] }
  var userInfo: [CodingUserInfoKey: Any] { [:] }
  private var open = OpenContainer.none
  /// Elements written into the open keyed or unkeyed container.
  var count = 0

  init(output: JSONOutput) { self.output = output }

  func reset() {
    open = .none
    count = 0
  }

  func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
    if open == .none {
      open = .keyed
      output.append("{")
    }
    return KeyedEncodingContainer(KeyedJSONContainer<Key>(encoder: self))
  }

  func unkeyedContainer() -> any UnkeyedEncodingContainer {
    if open == .none {
      open = .unkeyed
      output.append("[")
    }
    return UnkeyedJSONContainer(encoder: self)
  }

  func singleValueContainer() -> any SingleValueEncodingContainer {
    if open == .none { open = .single }
    return SingleJSONContainer(encoder: self)
  }

  func close() {
    switch open {
    case .keyed: output.append("}")
    case .unkeyed: output.append("]")
    case .single: break
    case .none: output.append("{}")  // encoded nothing: JSONEncoder writes an empty object
    }
  }

  /// The separator before the next element of the open container.
  func nextElement() {
    if count > 0 { output.append(",") }
    count += 1
  }
}

private struct KeyedJSONContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
  let encoder: StreamingJSONEncoder
  var codingPath: [any CodingKey] { encoder.codingPath }

  private func key(_ key: Key) {
    encoder.nextElement()
    encoder.output.appendString(key.stringValue)
    encoder.output.append(":")
  }

  mutating func encodeNil(forKey key: Key) throws {
    self.key(key)
    encoder.output.append("null")
  }

  mutating func encode(_ value: Bool, forKey key: Key) throws {
    self.key(key)
    encoder.output.append(value ? "true" : "false")
  }

  mutating func encode(_ value: String, forKey key: Key) throws {
    self.key(key)
    encoder.output.appendString(value)
  }

  mutating func encode(_ value: Double, forKey key: Key) throws {
    self.key(key)
    try encoder.output.appendDouble(value)
  }

  mutating func encode(_ value: Float, forKey key: Key) throws {
    self.key(key)
    try encoder.output.appendDouble(Double(value))
  }

  mutating func encode(_ value: Int, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: Int8, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: Int16, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: Int32, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: Int64, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: UInt, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: UInt8, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: UInt16, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: UInt32, forKey key: Key) throws { try integer(value, key) }
  mutating func encode(_ value: UInt64, forKey key: Key) throws { try integer(value, key) }

  private func integer(_ value: some BinaryInteger, _ key: Key) throws {
    self.key(key)
    encoder.output.append(String(value))
  }

  mutating func encode(_ value: some Encodable, forKey key: Key) throws {
    self.key(key)
    try encoder.output.write(value)
  }

  mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
    -> KeyedEncodingContainer<NestedKey>
  {
    fatalError("CompactJSON: nested containers are not supported; encode a value instead")
  }

  mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
    fatalError("CompactJSON: nested containers are not supported; encode a value instead")
  }

  mutating func superEncoder() -> any Encoder {
    fatalError("CompactJSON: superEncoder is not supported")
  }

  mutating func superEncoder(forKey key: Key) -> any Encoder {
    fatalError("CompactJSON: superEncoder is not supported")
  }
}

private struct UnkeyedJSONContainer: UnkeyedEncodingContainer {
  let encoder: StreamingJSONEncoder
  var codingPath: [any CodingKey] { encoder.codingPath }
  var count: Int { encoder.count }

  mutating func encodeNil() throws {
    encoder.nextElement()
    encoder.output.append("null")
  }

  mutating func encode(_ value: Bool) throws {
    encoder.nextElement()
    encoder.output.append(value ? "true" : "false")
  }

  mutating func encode(_ value: String) throws {
    encoder.nextElement()
    encoder.output.appendString(value)
  }

  mutating func encode(_ value: Double) throws {
    encoder.nextElement()
    try encoder.output.appendDouble(value)
  }

  mutating func encode(_ value: Int) throws {
    encoder.nextElement()
    encoder.output.append(String(value))
  }

  mutating func encode(_ value: some Encodable) throws {
    encoder.nextElement()
    try encoder.output.write(value)
  }

  mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
    -> KeyedEncodingContainer<NestedKey>
  {
    fatalError("CompactJSON: nested containers are not supported; encode a value instead")
  }

  mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
    fatalError("CompactJSON: nested containers are not supported; encode a value instead")
  }

  mutating func superEncoder() -> any Encoder {
    fatalError("CompactJSON: superEncoder is not supported")
  }
}

private struct SingleJSONContainer: SingleValueEncodingContainer {
  let encoder: StreamingJSONEncoder
  var codingPath: [any CodingKey] { encoder.codingPath }

  mutating func encodeNil() throws { encoder.output.append("null") }
  mutating func encode(_ value: Bool) throws { encoder.output.append(value ? "true" : "false") }
  mutating func encode(_ value: String) throws { encoder.output.appendString(value) }
  mutating func encode(_ value: Double) throws { try encoder.output.appendDouble(value) }
  mutating func encode(_ value: Float) throws {
    try encoder.output.appendDouble(Double(value))
  }
  mutating func encode(_ value: Int) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: Int8) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: Int16) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: Int32) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: Int64) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: UInt) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: UInt8) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: UInt16) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: UInt32) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: UInt64) throws { encoder.output.append(String(value)) }
  mutating func encode(_ value: some Encodable) throws { try encoder.output.write(value) }
}
