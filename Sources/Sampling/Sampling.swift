// Batched KV-cache sampling with counter-based seeds (sampling issue).
