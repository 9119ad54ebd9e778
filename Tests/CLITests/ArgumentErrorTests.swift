// Command-line values the parser used to misread or accept silently: negative round numbers
// ("Missing value" before) and a --where comparison with NaN (matched nothing before).

import Foundation
import Testing
import TestSupport

@Suite struct ArgumentErrorTests {
    @Test func negativeRoundsAreRangeErrors() throws {
        try withTemporaryDirectory { dir in
            let cases: [([String], String)] = [
                (["replay", dir.path, "--round", "-1"], "--round must be ≥ 1 (got -1)"),
                (["replay", dir.path, "--round", "0"], "--round must be ≥ 1 (got 0)"),
                (["inspect", dir.path, "--round", "-1"], "--round must be ≥ 0 (got -1)"),
                (["resume", dir.path, "--from-round", "-2"], "--from-round must be ≥ 0 (got -2)"),
                (["start", "x.yaml", "--rounds", "-3"], "--rounds must be ≥ 1 (got -3)"),
            ]
            for (args, message) in cases {
                let r = try runRondo(args)
                #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
                #expect(!r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
            }
        }
    }

    @Test func whereWithNaNIsAnError() throws {
        try withTemporaryDirectory { dir in
            let r = try runRondo(["inspect", dir.appendingPathComponent("none.jsonl.zst").path, "--where", "score > NaN"])
            #expect(r.status != 0 && r.stderr.contains("'NaN' is not a finite number"), "\(r.stderr)")
        }
    }
}
