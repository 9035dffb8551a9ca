# sockaff: build, test, demo. `make demo` on a fresh Debian 12 host (as root)
# installs the packages, builds, attaches and answers a real query.
SHELL := /bin/bash
# The Swift toolchain's place on this project's machines; swift on PATH works too.
export PATH := /opt/swift/usr/bin:$(PATH)
.SHELLFLAGS := -o pipefail -c
SWIFT ?= swift
CLANG ?= clang
PREFIX ?= /usr/local
PACKAGES = libbpf-dev libelf-dev zlib1g-dev libnuma-dev libnl-genl-3-dev libcrypt-dev openssl curl bpftool iproute2 python3 socat make procps tmux pkg-config gcc
VM_PACKAGES = qemu-system-x86 busybox-static cpio kmod iproute2 ethtool xz-utils

BENCH_OBJECTS = .build/bench/sockaff.bpf.o .build/bench/empty.bpf.o .build/bench/storage_floor.bpf.o .build/bench/lookup_floor.bpf.o .build/bench/empty_read.bpf.o
BPF_CFLAGS = -target bpf -mcpu=v3 -O2 -g -Wall -idirafter /usr/include/$(shell uname -m)-linux-gnu -ISources/CSockaffABI/include

.PHONY: all deps build capi test unit-test kernel-test vmtest vm-deps demo man completions install install-check shared-sockaff deb deb-check deb-deps promtest prom-deps clean lint format bench bench-smoke bench-deps bench-bundle

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
			| { grep -v "statically linked applications requires at runtime" || true; } || exit 1; \
	done

# Linked against Debian's shared libbpf, libelf, zlib, libnuma and libnl, with
# the Swift runtime linked in (-static-stdlib), no ORIGIN rpath, bind-now:
#  - libsockaff.so.1, the C API (sockaff.h): a shared object cannot be linked
#    -static-executable; C programs need only those libraries and libc;
#  - the sockaff that the Debian package ships: Debian's security updates of
#    those libraries reach it, and lintian accepts it (no embedded zlib).
# Their own scratch path (their link flags differ from the static executables');
# the two links share one compilation.
SHARED_FLAGS = -Xswiftc -static-stdlib --disable-local-rpath -Xlinker -z -Xlinker now

capi:
	$(SWIFT) build -c release --scratch-path .build-capi --product SockaffC $(SHARED_FLAGS) \
		-Xlinker -soname=libsockaff.so.1 2>&1 | { grep -v "the use of .mktemp. is dangerous" || true; }

shared-sockaff:
	$(SWIFT) build -c release --scratch-path .build-capi --product sockaff $(SHARED_FLAGS) 2>&1 \
		| { grep -v "the use of .mktemp. is dangerous" || true; }

# Unit tests and the kernel tests (root, real BPF, real traffic); installs
# what they use first, so it also works on a fresh Debian 12 machine.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --disable-swift-testing

unit-test:
	$(SWIFT) test --disable-swift-testing --filter "SocketAffinityTests|SockaffPresentationTests|SockaffMetricsTests"

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
# An empty line in mdoc is a stray blank line (groff warns): a paragraph break is .Pp.
# contrib/man/finish.py adds what generate-manual leaves out, from the binary
# itself: the exit statuses, each option's default, FILES, EXAMPLES, SEE ALSO.
man: build
	mkdir -p .build/man
	$(SWIFT) run generate-manual .build/release/sockaff --output-directory .build/man
	sed -i 's/^$$/.Pp/' .build/man/sockaff.1
	python3 contrib/man/finish.py .build/release/sockaff .build/man/sockaff.1

completions: build
	mkdir -p .build/completions
	.build/release/sockaff --generate-completion-script bash > .build/completions/sockaff.bash
	.build/release/sockaff --generate-completion-script zsh > .build/completions/_sockaff
	.build/release/sockaff --generate-completion-script fish > .build/completions/sockaff.fish

# The one version, written in Sources/SocketAffinity/Version.swift (what
# `sockaff --version` prints).
VERSION := $(shell sed -n 's/.*static let string = "\([^"]*\)".*/\1/p' Sources/SocketAffinity/Version.swift)

# Where `make install` puts things; `make deb` sets Debian's places.
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions

# The static executable by default; `make deb` installs the shared-library one.
SOCKAFF_BINARY ?= .build/release/sockaff

install: build man completions capi
	install -D -m 0755 $(SOCKAFF_BINARY) $(DESTDIR)$(BINDIR)/sockaff
	install -D -m 0644 .build-capi/release/libSockaffC.so $(DESTDIR)$(LIBDIR)/libsockaff.so.1
	ln -sf libsockaff.so.1 $(DESTDIR)$(LIBDIR)/libsockaff.so
	install -D -m 0644 Sources/CSockaffAPI/include/sockaff.h $(DESTDIR)$(INCLUDEDIR)/sockaff.h
	mkdir -p $(DESTDIR)$(LIBDIR)/pkgconfig
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
		contrib/sockaff.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/sockaff.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/sockaff.pc
	install -D -m 0644 .build/man/sockaff.1 $(DESTDIR)$(MANDIR)/man1/sockaff.1
	install -D -m 0644 .build/completions/sockaff.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sockaff
	install -D -m 0644 .build/completions/_sockaff $(DESTDIR)$(ZSHCOMPDIR)/_sockaff
	install -D -m 0644 .build/completions/sockaff.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sockaff.fish
	for unit in sockaff sockaff-metrics; do \
		mkdir -p $(DESTDIR)$(UNITDIR); \
		sed 's|@BINDIR@|$(BINDIR)|g' contrib/$$unit.service.in > $(DESTDIR)$(UNITDIR)/$$unit.service; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit.service; \
	done

# Debian packages in .build/deb: sockaff (the tool), libsockaff1 (the C
# library) and libsockaff-dev (header, pkg-config), from `make install`
# into Debian's places (contrib/deb/build.sh).
# DEB_MAINTAINER="Name <address>": the packages' maintainer (contrib/deb/build.sh).
export DEB_MAINTAINER
deb: build man completions capi shared-sockaff
	bash contrib/deb/build.sh $(VERSION)

# Builds the packages, runs lintian, installs, queries and purges them on
# this machine (Tests/deb/check.sh); ends with "deb: N passed, M failed".
deb-check: deb-deps deb
	bash Tests/deb/check.sh .build/deb $(VERSION)

# Debian's Prometheus scrapes `sockaff serve`; promtool checks and unit-tests
# contrib/prometheus's rules; every Grafana panel query returns data
# (Tests/prometheus/check.py). Ends with "prometheus: N passed, M failed".
promtest: prom-deps build
	python3 Tests/prometheus/check.py .build/release/sockaff

prom-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus iproute2

deb-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian dpkg-dev

# Installs into a scratch DESTDIR and checks what landed (Tests/install/check.sh).
install-check: build
	bash Tests/install/check.sh

# The benchmark (minutes): measures into bench/results.json (raw values per
# round, with the machine), then renders BENCHMARKS.md's results from it.
# BASELINE_SOCKAFF=PATH: another build's sockaff, measured beside this one.
bench: build $(BENCH_OBJECTS)
	python3 bench/run.py --sockaff .build/release/sockaff --bench .build/release/sockaff-bench \
		--objects .build/bench --out bench/results.json \
		$(if $(BASELINE_SOCKAFF),--baseline-sockaff $(BASELINE_SOCKAFF))
	python3 bench/render.py bench/results.json --write BENCHMARKS.md

# Seconds: every measurement once, briefly, to keep the benchmark (and its
# rendering) from rotting. This build stands in as its own baseline so that
# section 8's code runs too; its figures there mean nothing.
bench-smoke: build $(BENCH_OBJECTS)
	python3 bench/run.py --sockaff .build/release/sockaff --bench .build/release/sockaff-bench \
		--objects .build/bench --quick --baseline-sockaff .build/release/sockaff --out .build/bench/smoke.json
	python3 bench/render.py .build/bench/smoke.json

# bench/run.py with everything it runs, for another host (a lent many-CPU
# machine): .build/bench-bundle/run.sh there. See bench/bundle.sh.
bench-bundle: build $(BENCH_OBJECTS)
	bash bench/bundle.sh

bench-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iperf3 bpftrace

.build/bench/sockaff.bpf.o: bpf/sockaff.bpf.c bpf/sockaff_records.bpf.h Sources/CSockaffABI/include/sockaff_abi.h
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
