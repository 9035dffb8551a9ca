// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "sockaff",
  products: [
    .library(name: "SocketAffinity", targets: ["SocketAffinity"]),
    .executable(name: "sockaff", targets: ["sockaff"]),
    // libsockaff.so for C (include/sockaff.h): `make capi` builds it apart,
    // with the Swift runtime linked in statically.
    .library(name: "SockaffC", type: .dynamic, targets: ["SockaffCAPI"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    // The kernel tests' runs of programs to their exit (Tests/KernelTests/Support/Command.swift).
    .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    // serve's log lines (start-up, refused capabilities, failed scrapes) on stderr, for the journal.
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    // serve --web.config.file: TLS (BoringSSL, vendored by swift-nio-ssl) and the file's YAML.
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    // The one definition of the BPF map layout, shared with bpf/sockaff.bpf.c.
    .target(name: "CSockaffABI"),
    // Thin wrappers for what Swift cannot call directly (pidfd_*, variadic syscalls).
    .target(name: "CSockaffShims"),
    .systemLibrary(
      name: "CLibbpf", pkgConfig: "libbpf",
      providers: [.apt(["libbpf-dev", "libelf-dev", "zlib1g-dev"])]),
    .systemLibrary(name: "CNuma", providers: [.apt(["libnuma-dev"])]),
    // Generic netlink (the kernel's netdev family): libnl, whose static
    // archives Debian ships (libmnl's it does not), for the static binary.
    .systemLibrary(name: "CNetlink", pkgConfig: "libnl-genl-3.0", providers: [.apt(["libnl-genl-3-dev"])]),
    // Compiles bpf/sockaff.bpf.c with clang's BPF target and embeds the object.
    .plugin(name: "EmbedBPFObject", capability: .buildTool()),
    .target(
      name: "SocketAffinity",
      dependencies: [
        "CSockaffABI", "CSockaffShims", "CLibbpf", "CNuma", "CNetlink",
        .product(name: "SystemPackage", package: "swift-system"),
      ],
      plugins: ["EmbedBPFObject"]),
    // The C API: sockaff.h (the header C programs include) and its Swift body.
    .target(name: "CSockaffAPI"),
    .target(name: "SockaffCAPI", dependencies: ["SocketAffinity", "CSockaffAPI"]),
    // Prometheus exposition of the tracer's readings (swift-prometheus).
    .target(
      name: "SockaffMetrics",
      dependencies: ["SocketAffinity", .product(name: "Prometheus", package: "swift-prometheus")]),
    // libcrypt (libxcrypt): bcrypt, for the web config's basic_auth_users.
    .systemLibrary(name: "CCrypt", providers: [.apt(["libcrypt-dev"])]),
    // serve's HTTP(S) server and its web config (the Prometheus exporter
    // toolkit's --web.config.file): TLS, basic auth, headers, rate limit.
    .target(
      name: "SockaffWeb",
      dependencies: [
        "SocketAffinity", "SockaffMetrics", "CCrypt",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "SystemPackage", package: "swift-system"),
      ]),
    // What the CLI prints (text answers, tables, the watch screen), as a
    // library so that unit tests reach it without the executable.
    .target(name: "SockaffPresentation", dependencies: ["SocketAffinity"]),
    .executableTarget(
      name: "sockaff",
      dependencies: [
        "SocketAffinity", "SockaffMetrics", "SockaffPresentation", "SockaffWeb", "CSockaffShims",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    // Times library calls for `make bench`; not installed.
    .executableTarget(
      name: "sockaff-bench",
      dependencies: [
        "SocketAffinity", "CSockaffShims", "SockaffCAPI", "CSockaffAPI", "CLibbpf",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .testTarget(
      name: "SocketAffinityTests",
      dependencies: [
        "SocketAffinity", "CSockaffABI",
        .product(name: "SystemPackage", package: "swift-system"),
      ],
      exclude: ["Fixtures"]),
    .testTarget(name: "SockaffPresentationTests", dependencies: ["SockaffPresentation"]),
    // The web config's parsing and checks, and bcrypt, without root.
    .testTarget(
      name: "SockaffWebTests", dependencies: ["SockaffWeb", .product(name: "NIOSSL", package: "swift-nio-ssl")]),
    // The exposition from a reading made by hand, without root.
    .testTarget(name: "SockaffMetricsTests", dependencies: ["SockaffMetrics", "SocketAffinity"]),
    .testTarget(
      name: "KernelTests",
      // Real kernel, real traffic: needs root. Runs the sockaff binary and
      // Peers/peer.py (processes that are not the test process).
      dependencies: [
        "SocketAffinity", "sockaff", .product(name: "Subprocess", package: "swift-subprocess"),
        .product(name: "SystemPackage", package: "swift-system"),
      ],
      exclude: ["Peers", "Fixtures"]),
  ]
)
