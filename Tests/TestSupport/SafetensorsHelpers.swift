// Test helpers for building checkpoints on disk.

import Foundation
import Model

/// Writes `tensors` (name → tensor) as a safetensors file with `SafetensorsFile.write`.
public func writeSafetensors(_ tensors: [String: Tensor], dtype: SafetensorsDType = .f32, to url: URL) throws {
    let names = tensors.keys.sorted()
    let storage: [UnsafeMutableBufferPointer<Float>] = names.map { name in
        let values = tensors[name]!.values
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, values.count))
        b.initialize(repeating: 0)
        _ = b.update(fromContentsOf: values)
        return b
    }
    defer { for b in storage { b.deallocate() } }
    let list = names.indices.map { i in
        (name: names[i], shape: tensors[names[i]]!.shape,
         values: UnsafeBufferPointer(start: storage[i].baseAddress, count: tensors[names[i]]!.values.count))
    }
    try SafetensorsFile.write(list, dtype: dtype, to: url)
}

/// Every tensor of a loaded parameter buffer, by HF name.
public func tensors(of parameters: ParameterBuffer) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for e in parameters.layout.entries {
        out[e.name] = Tensor(shape: e.shape, values: Array(parameters.view(e)))
    }
    return out
}

/// Reads a config.json as a JSON object.
public func readConfigObject(_ url: URL) throws -> [String: JSONValue] {
    try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: url))
}

/// Writes a JSON object as config.json-style pretty JSON.
public func writeJSONObject(_ object: [String: JSONValue], to url: URL) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .prettyPrinted]
    try e.encode(JSONValue.object(object)).write(to: url)
}
