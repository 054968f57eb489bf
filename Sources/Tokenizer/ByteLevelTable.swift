// MARK: - GPT-2's byte <-> character table

/// GPT-2 spells every byte as a printable character so that vocabulary files are text: printable
/// Latin-1 bytes (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) stand for themselves, the other 68 bytes map to U+0100 onward
/// in byte order (space, 0x20, becomes `Ġ`, U+0120).
enum ByteLevelTable {
    /// Byte -> scalar value. A dense 256-entry array: the index is the byte, no dictionary lookup.
    static let characterOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// Scalar value -> byte, for scalar values below 324 (the largest the table uses is U+0143); -1 where
    /// the scalar is not a byte's spelling.
    static let byteOfCharacter: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in characterOfByte.enumerated() {
            table[Int(scalar)] = Int16(byte)
        }
        return table
    }()

    private static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// The bytes a token string stands for, as HF's byte-level decoder reads it: through the table when
    /// every scalar is a byte's spelling, otherwise the string's own UTF-8 (an added token such as
    /// "naïve✓"; but "héllo" is all table characters and so stands for the bytes 68 E9 6C 6C 6F).
    static func bytes(ofVocabularyString string: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count)
        for scalar in string.unicodeScalars {
            let value = Int(scalar.value)
            guard value < byteOfCharacter.count, byteOfCharacter[value] >= 0 else { return Array(string.utf8) }
            bytes.append(UInt8(byteOfCharacter[value]))
        }
        return bytes
    }

    /// The vocabulary spelling of some bytes (inverse of `bytes(ofVocabularyString:)` for byte tokens).
    static func vocabularyString(of bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            scalars.append(Unicode.Scalar(characterOfByte[Int(byte)])!)
        }
        return String(scalars)
    }
}
