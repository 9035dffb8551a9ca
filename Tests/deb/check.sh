#!/usr/bin/env bash
# `make deb-check`: the Debian packages that `make deb` built, on this machine:
# lintian (no errors), dpkg -i, the installed tool answers (its version is the
# package's, a traced socket's CPU is the kernel's SO_INCOMING_CPU, the C
# library built through pkg-config answers), an upgrade detaches the tracer
# and says so, then dpkg --purge while the tracer is attached leaves nothing:
# no file, no pin, no attached program.
# Prints "deb: N passed, M failed" last; exits non-zero on any failure.
# Usage: Tests/deb/check.sh DIR VERSION
set -uo pipefail
cd "$(dirname "$0")/../.."
dir=${1:?usage: check.sh DIR VERSION}
version=${2:?usage: check.sh DIR VERSION}
arch=$(dpkg --print-architecture)
packages=(sockaff libsockaff1 libsockaff-dev)
check_tag=deb
# shellcheck source=../support/checks.sh
. Tests/support/checks.sh
finish() {
  echo "deb: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}
scratch=$(mktemp -d)
chmod 0755 "$scratch"
cleanup() {
  [ -n "${peer_pid:-}" ] && kill "$peer_pid" 2>/dev/null
  # Never leave the packages installed, even when a check failed midway.
  dpkg --purge "${packages[@]}" >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT

debs=()
for package in "${packages[@]}"; do
  debs+=("$dir/${package}_${version}_$arch.deb")
  check "$package: built" test -f "$dir/${package}_${version}_$arch.deb"
done
for package in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q installed; then
    echo "deb: FAIL $package is already installed here: purge it first (dpkg --purge $package)"
    failed=$((failed + 1))
    finish
  fi
done

# lintian's verdict, with every tag it printed shown (overrides are in
# contrib/deb/*.lintian-overrides, each with its reason).
lintian --allow-root --fail-on error "${debs[@]}" >"$scratch/lintian" 2>&1
lintian_status=$?
sed 's/^/deb: lintian: /' "$scratch/lintian"
check "lintian: no errors" test "$lintian_status" = 0

check "dpkg -i" dpkg -i "${debs[@]}"
for package in "${packages[@]}"; do
  check "$package: installed, version $version" \
    test "$(dpkg-query -W -f='${Status} ${Version}' "$package" 2>/dev/null)" = "install ok installed $version"
done
dpkg-query -L "${packages[@]}" >"$scratch/files" 2>/dev/null
check "sockaff --version is the package's, linked against shared libraries" \
	test "$(/usr/bin/sockaff --version 2>&1)" = "$version (record ABI $(sed -n 's/^#define SOCKAFF_ABI_VERSION //p' Sources/CSockaffABI/include/sockaff_abi.h), shared libraries)"
check "man page installed and renders" sh -c "zcat /usr/share/man/man1/sockaff.1.gz | groff -mandoc -Tutf8 | grep -q 'sockaff query'"
check "bash completion loads" bash -c "source /usr/share/bash-completion/completions/sockaff && complete -p sockaff"
check "units installed, not enabled" sh -c \
  "test -f /lib/systemd/system/sockaff.service && test ! -e /etc/systemd/system/multi-user.target.wants/sockaff.service"

# The installed binary traces a socket of another process: its CPU is the
# kernel's own SO_INCOMING_CPU for that socket.
check "sockaff trace attaches" /usr/bin/sockaff trace
# A connected UDP pair in one process, so that the kernel keeps the receiving
# socket's SO_INCOMING_CPU (it does not for an unconnected one).
coproc PEER {
  exec python3 -c '
import json, os, socket, sys
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
tx.connect(rx.getsockname())
rx.connect(tx.getsockname())
rx.settimeout(10)
for _ in range(5):
    tx.send(b"x" * 64)
    rx.recv(64)
incoming = rx.getsockopt(socket.SOL_SOCKET, 49)  # SO_INCOMING_CPU
print(json.dumps({"pid": os.getpid(), "fd": rx.fileno(), "incoming_cpu": incoming}), flush=True)
sys.stdin.readline()
'
}
peer_pid=$PEER_PID
read -r -t 10 hello <&"${PEER[0]}"
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$hello" "$1" 2>/dev/null; }
peer_fd=$(field fd)
incoming_cpu=$(field incoming_cpu)
/usr/bin/sockaff query --pid "$peer_pid" --fd "$peer_fd" --json >"$scratch/query" 2>&1
answer() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$scratch/query" "$1" 2>/dev/null; }
query_cpu=$(answer cpu)
query_packets=$(answer packets)
[ -n "$query_cpu" ] || echo "deb: query: $(head -c 300 "$scratch/query")"
check "query answers the kernel's CPU (SO_INCOMING_CPU $incoming_cpu, sockaff ${query_cpu:-none})" \
  test -n "$incoming_cpu" -a "$incoming_cpu" = "${query_cpu:-none}"
check "query counts the 5 datagrams the socket received (sockaff ${query_packets:-none})" test "$query_packets" = 5
echo >&"${PEER[1]}"
wait "$peer_pid" 2>/dev/null
peer_pid=

# The C library through the installed header, library and pkg-config file.
flags=$(pkg-config --cflags --libs sockaff 2>/dev/null)
# shellcheck disable=SC2086 # flags are words
check "C program builds with pkg-config sockaff" cc -Wall -Werror -o "$scratch/capi" Tests/capi/check.c $flags
while IFS= read -r line; do
  case "$line" in
    PASS*) passed=$((passed + 1)) && echo "deb: PASS capi: ${line#PASS }" ;;
    *) failed=$((failed + 1)) && echo "deb: FAIL capi: ${line#FAIL }" ;;
  esac
done < <("$scratch/capi" traced 2>&1 || true)

# An upgrade with the tracer attached by hand: the old prerm detaches it (the
# new binary may read another record layout) and says so, since no enabled
# unit attaches it again; the new version is installed and attaches. The
# "new version" is this package repacked with a higher version: it exercises
# the maintainer scripts' upgrade path, not a rebuild.
attached() { bpftool -j cgroup show "$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)" | grep -c '"sockaff_ingress"'; }
bpffs_of() { awk '$3 == "bpf" { print $2; exit }' /proc/mounts; }
upgrade=${version}+upgrade1
dpkg-deb -R "$dir/sockaff_${version}_$arch.deb" "$scratch/repack"
sed -i "s/^Version: .*/Version: $upgrade/" "$scratch/repack/DEBIAN/control"
dpkg-deb --root-owner-group -b "$scratch/repack" "$scratch/sockaff_${upgrade}_$arch.deb" >/dev/null
check "attached before upgrade" test "$(attached)" = 1
check "dpkg -i of version $upgrade (an upgrade)" sh -c "dpkg -i '$scratch/sockaff_${upgrade}_$arch.deb' >'$scratch/upgrade' 2>&1"
sed 's/^/deb: upgrade: /' "$scratch/upgrade"
check "sockaff: installed, version $upgrade" \
  test "$(dpkg-query -W -f='${Status} ${Version}' sockaff 2>/dev/null)" = "install ok installed $upgrade"
check "the upgrade detached the tracer" test "$(attached)" = 0
check "the upgrade left no pins" sh -c 'test -n "$1" && test -z "$(ls -A "$1/sockaff" 2>/dev/null)"' _ "$(bpffs_of)"
check "the upgrade said the tracer was detached" grep -q "the tracer was detached for the upgrade" "$scratch/upgrade"
check "sockaff trace attaches after the upgrade" /usr/bin/sockaff trace

# Purge with the tracer attached: the maintainer scripts detach it.
check "attached before purge" test "$(attached)" = 1
check "dpkg --purge" dpkg --purge "${packages[@]}"
check "nothing attached after purge" test "$(attached)" = 0
bpffs=$(bpffs_of)
check "no pins after purge" test -n "$bpffs" -a ! -e "$bpffs/sockaff"
check "no lock file after purge" test ! -e /run/sockaff.lock
# Files and links, not directories (/lib is a link to one where /usr is merged).
left=$(while IFS= read -r path; do { [ -f "$path" ] || [ -L "$path" ]; } && [ ! -d "$path" ] && echo "$path"; done \
  <"$scratch/files")
[ -n "$left" ] && echo "deb: left after purge: $left"
check "no packaged file left after purge ($(wc -l <"$scratch/files") listed)" test -z "$left"
for package in "${packages[@]}"; do
  check "$package: gone from dpkg" sh -c "! dpkg-query -W -f='\${Status}' $package 2>/dev/null | grep -q installed"
done
finish
