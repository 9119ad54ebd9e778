// Sampling settings, why a sample stops, and the module's error type.
//
// Field semantics follow transformers' `GenerationConfig` where they overlap (temperature, top_k,
// top_p, max_new_tokens, eos_token_id, stop_strings, num_return_sequences = n); the keys are
// snake_case so a resolved config can be written into a round checkpoint as JSON.

import Foundation

/// An error in sampling input or settings: what is wrong, where, and what to do.
public struct SamplingError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

/// Why a sample stopped.
public enum FinishReason: String, Codable, Sendable, Equatable {
    /// A stop token id (by default the model's `eos_token_id`s: config.json's and generation_config.json's) was generated; it is the last token.
    case eos
    /// A stop string appeared in the response's bytes; the response ends with the token that completed it.
    case stop
    /// `maxNewTokens` tokens were generated.
    case length
}

/// How to sample responses: one value per concern, defaults on the fields.
public struct SamplingConfig: Codable, Sendable, Equatable {
    /// Samples per prompt (each with its own random stream).
    public var n: Int = 1
    /// Softmax temperature; 0 is greedy decoding (argmax, ties go to the lowest id).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens, ranked by (−logit, id) (0 = off).
    public var topK: Int = 0
    /// Keep the smallest most-likely set whose probability reaches topP, after top-k (1 = off).
    public var topP: Float = 1
    /// Most tokens generated per sample.
    public var maxNewTokens: Int = 64
    /// Token ids that end a sample and stay as its last token; nil = the model's `stopTokenIDs` (config.json's and generation_config.json's `eos_token_id`s), [] = none.
    public var stopTokenIDs: [Int32]? = nil
    /// Strings that end a sample when they appear in its response bytes (needs a tokenizer).
    public var stopStrings: [String] = []
    /// Seed of the random streams: sample j of prompt i draws from Philox(seed, stream i << 20 | j).
    public var seed: UInt64 = 0
    /// Sequences decoded at once; a finished sequence's slot is refilled from the queue.
    public var batchSize: Int = 16

    /// Most samples per prompt (the sample index has 20 bits of the stream id).
    public static let maxSamplesPerPrompt = 1 << 20

    /// The defaults above.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case n, temperature, seed
        case topK = "top_k", topP = "top_p", maxNewTokens = "max_new_tokens"
        case stopTokenIDs = "stop_token_ids", stopStrings = "stop_strings", batchSize = "batch_size"
    }

    /// Reads the keys present (others keep their defaults) and validates the result.
    public init(from decoder: Decoder) throws {
        try self.init(from: decoder, over: SamplingConfig())
        do { try validate() } catch let e as SamplingError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description))
        }
    }

    /// Reads the keys present over `defaults`, without validating (a caller with its own defaults
    /// and key names, such as a campaign's `sampling:` section, validates with `validate(name:)`).
    public init(from decoder: Decoder, over defaults: SamplingConfig) throws {
        self = defaults
        let c = try decoder.container(keyedBy: CodingKeys.self)
        n = try c.decodeIfPresent(Int.self, forKey: .n) ?? n
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? temperature
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? topK
        topP = try c.decodeIfPresent(Float.self, forKey: .topP) ?? topP
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? maxNewTokens
        stopTokenIDs = try c.decodeIfPresent([Int32].self, forKey: .stopTokenIDs) ?? stopTokenIDs
        stopStrings = try c.decodeIfPresent([String].self, forKey: .stopStrings) ?? stopStrings
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
    }

    /// Checks ranges and cross-field rules; `name` turns a key into how the message shows it.
    public func validate(name: (String) -> String = { $0 }) throws {
        guard n >= 1, n <= Self.maxSamplesPerPrompt else {
            throw SamplingError("\(name("n")) = \(n): samples per prompt must be in 1...\(Self.maxSamplesPerPrompt)")
        }
        guard temperature.isFinite, temperature >= 0 else {
            throw SamplingError("\(name("temperature")) = \(temperature): must be a finite number ≥ 0 (0 = greedy)")
        }
        guard topK >= 0 else { throw SamplingError("\(name("top_k")) = \(topK): must be ≥ 0 (0 = off)") }
        guard topP > 0, topP <= 1 else { throw SamplingError("\(name("top_p")) = \(topP): must be in (0, 1] (1 = off)") }
        guard maxNewTokens >= 1 else { throw SamplingError("\(name("max_new_tokens")) = \(maxNewTokens): must be ≥ 1") }
        guard batchSize >= 1 else { throw SamplingError("\(name("batch_size")) = \(batchSize): must be ≥ 1") }
        if let ids = stopTokenIDs, let bad = ids.first(where: { $0 < 0 }) {
            throw SamplingError("stop token id \(bad) is negative")
        }
        if stopStrings.contains(where: \.isEmpty) {
            throw SamplingError("\(name("stop_strings")): an empty stop string would end every sample at once; remove it")
        }
    }
}
