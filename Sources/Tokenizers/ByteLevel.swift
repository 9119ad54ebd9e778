// The GPT-2 bytes-to-unicode alphabet that HF tokenizers' ByteLevel pre-tokenizer and decoder use
// (`pre_tokenizers/byte_level.rs`, `bytes_char`): the printable bytes `!`…`~`, `¡`…`¬`, `®`…`ÿ`
// stand for themselves; the other 68 bytes map, in byte order, to U+0100, U+0101, … (space → `Ġ`
// U+0120, newline → `Ċ` U+010A). Token strings in `vocab` and `merges` are written in this
// alphabet; encoding works on raw UTF-8 bytes and only converts at load and decode time.

enum ByteLevel {
    /// `scalarOfByte[b]`: the alphabet character that stands for byte `b`.
    static let scalarOfByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 0x100
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// `byteOfScalar[v]` for v < 0x144: the byte that alphabet character v stands for, or -1.
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, v) in scalarOfByte.enumerated() { table[Int(v)] = Int16(b) }
        return table
    }()

    /// The raw bytes a byte-level token string stands for, or nil when a character of `token` is
    /// outside the alphabet.
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard s.value < 0x144 else { return nil }
            let b = byteOfScalar[Int(s.value)]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// What HF's ByteLevel decoder makes of one token: the bytes it stands for when every character
    /// is in the alphabet, otherwise the token's own UTF-8 (e.g. an added token containing a space).
    static func decodedBytes(of token: String) -> [UInt8] {
        bytes(of: token) ?? Array(token.utf8)
    }

    /// The byte-level string of raw bytes.
    static func string<S: Sequence>(of bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarOfByte[Int(b)])!) }
        return String(s)
    }
}
