#!/bin/busybox sh
# /init of the VM lab's initramfs (Tests/vm/run.sh builds it): a Debian kernel
# with 4 NUMA nodes (node N = CPUs 2N and 2N+1) runs the real sockaff binary
# against real TCP traffic between two network namespaces, with receive
# processing steered by RPS, and against UDP fan-in from every vCPU into one
# socket. Each check prints one "SOCKAFF-CHECK PASS|FAIL"
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
	"nodes $(for n in /sys/devices/system/node/node[0-9]*; do printf '%s=%s ' "${n##*node}" "$(cat "$n/cpulist")"; done)"

# What sockaff claims depends on the kernel: its version as a number (6.1 -> 601).
kver=$(uname -r | awk -F. '{ print $1 * 100 + $2 }')
sockaff trace 2>/tmp/trace.err
trace_status=$?
status=$(sockaff status --json | tr -d ' \n')
feature() { # feature NAME true|false: status reports it so
	echo "$status" | grep -q "\"available\":$2,\"name\":\"$1\""
}
if [ "$kver" -lt 512 ]; then
	# BPF atomics that fetch (compare-and-swap, exchange) arrived in 5.12:
	# trace refuses with exit 12 naming the feature, and attaches nothing.
	[ "$trace_status" = 12 ] && grep -q "lacks atomics_with_fetch" /tmp/trace.err && ! echo "$status" | grep -q '"attached":true'
	check trace-refuses-without-atomics $? "exit $trace_status: $(cat /tmp/trace.err)"
	feature atomics_with_fetch false
	check status-probes-atomics $? "status reports atomics_with_fetch unavailable on $(uname -r)"
	traced=no
else
	check trace-attaches "$trace_status" "sockaff trace mounted bpffs and attached on $(uname -r)"
	feature atomics_with_fetch true
	check status-probes-atomics $? "status reports atomics_with_fetch available"
	echo "$status" | grep -q '"attached":true'
	check status-attached $? "status says attached"
	traced=yes
fi
# sock_recv_length arrived in 6.3: before it the probe says no and locality
# falls back to sampling thread CPUs; from it trace degrades nothing.
if [ "$kver" -lt 603 ]; then
	if [ "$traced" = yes ]; then
		grep -q "reads are not traced" /tmp/trace.err
		check trace-says-what-it-degraded $? "trace said: $(cat /tmp/trace.err)"
	fi
	feature tp_btf/sock_recv_length false
	check status-probes-recv-length $? "status reports tp_btf/sock_recv_length unavailable"
else
	[ ! -s /tmp/trace.err ]
	check trace-degrades-nothing $? "trace said: '$(cat /tmp/trace.err)'"
	feature tp_btf/sock_recv_length true
	check status-probes-recv-length $? "status reports tp_btf/sock_recv_length available"
fi

bpf_checks() {

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
	if [ "$kver" -lt 603 ]; then
		# Sampled from the threads' CPUs: the pinned reader's node, at once.
		mismatch=$(sockaff list --mismatch --json --pid "$server" | tr -d ' \n')
		echo "$mismatch" | grep -q '"cross_numa":true'
		check mismatch-flags-cross-numa $? "list --mismatch: $(echo "$mismatch" | cut -c1-160)"
		echo "$mismatch" | grep -q '"thread_nodes":\[0\]'
		check mismatch-thread-node $? "the reader's node is 0"
	else
		# Every read traced (recvmsg): the share is over all reads since
		# attach, so the latest read tells at once: on CPU 0, node 0, while
		# the packets are received on CPU 3, node 1.
		answer=$(sockaff query --pid "$server" --fd "$fd" --json | tr -d ' \n')
		echo "$answer" | grep -q '"consumer_cpu":0,' && echo "$answer" | grep -q '"source":"recvmsg"'
		check reads-traced-on-reader-cpu $? "$(echo "$answer" | grep -o '"consumer_cpu":[0-9]*,.*"locality":{[^}]*}' | cut -c1-200)"
		echo "$answer" | grep -q '"reader_node":0,"reader_off_receive_node":true,"reader_source":"recvmsg","receive_cpu":3,"receive_node":1'
		check path-reader-off-receive-node $? "$(echo "$answer" | grep -o '"path":{.*}' | cut -c1-400)"
	fi

	# A scrape on this kernel: the kernel's pass over every process's open
	# files (the held-sockets iterator) finds the server's socket received on
	# CPU 3 (node 1), as the walk of /proc/P/fd does.
	for source in iterator procfs; do
		sockaff export --sockets-from "$source" --per-socket-series >/tmp/export.$source 2>/tmp/export.err
		grep -q "^sockaff_socket_receive_packets_total{pid=\"$server\".*fd=\"$fd\".*cpu=\"3\",node=\"1\"}" /tmp/export.$source
		check "export-$source-finds-the-socket" $? "$(grep "pid=\"$server\"" /tmp/export.$source | head -n 3; cat /tmp/export.err)"
	done

	kill "$sender" 2>/dev/null

	# Fan-in: one sender per vCPU, pinned, each a known number of datagrams into
	# one socket; on loopback each is received on its sender's vCPU. Every
	# vCPU's count must be exact, the nodes' sums right, nothing unattributed,
	# and the total equal to the UDP MIB's (read + dropped at the socket).
	$IP link set lo up
	udp_delivered() { awk '/^Udp:/ { if (names) { print $2 + $6 + $10; exit } names = 1 }' /proc/net/snmp; }
	sockaff-bench udp-sink 6000 >/tmp/sink &
	sleep 1
	sink=$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' /tmp/sink)
	sink_fd=$(sed -n 's/.*"fd": \([0-9]*\).*/\1/p' /tmp/sink)
	# A datagram the loopback backlog drops (TCG can starve a vCPU's softirq)
	# never reaches a socket; the kernel counts those per CPU in softnet_stat
	# (second column, one line per CPU). A deep backlog keeps them rare, and the
	# expected counts subtract them, as the kernel counted.
	echo 100000 >/proc/sys/net/core/netdev_max_backlog
	backlog_drops() { while read -r _ dropped _; do printf '%d ' $((0x$dropped)); done </proc/net/softnet_stat; }
	per_cpu=20000
	before=$(udp_delivered)
	drops_before=$(backlog_drops)
	sockaff-bench udp-send "$per_cpu" 6000 0,1,2,3,4,5,6,7 >/dev/null
	sleep 2
	delivered=$(($(udp_delivered) - before))
	drops_after=$(backlog_drops)
	set -- $drops_before
	expected=""
	dropped=0
	for after in $drops_after; do
		expected="$expected$((per_cpu - (after - $1))) "
		dropped=$((dropped + after - $1))
		shift
	done
	answer=$(sockaff query --pid "$sink" --fd "$sink_fd" --json)
	# "cpu" : N, "numa_node" : M and "packets" : P of each element of "cpus".
	shares=$(echo "$answer" | awk '
		/^  "cpus" : \[/ { inside = 1; next }
		inside && /^  \]/ { inside = 0 }
		inside && /^      "cpu" :/ { gsub(/[^0-9]/, "", $3); cpu = $3 }
		inside && /^      "numa_node" :/ { gsub(/[^0-9]/, "", $3); node = $3 }
		inside && /^      "packets" :/ { gsub(/[^0-9]/, "", $3); print cpu, node, $3 }')
	echo "fan-in shares (cpu node packets): $(echo $shares)"
	exact=0
	cpu=0
	for count in $expected; do
		echo "$shares" | grep -q "^$cpu $((cpu / 2)) $count\$" || exact=1
		cpu=$((cpu + 1))
	done
	check fan-in-every-vcpu-exact "$exact" "each vCPU's count is what it sent less its backlog drops ($expected), on its own node"
	node_sums=$(echo "$shares" | awk '{ sum[$2] += $3 } END { for (n = 0; n < 4; n++) printf "%s ", sum[n] }')
	expected_nodes=$(echo $expected | awk '{ for (n = 0; n < 4; n++) printf "%s ", $(2 * n + 1) + $(2 * n + 2) }')
	[ "$node_sums" = "$expected_nodes" ]
	check fan-in-node-sums "$?" "packets per node: $node_sums (expected $expected_nodes)"
	packets=$(echo "$answer" | field packets)
	other=$(echo "$answer" | field other_cpus_packets)
	[ "$packets" = "$delivered" ] && [ "$delivered" = $((8 * per_cpu - dropped)) ] && [ "$other" = 0 ]
	check fan-in-total-equals-udp-mib "$?" "traced $packets, UDP MIB delivered $delivered, sent $((8 * per_cpu)), dropped before the socket $dropped, unattributed $other"
	kill "$sink" 2>/dev/null
}
# RPS steering, cross-NUMA mismatch and fan-in need the tracer.
[ "$traced" = yes ] && bpf_checks

# The RSS NIC (Tests/vm/guest-rss.sh), with the tracer still attached.
if [ -d /sys/class/net/eth0 ]; then
	. /rss.sh
else
	check rss-nic-present 1 "no eth0: the lab's virtio-net NIC did not appear"
fi

sockaff detach >/dev/null
[ ! -e /sys/fs/bpf/sockaff ]
check detach-leaves-no-pins $? "no /sys/fs/bpf/sockaff after detach"

[ "$(cat /proc/sys/kernel/tainted)" = 0 ]
check kernel-untainted $? "tainted=$(cat /proc/sys/kernel/tainted)"
! dmesg | grep -E 'WARNING|BUG' >/dev/null
check dmesg-clean $? "no WARNING or BUG in dmesg"

echo "SOCKAFF-VM: $passed passed, $failed failed"
poweroff -f
