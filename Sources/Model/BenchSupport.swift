// What every `rondo bench …` measurement shares: the model it runs on, medians, number formatting
// for its JSON line, and the process's peak memory.

import Foundation

/// A model from a directory, or a random one (seed 1234) from a config.json.
public func loadOrInit(_ url: URL, isConfig: Bool) throws -> (LlamaConfig, ParameterBuffer) {
    if isConfig {
        let config = try LlamaConfig.load(url)
        return (config, ModelDirectory.randomInit(config: config, seed: 1234))
    }
    let m = try ModelDirectory.load(url)
    return (m.config, m.parameters)
}

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
