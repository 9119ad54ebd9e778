// The id that pads a batch's shorter rows, one rule for every batch Rondo builds (training,
// reference and value forwards, evaluation, reward models).

extension LlamaConfig {
    /// pad_token_id, else the first EOS, else 0. Padded positions are masked out of every loss and
    /// score, so the choice changes no result; it only has to be a valid token id.
    public var batchPadID: Int32 { Int32(padTokenID ?? eosTokenIDs.first ?? 0) }
}
