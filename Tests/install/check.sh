#!/usr/bin/env bash
# `make install` into a scratch DESTDIR, then checks what landed: the binary,
# the man page (renders), the completions (bash loads them), the systemd
# units (systemd-analyze verifies them), and the commands the units run
# (ExecStart attaches, ExecStop detaches, per the kernel's own listing).
# Prints "install: N passed, M failed" last; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
destdir=$(mktemp -d)
trap 'rm -rf "$destdir"' EXIT
prefix=/usr/local
root="$destdir$prefix"
check_tag=install
# shellcheck source=../support/checks.sh
. Tests/support/checks.sh

log=$(mktemp)
make --no-print-directory install DESTDIR="$destdir" PREFIX="$prefix" >"$log" 2>&1
status=$?
check "make install" test "$status" = 0
[ "$status" = 0 ] || tail -n 20 "$log"
rm -f "$log"

check "binary" test -x "$root/bin/sockaff"
check "library" test -f "$root/lib/libsockaff.so.1" -a -L "$root/lib/libsockaff.so"
check "header" test -f "$root/include/sockaff.h"
check "binary runs" "$root/bin/sockaff" help query
check "man page renders" sh -c "groff -mandoc -Tutf8 '$root/share/man/man1/sockaff.1' | grep -q 'sockaff query'"
man_text=$(groff -mandoc -Tascii -P-cbou "$root/share/man/man1/sockaff.1" 2>/dev/null | tr -s ' \n' ' ')
for expected in "16 refused by the kernel." "(default: 100)" "/run/sockaff.lock" "SEE ALSO"; do
  check "man page has '$expected'" grep -qF "$expected" <<<"$man_text"
done
check "bash completion loads" bash -c "source '$root/share/bash-completion/completions/sockaff' && complete -p sockaff"
check "zsh completion" grep -q '^#compdef sockaff' "$root/share/zsh/site-functions/_sockaff"
check "fish completion" grep -q "complete -c 'sockaff'" "$root/share/fish/vendor_completions.d/sockaff.fish"
# systemd-analyze checks that ExecStart's program exists: verify copies of
# the units that point into DESTDIR, side by side (one Requires the other).
units=$(mktemp -d)
for unit in sockaff sockaff-metrics; do
  file="$root/lib/systemd/system/$unit.service"
  check "$unit.service names $prefix/bin" grep -q "^ExecStart=$prefix/bin/sockaff " "$file"
  sed "s|=$prefix/bin/|=$root/bin/|" "$file" >"$units/$unit.service"
done
check "sockaff-metrics.service reads /etc/default/sockaff" \
  grep -qx 'EnvironmentFile=-/etc/default/sockaff' "$root/lib/systemd/system/sockaff-metrics.service"
check "units verify" systemd-analyze verify --man=no "$units/sockaff.service" "$units/sockaff-metrics.service"
rm -rf "$units"

# What sockaff.service runs, with the installed binary.
attached() { bpftool -j cgroup show "$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)" | grep -c '"sockaff_ingress"'; }
unit_command() { sed -n "s|^$1=$prefix|$root|p" "$root/lib/systemd/system/sockaff.service"; }
$(unit_command ExecStop) >/dev/null 2>&1
$(unit_command ExecStart) >/dev/null 2>&1
check "ExecStart attaches" test "$(attached)" = 1
$(unit_command ExecStart) >/dev/null 2>&1
check "ExecStart again attaches once" test "$(attached)" = 1
$(unit_command ExecStop) >/dev/null 2>&1
check "ExecStop detaches" test "$(attached)" = 0

# The C library: a C program built against the installed header and library
# through pkg-config, run with the tracer readable (root, attached), without
# it (detached), and as a user who may not read it (nobody: kernel answer).
check "pkg-config finds sockaff" env PKG_CONFIG_SYSROOT_DIR="$destdir" PKG_CONFIG_PATH="$root/lib/pkgconfig" \
  pkg-config --exists sockaff
cprogram=$(mktemp -d)
chmod 0755 "$cprogram"
flags=$(PKG_CONFIG_SYSROOT_DIR="$destdir" PKG_CONFIG_PATH="$root/lib/pkgconfig" pkg-config --cflags --libs sockaff)
# shellcheck disable=SC2086 # flags are words
check "C program compiles against sockaff.h" cc -Wall -Werror -o "$cprogram/check" Tests/capi/check.c $flags \
  -Wl,-rpath,"$root/lib"
chmod -R a+rX "$destdir"
run_c() { # run_c LABEL MODE [COMMAND PREFIX...]
  local label=$1 mode=$2 line
  shift 2
  while IFS= read -r line; do
    case "$line" in
      PASS*) passed=$((passed + 1)) && echo "install: PASS capi $label: ${line#PASS }" ;;
      *) failed=$((failed + 1)) && echo "install: FAIL capi $label: ${line#FAIL }" ;;
    esac
  done < <("$@" "$cprogram/check" "$mode" 2>&1 || true)
}
"$root/bin/sockaff" trace >/dev/null 2>&1
run_c "root, tracer attached" traced
run_c "nobody, tracer attached" kernel setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all
"$root/bin/sockaff" detach >/dev/null 2>&1
run_c "root, tracer detached" kernel
rm -rf "$cprogram"

echo "install: $passed passed, $failed failed"
[ "$failed" = 0 ]
