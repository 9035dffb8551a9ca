# sockaff: build, test, demo. `make demo` on a fresh Debian 12 host (as root)
# installs the packages, builds, attaches and answers a real query.
SWIFT ?= swift
PREFIX ?= /usr/local
PACKAGES = libbpf-dev libelf-dev zlib1g-dev libnuma-dev bpftool iproute2 python3 socat make procps tmux

.PHONY: all deps build test unit-test kernel-test demo install clean lint format

all: build

deps:
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PACKAGES)

build:
	$(SWIFT) build -c release

# Unit tests and the kernel tests (root, real BPF, real traffic).
test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --disable-swift-testing

unit-test:
	$(SWIFT) test --disable-swift-testing --filter SocketAffinityTests

kernel-test:
	$(SWIFT) test --disable-swift-testing --filter KernelTests

demo: deps build
	.build/release/sockaff demo

install: build
	install -D -m 0755 .build/release/sockaff $(DESTDIR)$(PREFIX)/bin/sockaff

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Plugins Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests Plugins Package.swift

clean:
	rm -rf .build
