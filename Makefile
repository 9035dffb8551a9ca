# sockaff: build, test, demo. `make demo` on a fresh Debian 12 host (as root)
# installs the packages, builds, attaches and answers a real query.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
SWIFT ?= swift
CLANG ?= clang
PREFIX ?= /usr/local
PACKAGES = libbpf-dev libelf-dev zlib1g-dev libnuma-dev bpftool iproute2 python3 socat make procps tmux
VM_PACKAGES = qemu-system-x86 busybox-static cpio kmod iproute2

BENCH_OBJECTS = .build/bench/sockaff.bpf.o .build/bench/empty.bpf.o
BPF_CFLAGS = -target bpf -O2 -g -Wall -idirafter /usr/include/$(shell uname -m)-linux-gnu -ISources/CSockaffABI/include

.PHONY: all deps build test unit-test kernel-test vmtest vm-deps demo install clean lint format bench bench-smoke bench-deps

all: build

deps:
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PACKAGES)
	python3 -m pip install -q --root-user-action=ignore prometheus-client

# A fully static executable: one file to copy to a host, and start-up of a
# `sockaff query` drops from 22 ms (dynamic Swift runtime and Foundation) to ~6 ms.
# libbpf's static archive needs libelf and zlib named explicitly.
STATIC_FLAGS = -Xswiftc -static-executable -Xlinker -lelf -Xlinker -lz

build:
	# glibc warns that NSS calls (unused here) need its shared libraries at run time.
	$(SWIFT) build -c release $(STATIC_FLAGS) 2>&1 | { grep -v "statically linked applications requires at runtime" || true; }

# Unit tests and the kernel tests (root, real BPF, real traffic).
test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --disable-swift-testing

unit-test:
	$(SWIFT) test --disable-swift-testing --filter SocketAffinityTests

kernel-test:
	$(SWIFT) test --disable-swift-testing --filter KernelTests

# Debian's 6.1 kernel with 2 NUMA nodes and 4 CPUs under qemu (TCG): the
# static sockaff binary against real steered traffic (~20 s; Tests/vm/run.sh).
vmtest: build
	bash Tests/vm/run.sh .build/release/sockaff

vm-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(VM_PACKAGES)

demo: deps build
	.build/release/sockaff demo

install: build
	install -D -m 0755 .build/release/sockaff $(DESTDIR)$(PREFIX)/bin/sockaff

# The benchmark (minutes): writes the results into BENCHMARKS.md.
bench: build $(BENCH_OBJECTS)
	python3 bench/run.py --sockaff .build/release/sockaff --bench .build/release/sockaff-bench \
		--objects .build/bench --write BENCHMARKS.md

# Seconds: every measurement once, briefly, to keep the benchmark from rotting.
bench-smoke: build $(BENCH_OBJECTS)
	python3 bench/run.py --sockaff .build/release/sockaff --bench .build/release/sockaff-bench \
		--objects .build/bench --quick

bench-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 bpftrace

.build/bench/%.bpf.o: bpf/%.bpf.c Sources/CSockaffABI/include/sockaff_abi.h
	mkdir -p .build/bench
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Plugins Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests Plugins Package.swift

clean:
	rm -rf .build
