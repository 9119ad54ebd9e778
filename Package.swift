// swift-tools-version:6.0
// Rondo: online DPO and iterative RLHF campaigns on a CPU.
// Targets point one way: rondo (CLI) → (Training, Sampling) → (Model, Tokenizers); Model → Kernels
// → system libraries (OpenBLAS, libzstd).
import PackageDescription

let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

let package = Package(
    name: "Rondo",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rondo", targets: ["RondoCLI"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Sampling", targets: ["Sampling"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        .target(name: "Kernels", dependencies: ["CBLAS"], swiftSettings: optimize),
        .target(name: "Model", dependencies: ["Kernels"], swiftSettings: optimize),
        .target(name: "Tokenizers", swiftSettings: optimize),
        .target(name: "Training", dependencies: ["Model", "Kernels", "Tokenizers"], swiftSettings: optimize),
        .target(name: "Sampling", dependencies: ["Model", "Kernels", "Tokenizers"], swiftSettings: optimize),
        .executableTarget(
            name: "RondoCLI",
            dependencies: [
                "Training", "Sampling", "Tokenizers", "Model",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "TestSupport", dependencies: ["Model"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Training", "TestSupport"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "TestSupport"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "Model", "Tokenizers", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Kernels", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["RondoCLI", "Model", "TestSupport"]),
    ],
    // Numeric kernels share raw buffers across Dispatch workers by design (disjoint row ranges);
    // Swift 6's Sendable checking cannot express that, so the package builds in Swift 5 mode.
    swiftLanguageModes: [.v5]
)
