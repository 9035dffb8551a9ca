#!/usr/bin/env bash
# The VM lab: boots Debian's 6.1 kernel under qemu (TCG) with 4 NUMA nodes and
# 8 CPUs, runs the real static sockaff binary there against real traffic
# (Tests/vm/guest-init.sh), and passes only if the guest's verdict line says
# every check passed. Usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY
# (sockaff-bench sends the fan-in traffic: one pinned sender per vCPU).
#
# Needs (as root, from Debian's packages): qemu-system-x86 busybox-static cpio
# kmod iproute2; `make vm-deps` installs them. The kernel package is
# downloaded with apt-get into .build/vm and kept there between runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${1:?usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY}
bench=${2:?usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY}
work=.build/vm
mkdir -p "$work"

# The kernel Debian's linux-image-amd64 names (6.1 on Debian 12).
package=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
[ -n "$package" ] || { echo "vm: no linux-image package found (run apt-get update)" >&2; exit 1; }
if [ ! -d "$work/$package" ]; then
  rm -f "$work"/*.deb
  (cd "$work" && apt-get -qq download "$package" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
  deb=$(ls "$work"/"$package"_*.deb)
  dpkg-deb -x "$deb" "$work/$package.partial"
  mv "$work/$package.partial" "$work/$package"
  rm -f "$deb"
fi
kernel_root="$work/$package"
version=$(ls "$kernel_root/lib/modules")

# The initramfs: busybox, iproute2's ip with its libraries, the sockaff
# binary, veth and the modules it depends on (in load order), and /init.
initrd="$work/initrd"
rm -rf "$initrd" && mkdir -p "$initrd"/{bin,usr/local/bin,modules,proc,sys,dev,tmp,lib64}
cp /bin/busybox "$initrd/bin/busybox"
install -m 0755 "$binary" "$initrd/usr/local/bin/sockaff"
install -m 0755 "$bench" "$initrd/usr/local/bin/sockaff-bench"
ip=$(command -v ip)
cp "$ip" "$initrd/usr/local/bin/iproute2-ip"
for library in $(ldd "$ip" | grep -o '/[^ ]*'); do
  mkdir -p "$initrd$(dirname "$library")"
  cp -L "$library" "$initrd$library"
done
module_path() { find "$kernel_root/lib/modules/$version" -name "$1.ko*" | head -n 1; }
load_order=()
add_module() {
  local name=$1 path dependency
  path=$(module_path "$name")
  [ -n "$path" ] || { echo "vm: module $name not in $package" >&2; exit 1; }
  for dependency in $(modinfo -F depends "$path" | tr ',' ' '); do add_module "$dependency"; done
  [[ " ${load_order[*]} " == *" $(basename "$path") "* ]] && return
  cp "$path" "$initrd/modules/"
  load_order+=("$(basename "$path")")
}
add_module veth
printf '%s\n' "${load_order[@]}" >"$initrd/modules.order"
install -m 0755 Tests/vm/guest-init.sh "$initrd/init"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# 4 sockets x 2 cores, one node each: node N = CPUs 2N and 2N+1 (with a plain
# -smp 8 the kernel warns that an LLC spans two nodes). KVM is not usable
# here: TCG. qemu's exit status says nothing; only the verdict counts.
console="$work/console.log"
start=$(date +%s)
numa=()
for node in 0 1 2 3; do
  numa+=(-object "memory-backend-ram,id=m$node,size=384M"
    -numa "node,nodeid=$node,cpus=$((2 * node))-$((2 * node + 1)),memdev=m$node")
done
timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -m 1536 \
  -smp 8,sockets=4,cores=2,threads=1 "${numa[@]}" \
  -nographic -no-reboot -nic none \
  -kernel "$kernel_root/boot/vmlinuz-$version" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1" </dev/null | tr -d '\r' >"$console" || true
echo "vm: $package, $(($(date +%s) - start)) s wall"
grep -E 'SOCKAFF-CHECK|^kernel ' "$console" | sed 's/^/vm: /' || true
verdict=$(grep -o 'SOCKAFF-VM: [0-9]* passed, [0-9]* failed' "$console" | tail -n 1 || true)
if [ -z "$verdict" ]; then
  echo "vm: no verdict from the guest; console tail:" >&2
  tail -n 40 "$console" >&2
  exit 1
fi
echo "vm: ${verdict#SOCKAFF-VM: }"
[[ "$verdict" == *" 0 failed" ]]
