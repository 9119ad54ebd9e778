// swift-tools-version:6.1
// Rondo: online DPO and iterative RLHF campaigns on a CPU.
// Targets point one way: rondo (CLI) → (Campaign, Serving) → (Labeling, Rollouts, Training, Sampling) →
// (Model, Tokenizers, Templates); Model → Kernels → (CKernels, system libraries OpenBLAS, libzstd). RondoSupport
// (JSON values, atomic files, SHA-256, bench measurements) is below Model, Rollouts and Tokenizers; Model
// re-exports it. Templates depends on nothing. Labeling's HTTP judge uses AsyncHTTPClient; Serving (`rondo
// serve`) uses Hummingbird; Collective (ranks, MPI behind the `MPI` trait) is below Campaign.
import PackageDescription

// -fno-math-errno lets sqrt vectorise (Float.squareRoot() otherwise calls sqrtf for errno).
// Release: -Ounchecked drops bounds, overflow and `precondition` checks; invariants use Kernels'
// `require`, which stays on. Debug (what `swift test` builds): -O keeps every check but optimises,
// so the numeric tests run at a usable speed with bounds and overflow checks on.
let optimize: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-Xcc", "-fno-math-errno"], .when(configuration: .release)),
    .unsafeFlags(["-O", "-Xcc", "-fno-math-errno"], .when(configuration: .debug)),
]

let package = Package(
    name: "Rondo",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rondo", targets: ["RondoCLI"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Sampling", targets: ["Sampling"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Templates", targets: ["Templates"]),
        .library(name: "RondoSupport", targets: ["RondoSupport"]),
    ],
    // `swift build --traits MPI` adds data-parallel campaigns over Open MPI (Debian's openmpi-bin and
    // libopenmpi-dev, pkg-config `ompi`); the default build needs no MPI.
    traits: [.trait(name: "MPI", description: "Data-parallel campaigns over Open MPI (mpirun -np N rondo start …)")],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 of rollout buffers and checkpoints (manifest integrity).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // Campaign configs are YAML.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // HTTP judges (labeller type http): a maintained client with timeouts, pooling and TLS.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // NIO's core types (ByteBuffer, HTTPHeaders, deadlines) that the HTTP client and server speak.
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        // `rondo serve`: an OpenAI-compatible server with graceful shutdown.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]),
        // Decode micro-kernels (C): -O3 in every configuration, so debug test runs are not slowed
        // by unoptimised intrinsics; no fast-math (each output is one fixed FMA chain).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "Kernels", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimize),
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),
        // C calls into MPI (its handles are macros Swift cannot import); compiled only with the MPI trait's headers.
        .target(name: "CMPIShim", dependencies: [.target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        // Ranks and their collectives: gradient sums in an order Rondo defines, reproducible in one process.
        .target(
            name: "Collective",
            dependencies: ["Kernels", "RondoSupport", .target(name: "CMPIShim", condition: .when(traits: ["MPI"]))],
            swiftSettings: optimize),
        // What every layer shares and nothing numeric: JSON values, crash-safe files, SHA-256, bench measurements.
        .target(
            name: "RondoSupport", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: optimize),
        .target(name: "Model", dependencies: ["Kernels", "RondoSupport"], swiftSettings: optimize),
        .target(name: "Tokenizers", dependencies: ["RondoSupport"], swiftSettings: optimize),
        // Chat templates: a Jinja interpreter for the subset HF chat templates use. Depends on nothing of ours.
        .target(name: "Templates"),
        .target(name: "Training", dependencies: ["Model", "Kernels", "Tokenizers", "Templates"], swiftSettings: optimize),
        .target(
            name: "Rollouts",
            dependencies: ["CZstd", "RondoSupport", "Kernels", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: optimize),
        .target(
            name: "Campaign",
            dependencies: [
                "Labeling", "Rollouts", "Training", "Sampling", "Tokenizers", "Templates", "Model", "Kernels", "Collective",
                .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: optimize),
        .target(
            name: "Labeling",
            dependencies: [
                "Model", "RondoSupport", "Kernels", "Templates",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: optimize),
        // `rondo serve`: the OpenAI-compatible HTTP server over the sampler.
        .target(
            name: "Serving",
            dependencies: [
                "Sampling", "Model", "Tokenizers", "Templates", "Kernels",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: optimize),
        .target(name: "Sampling", dependencies: ["Model", "Kernels", "Tokenizers", "Templates"], swiftSettings: optimize),
        .executableTarget(
            name: "RondoCLI",
            dependencies: [
                "Campaign", "Training", "Sampling", "Serving", "Rollouts", "Tokenizers", "Templates", "Model", "Collective",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(
            name: "TestSupport",
            dependencies: [
                "Model", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"),
        .testTarget(name: "CollectiveTests", dependencies: ["Collective", "RondoCLI", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Training", "TestSupport"]),
        .testTarget(name: "TemplatesTests", dependencies: ["Templates"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "TestSupport"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "Model", "Tokenizers", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Kernels", "TestSupport"]),
        .testTarget(
            name: "CampaignTests",
            dependencies: ["Campaign", "Labeling", "Rollouts", "Model", "Sampling", "Templates", "Tokenizers", "TestSupport"]),
        .testTarget(name: "LabelingTests", dependencies: ["Labeling", "Model", "TestSupport"]),
        .testTarget(name: "RolloutsTests", dependencies: ["Rollouts", "Model", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["RondoCLI", "Model", "Rollouts", "Templates", "TestSupport"]),
    ],
    // Numeric kernels share raw buffers across Dispatch workers by design (disjoint row ranges);
    // Swift 6's Sendable checking cannot express that, so the package builds in Swift 5 mode.
    swiftLanguageModes: [.v5]
)
