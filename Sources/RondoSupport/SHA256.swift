// SHA-256 in lowercase hex: what pins a campaign's inputs and names each checkpoint's weights.

import Crypto
import Foundation

/// The SHA-256 of a file's bytes (memory-mapped), lowercase hex.
public func sha256(of url: URL) throws -> String {
    let data = try Data(contentsOf: url, options: .alwaysMapped)
    return hex(SHA256.hash(data: data))
}

/// The SHA-256 of a text's UTF-8 bytes, lowercase hex.
public func sha256(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

/// A digest as lowercase hex.
public func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    digest.map { String(format: "%02x", $0) }.joined()
}
