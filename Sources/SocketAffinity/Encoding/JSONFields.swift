import FoundationEssentials

/// A type whose JSON object is one list of fields, written once and read by
/// two writers: `JSONLines` (bytes, for 100k-record listings) and Codable
/// (JSONEncoder, for pretty single documents). One list, so the two cannot
/// disagree on names, order or nulls.
///
/// Why not Codable alone: through any Encoder, every field is a boxed
/// container call and every optional a generic round trip; that was ~11 µs
/// per socket record, most of a 100k-socket `list --json`.
public protocol JSONFields: Encodable {
  func visitFields<Visitor: JSONFieldVisitor>(_ visitor: inout Visitor) throws
}

/// Receives fields in order. A nil value is written as null: the documented
/// fields (docs/USAGE.md) are always present.
public protocol JSONFieldVisitor {
  mutating func field(_ key: StaticString, _ value: String?) throws
  mutating func field(_ key: StaticString, _ value: Int64?) throws
  mutating func field(_ key: StaticString, _ value: UInt64?) throws
  mutating func field(_ key: StaticString, _ value: Double?) throws
  mutating func field(_ key: StaticString, _ value: Bool?) throws
  mutating func field(_ key: StaticString, _ values: [Int]) throws
  mutating func field(_ key: StaticString, _ values: [String]) throws
  /// RFC 3339 UTC with milliseconds (`RFC3339.timestamp`).
  mutating func field(_ key: StaticString, _ value: Date?) throws
  mutating func field<Object: JSONFields>(_ key: StaticString, _ value: Object?) throws
  mutating func field<Object: JSONFields>(_ key: StaticString, _ values: [Object]) throws
}

extension JSONFieldVisitor {
  public mutating func field(_ key: StaticString, _ value: Int?) throws { try field(key, value.map(Int64.init)) }
  public mutating func field(_ key: StaticString, _ value: Int32?) throws { try field(key, value.map(Int64.init)) }
  public mutating func field(_ key: StaticString, _ value: UInt32?) throws { try field(key, value.map(UInt64.init)) }
}

extension JSONFields {
  /// Codable through the same field list (JSONEncoder, `query --json`).
  public func encode(to encoder: any Encoder) throws {
    var visitor = CodableFieldVisitor(container: encoder.container(keyedBy: FieldKey.self))
    try visitFields(&visitor)
  }
}

private struct FieldKey: CodingKey {
  let stringValue: String
  var intValue: Int? { nil }
  init(_ key: StaticString) { stringValue = key.description }
  init?(stringValue: String) { self.stringValue = stringValue }
  init?(intValue: Int) { nil }
}

private struct CodableFieldVisitor: JSONFieldVisitor {
  var container: KeyedEncodingContainer<FieldKey>

  mutating func field(_ key: StaticString, _ value: String?) throws {
    try container.encode(value, forKey: FieldKey(key))
  }
  mutating func field(_ key: StaticString, _ value: Int64?) throws {
    try container.encode(value, forKey: FieldKey(key))
  }
  mutating func field(_ key: StaticString, _ value: UInt64?) throws {
    try container.encode(value, forKey: FieldKey(key))
  }
  mutating func field(_ key: StaticString, _ value: Double?) throws {
    try container.encode(value, forKey: FieldKey(key))
  }
  mutating func field(_ key: StaticString, _ value: Bool?) throws { try container.encode(value, forKey: FieldKey(key)) }
  mutating func field(_ key: StaticString, _ values: [Int]) throws {
    try container.encode(values, forKey: FieldKey(key))
  }
  mutating func field(_ key: StaticString, _ values: [String]) throws {
    try container.encode(values, forKey: FieldKey(key))
  }
  mutating func field(_ key: StaticString, _ value: Date?) throws {
    try container.encode(value.map(RFC3339.timestamp), forKey: FieldKey(key))
  }
  mutating func field<Object: JSONFields>(_ key: StaticString, _ value: Object?) throws {
    try container.encode(value, forKey: FieldKey(key))
  }
  mutating func field<Object: JSONFields>(_ key: StaticString, _ values: [Object]) throws {
    try container.encode(values, forKey: FieldKey(key))
  }
}
