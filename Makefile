# sockaff: build, test, demo. `make demo` on a fresh Debian 12 host (as root)
# installs the packages, builds, attaches and answers a real query.
SHELL := /bin/bash
# The Swift toolchain's place on this project's machines; swift on PATH works too.
export PATH := /opt/swift/usr/bin:$(PATH)
.SHELLFLAGS := -o pipefail -c
SWIFT ?= swift
CLANG ?= clang
PREFIX ?= /usr/local
PACKAGES = libbpf-dev libelf-dev zlib1g-dev libnuma-dev libnl-genl-3-dev bpftool iproute2 python3 socat make procps tmux pkg-config gcc
VM_PACKAGES = qemu-system-x86 busybox-static cpio kmod iproute2 ethtool xz-utils

BENCH_OBJECTS = .build/bench/sockaff.bpf.o .build/bench/empty.bpf.o .build/bench/storage_floor.bpf.o .build/bench/lookup_floor.bpf.o
BPF_CFLAGS = -target bpf -mcpu=v3 -O2 -g -Wall -idirafter /usr/include/$(shell uname -m)-linux-gnu -ISources/CSockaffABI/include

.PHONY: all deps build capi test unit-test kernel-test vmtest vm-deps demo man completions install install-check clean lint format bench bench-smoke bench-deps bench-bundle

all: build

deps:
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PACKAGES)
	python3 -m pip install -q --root-user-action=ignore prometheus-client

# A fully static executable: one file to copy to a host, and start-up of a
# `sockaff query` drops from 22 ms (dynamic Swift runtime and Foundation) to ~6 ms.
# libbpf's static archive needs libelf and zlib named explicitly.
STATIC_FLAGS = -Xswiftc -static-executable -Xlinker -lelf -Xlinker -lz

# Executables only: the C library (make capi) is a shared object and cannot
# be linked with -static-executable. glibc warns that NSS calls (unused
# here) need its shared libraries at run time.
build:
	for product in sockaff sockaff-bench; do \
		$(SWIFT) build -c release --product $$product $(STATIC_FLAGS) 2>&1 \
			| { grep -v "statically linked applications requires at runtime" || true; }; \
	done

# libsockaff.so.1: the C API (Sources/CSockaffAPI/include/sockaff.h) with the
# Swift runtime linked in, so C programs need only libbpf, libnuma and libc.
# Its own scratch path: its link flags differ from the static executables'.
capi:
	$(SWIFT) build -c release --scratch-path .build-capi --product SockaffC -Xswiftc -static-stdlib \
		-Xlinker -soname=libsockaff.so.1 2>&1 | { grep -v "the use of .mktemp. is dangerous" || true; }

# Unit tests and the kernel tests (root, real BPF, real traffic); installs
# what they use first, so it also works on a fresh Debian 12 machine.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --disable-swift-testing

unit-test:
	$(SWIFT) test --disable-swift-testing --filter "SocketAffinityTests|SockaffPresentationTests"

kernel-test:
	$(SWIFT) test --disable-swift-testing --filter KernelTests

# Debian's kernels (bookworm's 6.1, trixie's 6.12, bullseye's 5.10) with 4
# NUMA nodes, 8 CPUs and a 4-queue RSS NIC under qemu (TCG): the static
# sockaff binary against real steered, fan-in and RSS traffic (Tests/vm/run.sh).
vmtest: vm-deps build
	bash Tests/vm/run.sh .build/release/sockaff .build/release/sockaff-bench

vm-deps: deps
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(VM_PACKAGES)

demo: deps build
	.build/release/sockaff demo

# The man page and the shell completions are generated from the argument
# parser (its generate-manual tool and --generate-completion-script).
man: build
	mkdir -p .build/man
	$(SWIFT) run generate-manual .build/release/sockaff --output-directory .build/man

completions: build
	mkdir -p .build/completions
	.build/release/sockaff --generate-completion-script bash > .build/completions/sockaff.bash
	.build/release/sockaff --generate-completion-script zsh > .build/completions/_sockaff
	.build/release/sockaff --generate-completion-script fish > .build/completions/sockaff.fish

VERSION = 0.1.0

install: build man completions capi
	install -D -m 0755 .build/release/sockaff $(DESTDIR)$(PREFIX)/bin/sockaff
	install -D -m 0755 .build-capi/release/libSockaffC.so $(DESTDIR)$(PREFIX)/lib/libsockaff.so.1
	ln -sf libsockaff.so.1 $(DESTDIR)$(PREFIX)/lib/libsockaff.so
	install -D -m 0644 Sources/CSockaffAPI/include/sockaff.h $(DESTDIR)$(PREFIX)/include/sockaff.h
	mkdir -p $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' contrib/sockaff.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/sockaff.pc
	install -D -m 0644 .build/man/sockaff.1 $(DESTDIR)$(PREFIX)/share/man/man1/sockaff.1
	install -D -m 0644 .build/completions/sockaff.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sockaff
	install -D -m 0644 .build/completions/_sockaff $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sockaff
	install -D -m 0644 .build/completions/sockaff.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sockaff.fish
	for unit in sockaff sockaff-metrics; do \
		mkdir -p $(DESTDIR)$(PREFIX)/lib/systemd/system; \
		sed 's|@BINDIR@|$(PREFIX)/bin|g' contrib/$$unit.service.in > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$unit.service; \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$unit.service; \
	done

# Installs into a scratch DESTDIR and checks what landed (Tests/install/check.sh).
install-check: build
	bash Tests/install/check.sh

# The benchmark (minutes): measures into bench/results.json (raw values per
# round, with the machine), then renders BENCHMARKS.md's results from it.
bench: build $(BENCH_OBJECTS)
	python3 bench/run.py --sockaff .build/release/sockaff --bench .build/release/sockaff-bench \
		--objects .build/bench --out bench/results.json
	python3 bench/render.py bench/results.json --write BENCHMARKS.md

# Seconds: every measurement once, briefly, to keep the benchmark (and its
# rendering) from rotting.
bench-smoke: build $(BENCH_OBJECTS)
	python3 bench/run.py --sockaff .build/release/sockaff --bench .build/release/sockaff-bench \
		--objects .build/bench --quick --out .build/bench/smoke.json
	python3 bench/render.py .build/bench/smoke.json

# bench/run.py with everything it runs, for another host (a lent many-CPU
# machine): .build/bench-bundle/run.sh there. See bench/bundle.sh.
bench-bundle: build $(BENCH_OBJECTS)
	bash bench/bundle.sh

bench-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 bpftrace

.build/bench/sockaff.bpf.o: bpf/sockaff.bpf.c Sources/CSockaffABI/include/sockaff_abi.h
	mkdir -p .build/bench
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The benchmark's own programs (its floors) live with it, apart from the product's.
.build/bench/%.bpf.o: bench/bpf/%.bpf.c
	mkdir -p .build/bench
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Plugins Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests Plugins Package.swift

clean:
	rm -rf .build
