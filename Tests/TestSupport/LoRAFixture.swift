// The LoRA (PEFT) fixtures: `Tests/Fixtures/lora` (see its README.md).

import Foundation
import Model

public enum LoRAFixture {
    /// `Tests/Fixtures/lora`.
    public static let dir = Fixtures.oracle.deletingLastPathComponent().appendingPathComponent("lora", isDirectory: true)
    /// The two adapters of the set.
    public static let names = ["lora_r4", "rslora_r8"]
    /// `cases.json`.
    public static let cases: JSONValue = {
        try! JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: dir.appendingPathComponent("cases.json")))
    }()
    /// `tensors.safetensors`.
    public static let tensors = try! SafetensorsFile(url: dir.appendingPathComponent("tensors.safetensors"))

    /// `adapters.<name>`.
    public static func adapter(_ name: String) -> JSONValue { cases["adapters"]![name]! }
    /// The PEFT-written adapter directory of `name`.
    public static func adapterDir(_ name: String) -> URL { dir.appendingPathComponent("adapter-\(name)", isDirectory: true) }
    /// The merged checkpoint of `name`.
    public static func mergedDir(_ name: String) -> URL { dir.appendingPathComponent("merged-\(name)", isDirectory: true) }

    /// Floats of a case value: inline numbers or a reference into tensors.safetensors.
    public static func floats(_ v: JSONValue?) -> [Float] { Oracle.floats(v, in: tensors) }
}
