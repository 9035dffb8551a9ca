#!/usr/bin/env bash
# The VM lab: boots Debian's kernels under qemu (TCG) with 4 NUMA nodes and
# 8 CPUs and a 4-queue RSS NIC, runs the real static sockaff binary there
# against real traffic (Tests/vm/guest-init.sh, Tests/vm/guest-rss.sh), and
# passes only if every guest's verdict line says every check passed.
# Usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY
# (sockaff-bench sends the fan-in traffic and holds the RSS flows).
#
# The kernels are the ones Debian's releases name as linux-image-amd64:
# bookworm's 6.1, trixie's 6.12 and bullseye's 5.10 (SOCKAFF_VM_RELEASES
# chooses). Their packages come from Debian's archive through an apt
# configuration of the lab's own under .build/vm/apt (the machine's apt
# configuration is left alone) and are kept in .build/vm between runs.
#
# Needs (as root, from Debian's packages): qemu-system-x86 busybox-static cpio
# kmod iproute2 ethtool python3 xz-utils; `make vm-deps` installs them.
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${1:?usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY}
bench=${2:?usage: Tests/vm/run.sh SOCKAFF_BINARY SOCKAFF_BENCH_BINARY}
releases=${SOCKAFF_VM_RELEASES:-bookworm trixie bullseye}
work=.build/vm
mkdir -p "$work"
# apt takes relative Dir:: paths as relative to /: the lab's, absolute.
apt_root="$PWD/$work/apt"

# apt-get and apt-cache with the lab's own sources and lists for RELEASE.
lab_apt() { # lab_apt RELEASE COMMAND ARGS...
  local release=$1 tool=$2 dir="$apt_root/$1"
  shift 2
  "$tool" -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o APT::Get::List-Cleanup=0 "$@"
}

# Downloads and unpacks RELEASE's kernel once; prints its directory.
fetch_kernel() { # fetch_kernel RELEASE
  local release=$1 dir="$apt_root/$1" package deb
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  {
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $release main"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $release-security main"
  } >"$dir/sources.list"
  # Lists younger than a day are good enough for a kernel package name.
  if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
    lab_apt "$release" apt-get update -qq >/dev/null 2>&1 || { echo "vm: apt update for $release failed" >&2; return 1; }
  fi
  package=$(lab_apt "$release" apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
  [ -n "$package" ] || { echo "vm: no linux-image package for $release" >&2; return 1; }
  if [ ! -d "$work/$package" ]; then
    rm -f "$work"/*.deb
    (cd "$work" && lab_apt "$release" apt-get -qq download "$package" 2>&1 |
      grep -v "^W: Download is performed unsandboxed" || true)
    deb=$(ls "$work"/"$package"_*.deb)
    dpkg-deb -x "$deb" "$work/$package.partial"
    mv "$work/$package.partial" "$work/$package"
    rm -f "$deb"
  fi
  echo "$work/$package"
}

# The initramfs for KERNEL_ROOT: busybox, iproute2's ip and ethtool with
# their libraries, the sockaff binaries, the modules for veth and the
# virtio NIC (in load order; compressed ones unpacked for busybox's insmod;
# built-in ones skipped), and /init.
build_initrd() { # build_initrd KERNEL_ROOT VERSION OUTPUT
  local kernel_root=$1 version=$2 output=$3 initrd="$work/initrd"
  rm -rf "$initrd" && mkdir -p "$initrd"/{bin,usr/local/bin,modules,proc,sys,dev,tmp,lib64}
  cp /bin/busybox "$initrd/bin/busybox"
  install -m 0755 "$binary" "$initrd/usr/local/bin/sockaff"
  install -m 0755 "$bench" "$initrd/usr/local/bin/sockaff-bench"
  local ip ethtool library
  ip=$(command -v ip)
  cp "$ip" "$initrd/usr/local/bin/iproute2-ip"
  ethtool=$(command -v ethtool || echo /usr/sbin/ethtool)
  cp "$ethtool" "$initrd/usr/local/bin/ethtool"
  for library in $( (ldd "$ip"; ldd "$ethtool") | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$initrd$(dirname "$library")"
    cp -L "$library" "$initrd$library"
  done
  # Merged /usr (trixie) keeps them under usr/lib.
  local modules="$kernel_root/lib/modules/$version"
  [ -d "$modules" ] || modules="$kernel_root/usr/lib/modules/$version"
  load_order=()
  add_module() {
    local name=$1 path dependency file
    path=$(find "$modules" -name "$name.ko*" | head -n 1)
    if [ -z "$path" ]; then
      grep -q "/$name.ko" "$modules/modules.builtin" 2>/dev/null && return
      echo "vm: module $name neither in $(basename "$kernel_root") nor built in" >&2
      return 1
    fi
    for dependency in $(modinfo -F depends "$path" | tr ',' ' '); do add_module "$dependency"; done
    file=$(basename "$path")
    file=${file%.xz}
    file=${file%.zst}
    [[ " ${load_order[*]} " == *" $file "* ]] && return
    case "$path" in
      *.xz) xz -dc "$path" >"$initrd/modules/$file" ;;
      *.zst) zstd -qdc "$path" >"$initrd/modules/$file" ;;
      *) cp "$path" "$initrd/modules/$file" ;;
    esac
    load_order+=("$file")
  }
  add_module veth
  add_module virtio_pci
  add_module virtio_net
  printf '%s\n' "${load_order[@]}" >"$initrd/modules.order"
  install -m 0755 Tests/vm/guest-init.sh "$initrd/init"
  install -m 0644 Tests/vm/guest-rss.sh "$initrd/rss.sh"
  (cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$output"
}

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
# Nothing but the flows may reach the guest's queues (their counters are the
# checks' truth): fixed MACs with permanent neighbours on both sides (no ARP),
# and no IPv6 on the tap (no router solicitations, no MLD).
ip netns exec "$namespace" sysctl -qw net.ipv6.conf.tap0.disable_ipv6=1
ip -n "$namespace" link set tap0 address 02:00:0a:4d:00:01
ip -n "$namespace" addr add 10.77.0.1/24 dev tap0
ip -n "$namespace" neigh add 10.77.0.2 lladdr 52:54:00:4d:00:02 dev tap0 nud permanent
ip -n "$namespace" link set tap0 up
key=6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa
udp_ports=$(python3 Tests/vm/rss-peer.py ports "$key" 10.77.0.1 7000 10.77.0.2 4 2 40000)
tcp_ports=$(python3 Tests/vm/rss-peer.py ports "$key" 10.77.0.1 7001 10.77.0.2 4 1 41000)
ip netns exec "$namespace" python3 Tests/vm/rss-peer.py serve 10.77.0.1 7000 7001 >"$work/rss-peer.log" 2>&1 &
peer_pid=$!

# 4 sockets x 2 cores, one node each: node N = CPUs 2N and 2N+1 (with a plain
# -smp 8 the kernel warns that an LLC spans two nodes). KVM is not usable
# here: TCG. qemu's exit status says nothing; only the verdict counts.
numa=()
for node in 0 1 2 3; do
  numa+=(-object "memory-backend-ram,id=m$node,size=384M"
    -numa "node,nodeid=$node,cpus=$((2 * node))-$((2 * node + 1)),memdev=m$node")
done

total_passed=0
total_failed=0
for release in $releases; do
  if ! kernel_root=$(fetch_kernel "$release") ||
    ! version=$(ls "$kernel_root/lib/modules" 2>/dev/null || ls "$kernel_root/usr/lib/modules" 2>/dev/null); then
    echo "vm: $release: no kernel" >&2
    total_failed=$((total_failed + 1))
    continue
  fi
  package=$(basename "$kernel_root")
  if ! build_initrd "$kernel_root" "$version" "$work/initrd-$release.gz"; then
    total_failed=$((total_failed + 1))
    continue
  fi
  console="$work/console-$release.log"
  # qemu's multi-threaded TCG can trip over the kernel patching its own text
  # while another vCPU runs it (an "Oops: int3" in the patched function, seen
  # once in 6.12 when a static key flipped): that guest is booted once more.
  for attempt in 1 2; do
    start=$(date +%s)
    ip netns exec "$namespace" timeout 300 qemu-system-x86_64 -accel tcg,thread=multi -m 1536 \
      -smp 8,sockets=4,cores=2,threads=1 "${numa[@]}" \
      -nographic -no-reboot -nic none \
      -netdev tap,id=n0,ifname=tap0,script=no,downscript=no,queues=4,vhost=off \
      -device virtio-net-pci,netdev=n0,mac=52:54:00:4d:00:02,mq=on,vectors=10,rss=on,hash=on \
      -kernel "$kernel_root/boot/vmlinuz-$version" -initrd "$work/initrd-$release.gz" \
      -append "console=ttyS0 quiet panic=-1 SOCKAFF_RSS_KEY=$key SOCKAFF_RSS_UDP=$udp_ports SOCKAFF_RSS_TCP=$tcp_ports" \
      </dev/null | tr -d '\r' >"$console" || true
    echo "vm: $release: $package, $(($(date +%s) - start)) s wall"
    grep -q 'SOCKAFF-VM: ' "$console" || ! grep -q 'Oops: int3' "$console" || [ "$attempt" = 2 ] && break
    echo "vm: $release: the emulated guest crashed in kernel text patching (Oops: int3), booting it again" >&2
  done
  grep -E 'SOCKAFF-CHECK|^kernel ' "$console" | sed "s/^/vm: $release: /" || true
  verdict=$(grep -o 'SOCKAFF-VM: [0-9]* passed, [0-9]* failed' "$console" | tail -n 1 || true)
  if [ -z "$verdict" ]; then
    echo "vm: $release: no verdict from the guest; console tail:" >&2
    tail -n 40 "$console" >&2
    total_failed=$((total_failed + 1))
    continue
  fi
  read -r guest_passed guest_failed <<<"$(echo "$verdict" | sed 's/SOCKAFF-VM: \([0-9]*\) passed, \([0-9]*\) failed/\1 \2/')"
  echo "vm: $release: $guest_passed passed, $guest_failed failed"
  total_passed=$((total_passed + guest_passed))
  total_failed=$((total_failed + guest_failed))
done
echo "vm: $total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
