#!/bin/busybox sh
# /init of the VM lab's initramfs (Tests/vm/run.sh builds it): a Debian kernel
# with 2 NUMA nodes (node0 = CPUs 0-1, node1 = CPUs 2-3) runs the real sockaff
# binary against real TCP traffic between two network namespaces, with receive
# processing steered by RPS. Each check prints one "SOCKAFF-CHECK PASS|FAIL"
# line; the last line is the verdict "SOCKAFF-VM: N passed, M failed", which
# the host reads from the serial console. Then the guest powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/local/bin
# Busybox's own `ip` applet cannot do netns or veth: iproute2's, by full path.
IP=/usr/local/bin/iproute2-ip

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /run /var && mount -t tmpfs run /run && ln -s /run /var/run
mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup
# bpffs is left unmounted on purpose: `sockaff trace` must mount it.

passed=0
failed=0
check() { # check NAME CONDITION-RESULT DETAIL
	if [ "$2" = 0 ]; then
		passed=$((passed + 1))
		echo "SOCKAFF-CHECK PASS $1: $3"
	else
		failed=$((failed + 1))
		echo "SOCKAFF-CHECK FAIL $1: $3"
	fi
}
# Top-level key of a pretty-printed sockaff JSON document (two-space indent).
field() { sed -n "s/^  \"$1\" : \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p"; }

for module in $(cat /modules.order); do
	insmod "/modules/$module" || echo "insmod $module failed"
done

echo "kernel $(uname -r), cpus $(cat /sys/devices/system/cpu/online)," \
	"node0 $(cat /sys/devices/system/node/node0/cpulist), node1 $(cat /sys/devices/system/node/node1/cpulist)"

sockaff trace
check trace-attaches $? "sockaff trace mounted bpffs and attached on $(uname -r)"
status=$(sockaff status --json)
echo "$status" | grep -q '"attached" : true'
check status-attached $? "status says attached"
# sock_recv_length arrived in 6.3: on 6.1 the probe says no and locality
# falls back to sampling thread CPUs.
echo "$status" | tr -d '\n' | grep -q '"available" : false, *"name" : "tp_btf/sock_recv_length"'
check status-probes-old-kernel $? "status reports tp_btf/sock_recv_length unavailable"

$IP netns add a && $IP netns add b
$IP link add va type veth peer name vb
$IP link set va netns a && $IP link set vb netns b
$IP -n a addr add 10.11.0.1/24 dev va && $IP -n a link set va up && $IP -n a link set lo up
$IP -n b addr add 10.11.0.2/24 dev vb && $IP -n b link set vb up && $IP -n b link set lo up
steer() { $IP netns exec b sh -c "echo $1 > /sys/class/net/vb/queues/rx-0/rps_cpus"; }

# busybox nc quits at EOF on its stdin: feed it one that stays open.
sleep 600 | $IP netns exec b nc -l -p 5000 >/dev/null &
sleep 1
server=$(pidof nc)
(while true; do echo "sockaff-vm-payload"; sleep 0.05; done) | $IP netns exec a nc 10.11.0.2 5000 &
sender=$!
sleep 2
fd=$(sockaff list --pid "$server" --json | grep '"remote":"[^"]*10\.11\.0\.1' | sed -n 's/.*"fd":\([0-9]*\).*/\1/p')
check server-socket-listed "$([ -n "$fd" ]; echo $?)" "nc (pid $server) holds the connection as fd '$fd'"

expect_steered() { # expect_steered CPU NODE NUMBER
	steer $((1 << $1))
	sleep 1.5
	answer=$(sockaff query --pid "$server" --fd "$fd" --json)
	cpu=$(echo "$answer" | field cpu)
	node=$(echo "$answer" | field numa_node)
	group=$(echo "$answer" | field group)
	number=$(echo "$answer" | field number)
	kernel=$(echo "$answer" | field kernel_incoming_cpu)
	[ "$cpu" = "$1" ] && [ "$node" = "$2" ] && [ "$group" = 0 ] && [ "$number" = "$3" ]
	check "steered-to-cpu-$1" $? "cpu $cpu node $node group $group number $number (expected $1, $2, 0, $3)"
	[ "$kernel" = "$1" ]
	check "kernel-agrees-cpu-$1" $? "SO_INCOMING_CPU $kernel"
}
expect_steered 2 1 2
expect_steered 1 0 1
expect_steered 3 1 3

# The reading thread on CPU 0 (node 0) while receive runs on CPU 3 (node 1).
taskset -p 1 "$server" >/dev/null
sleep 1.5
mismatch=$(sockaff list --mismatch --json --pid "$server" | tr -d ' \n')
echo "$mismatch" | grep -q '"cross_numa":true'
check mismatch-flags-cross-numa $? "list --mismatch: $(echo "$mismatch" | cut -c1-160)"
echo "$mismatch" | grep -q '"thread_nodes":\[0\]'
check mismatch-thread-node $? "the reader's node is 0"

kill "$sender" 2>/dev/null
sockaff detach
[ ! -e /sys/fs/bpf/sockaff ]
check detach-leaves-no-pins $? "no /sys/fs/bpf/sockaff after detach"

[ "$(cat /proc/sys/kernel/tainted)" = 0 ]
check kernel-untainted $? "tainted=$(cat /proc/sys/kernel/tainted)"
! dmesg | grep -E 'WARNING|BUG' >/dev/null
check dmesg-clean $? "no WARNING or BUG in dmesg"

echo "SOCKAFF-VM: $passed passed, $failed failed"
poweroff -f
