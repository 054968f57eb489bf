// MARK: - Header fields

/// Header fields in arrival order; names compare case-insensitively.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, Equatable {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { add(name: name, value: value) }
    }

    /// Appends a field, keeping any earlier field of the same name.
    public mutating func add(name: String, value: String) { fields.append((name, value)) }

    /// Replaces every field of that name.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    /// Removes every field of that name.
    public mutating func remove(name: String) {
        fields.removeAll { equalsIgnoringCase($0.name, name) }
    }

    /// The first value of that name.
    public subscript(name: String) -> String? {
        fields.first { equalsIgnoringCase($0.name, name) }?.value
    }

    /// Every value of that name, in arrival order.
    public func values(for name: String) -> [String] {
        fields.filter { equalsIgnoringCase($0.name, name) }.map(\.value)
    }

    /// Whether a field of that name is present.
    public func contains(name: String) -> Bool {
        fields.contains { equalsIgnoringCase($0.name, name) }
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    /// Same fields in the same order, names compared case-insensitively, values exactly.
    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { equalsIgnoringCase($0.name, $1.name) && $0.value == $1.value }
    }
}

// MARK: - ASCII case-insensitive comparison

/// Header names are ASCII tokens: comparing UTF-8 bytes with the ASCII case bit folded avoids the
/// allocation `lowercased()` would make on every lookup.
@inline(__always)
func equalsIgnoringCase(_ lhs: String, _ rhs: String) -> Bool {
    var lhs = lhs, rhs = rhs
    return lhs.withUTF8 { a in
        rhs.withUTF8 { b in
            guard a.count == b.count else { return false }
            for i in 0..<a.count where a[i] != b[i] {
                guard asciiLowercase(a[i]) == asciiLowercase(b[i]) else { return false }
            }
            return true
        }
    }
}

@inline(__always)
func asciiLowercase(_ byte: UInt8) -> UInt8 {
    (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
}
