// swift-tools-version: 6.2
// A minimal Hummingbird server, the yardstick for our own HTTP server's overhead.
// Its own package so that the main build never resolves or compiles Hummingbird.
import PackageDescription

let package = Package(
    name: "hummingbird-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "HummingbirdBench",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")]
        ),
    ]
)
