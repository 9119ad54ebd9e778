// What every `rondo bench …` JSON line shares whatever it measures: medians, fixed-digit numbers
// and the process's peak memory.

import Foundation

/// The median of a non-empty list (the mean of the middle two for an even count).
public func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// `x` with `digits` decimals for a JSON line (non-finite values as `jsonNumber` writes them).
public func formatFixed(_ x: Double, _ digits: Int = 2) -> String {
    x.isFinite ? String(format: "%.\(digits)f", x) : jsonNumber(x)
}

/// Peak resident set size of this process (getrusage ru_maxrss), MiB.
public func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024
}

/// `x` with `digits` significant digits for a JSON line (`%g`: small fractions such as an MFU of a
/// tiny model on a loaded machine keep their digits instead of printing as 0.000).
public func formatSignificant(_ x: Double, _ digits: Int = 4) -> String {
    x.isFinite ? String(format: "%.\(digits)g", x) : jsonNumber(x)
}
