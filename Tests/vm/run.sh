#!/usr/bin/env bash
# The VM lab: boots Debian's 6.1 kernel under qemu (TCG) with 4 NUMA nodes and
# 8 CPUs, runs the real static sockaff binary there against real traffic
# (Tests/vm/guest-init.sh), and passes only if the guest's verdict line says
# every check passed. Usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY
# (sockaff-bench sends the fan-in traffic: one pinned sender per vCPU).
#
# Needs (as root, from Debian's packages): qemu-system-x86 busybox-static cpio
# kmod iproute2 ethtool python3; `make vm-deps` installs them. The kernel package is
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
# iproute2's ip and ethtool (the RSS checks' ground truth and setup), with
# their libraries.
ip=$(command -v ip)
cp "$ip" "$initrd/usr/local/bin/iproute2-ip"
ethtool=$(command -v ethtool || echo /usr/sbin/ethtool)
cp "$ethtool" "$initrd/usr/local/bin/ethtool"
for library in $( (ldd "$ip"; ldd "$ethtool") | grep -o '/[^ ]*' | sort -u); do
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
add_module virtio_pci
add_module virtio_net
printf '%s\n' "${load_order[@]}" >"$initrd/modules.order"
install -m 0755 Tests/vm/guest-init.sh "$initrd/init"
install -m 0644 Tests/vm/guest-rss.sh "$initrd/rss.sh"
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# The RSS NIC: a 4-queue tap in a network namespace of the lab's own, where
# the RSS peer (Tests/vm/rss-peer.py) answers the guest's flows, and qemu
# runs in that namespace with a virtio-net device doing RSS (in software:
# qemu's eBPF steering does not load with Debian's libbpf, and its software
# RSS steers exactly). The Toeplitz key is Microsoft's verification key;
# the guest's local ports are chosen here so that its flows cover every queue.
namespace="sockaff-vm-$$"
peer_pid=""
cleanup() {
  [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
  ip netns del "$namespace" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$namespace"
ip -n "$namespace" link set lo up
ip -n "$namespace" tuntap add dev tap0 mode tap multi_queue
ip -n "$namespace" addr add 10.77.0.1/24 dev tap0
ip -n "$namespace" link set tap0 up
key=6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa
udp_ports=$(python3 Tests/vm/rss-peer.py ports "$key" 10.77.0.1 7000 10.77.0.2 4 2 40000)
tcp_ports=$(python3 Tests/vm/rss-peer.py ports "$key" 10.77.0.1 7001 10.77.0.2 4 1 41000)
ip netns exec "$namespace" python3 Tests/vm/rss-peer.py serve 10.77.0.1 7000 7001 >"$work/rss-peer.log" 2>&1 &
peer_pid=$!

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
ip netns exec "$namespace" timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -m 1536 \
  -smp 8,sockets=4,cores=2,threads=1 "${numa[@]}" \
  -nographic -no-reboot -nic none \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,queues=4,vhost=off \
  -device virtio-net-pci,netdev=n0,mq=on,vectors=10,rss=on,hash=on \
  -kernel "$kernel_root/boot/vmlinuz-$version" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 SOCKAFF_RSS_KEY=$key SOCKAFF_RSS_UDP=$udp_ports SOCKAFF_RSS_TCP=$tcp_ports" \
  </dev/null | tr -d '\r' >"$console" || true
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
