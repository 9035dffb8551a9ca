# Sourced by the VM lab's /init (Tests/vm/guest-init.sh) when the guest has
# the lab's 4-queue virtio-net NIC with RSS (Tests/vm/run.sh): sockaff's
# prediction before any data, and its observed RX queue, NAPI id, IRQ and
# CPU, against the kernel's ground truth: the queue whose counter grew
# (`ethtool -S`), the queue interrupt whose count grew and on which CPU
# (/proc/interrupts), and SO_INCOMING_NAPI_ID / SO_INCOMING_CPU read by the
# receiving socket. Then the table, an IRQ's affinity and RPS are changed,
# and prediction and traffic must follow. Uses check and field from /init.
# The host passes the key and the local ports (chosen so the flows cover
# every queue) as SOCKAFF_RSS_KEY, SOCKAFF_RSS_UDP and SOCKAFF_RSS_TCP.

# Queue Q's received packets from `ethtool -S` (rx_queue_Q_packets); from
# 6.10 virtio-net reports them only as netdev qstats, and the count of the
# queue's interrupt, on every CPU, stands in (it grows with each poll).
rx_packets() {
	packets=$(ethtool -S eth0 | sed -n "s/^ *rx_queue_$1_packets: //p")
	if [ -n "$packets" ]; then
		echo "$packets"
	else
		awk -v name="virtio0-input.$1" '$NF == name { for (i = 2; i <= NF - 3; i++) sum += $i; print sum }' /proc/interrupts
	fi
}
# Whether the queue counters are packets (else interrupts: one or more).
counts_packets() { ethtool -S eth0 | grep -q "rx_queue_0_packets"; }
# The count of interrupt line NAME on CPU (0-based), from /proc/interrupts.
irq_count() { awk -v name="$1" -v cpu="$2" '$NF == name { print $(cpu + 2) }' /proc/interrupts; }
irq_of_queue() { awk -v name="virtio0-input.$1" '$NF == name { sub(":", "", $1); print $1 }' /proc/interrupts; }
# Top-level keys of compact JSON (for nested objects: `tr -d ' \n'` and grep).
compact() { tr -d ' \n'; }

flows_send() { # flows_send FLOW COUNT: the flow's receipt line "got FLOW BYTES NAPI CPU"
	before=$(grep -c "^got $1 " /tmp/flows.out)
	echo "send $1 $2" >&4
	tries=0
	while [ "$(grep -c "^got $1 " /tmp/flows.out)" = "$before" ] && [ $tries -lt 200 ]; do
		sleep 0.05
		tries=$((tries + 1))
	done
	grep "^got $1 " /tmp/flows.out | tail -n 1
}

# One flow: predicted before its data, then COUNT packets, then the truth.
# Sets ok (0/1) and detail.
observe_flow() { # observe_flow FLOW FD COUNT PREDICTED_QUEUE PREDICTED_CPU
	queue=$4
	cpu=$5
	irq_name="virtio0-input.$queue"
	counters_before=""
	for q in 0 1 2 3; do counters_before="$counters_before $(rx_packets $q)"; done
	irq_before=$(irq_count "$irq_name" "$cpu")
	[ -n "$rx_trace" ] && : >"$rx_trace/trace"
	receipt=$(flows_send "$1" "$3")
	# The hashes the driver handed the kernel with this flow's packets
	# (net:napi_gro_receive_entry): one flow, so one hash.
	kernel_hashes=$([ -n "$rx_trace" ] && grep -o 'hash=0x[0-9a-f]* l4_hash=[01]' "$rx_trace/trace" | sort -u | tr '\n' ' ')
	counters_after=""
	for q in 0 1 2 3; do counters_after="$counters_after $(rx_packets $q)"; done
	irq_after=$(irq_count "$irq_name" "$cpu")
	# The queues whose counters grew: only the flow's, by at least the
	# datagrams sent (TCP packs the bytes into fewer segments).
	grown=""
	enough=1
	set -- $counters_before
	q=0
	for after in $counters_after; do
		if [ $((after - $1)) -gt 0 ]; then
			grown="$grown$q"
			[ "$kind" = tcp ] || ! counts_packets || [ $((after - $1)) -ge "$count" ] || enough=0
		fi
		shift
		q=$((q + 1))
	done
	answer=$(sockaff query --pid "$flows_pid" --fd "$fd" --json)
	seen_queue=$(echo "$answer" | field rx_queue)
	seen_napi=$(echo "$answer" | field napi_id)
	seen_irq=$(echo "$answer" | field irq)
	seen_cpu=$(echo "$answer" | field cpu)
	kernel_napi=$(echo "$receipt" | cut -d' ' -f4)
	kernel_cpu=$(echo "$receipt" | cut -d' ' -f5)
	ok=1
	[ "$grown" = "$queue" ] && [ "$enough" = 1 ] && [ "$seen_queue" = "$queue" ] && [ "$seen_cpu" = "$cpu" ] &&
		[ "$seen_irq" = "$(irq_of_queue "$queue")" ] && [ "$seen_napi" = "$kernel_napi" ] &&
		[ "$kernel_cpu" = "$cpu" ] && [ $((irq_after - irq_before)) -gt 0 ] && ok=0
	detail="predicted rx-$queue cpu $cpu; queue counters grew: rx-$grown; $irq_name on cpu $cpu +$((irq_after - irq_before)); traced rx-$seen_queue irq $seen_irq cpu $seen_cpu napi $seen_napi; kernel napi $kernel_napi cpu $kernel_cpu; receipt '$receipt'"
}

# The flow's hash check (from $hash_check, an answer's compact
# "hash_check" object) against the kernel's trace of its packets
# ($kernel_hashes): the hash sockaff kept is the one the driver handed
# over, from the NIC, and it is the Toeplitz hash sockaff predicts.
hash_verified() { # hash_verified KIND PORT
	observed=$(echo "$hash_check" | sed -n 's/.*"observed_hash":\([0-9]*\).*/\1/p')
	observed_hex=$([ -n "$observed" ] && printf '0x%08x' "$observed")
	[ "$kernel_hashes" = "hash=$observed_hex l4_hash=1 " ] && echo "$hash_check" | grep -q '"verdict":"verified"' &&
		echo "$hash_check" | grep -q '"from_nic":true' && echo "$hash_check" | grep -q "\"predicted_hash\":$observed,"
	check "rss-hash-verified-$1-$2" $? "kernel: $kernel_hashes; sockaff: $hash_check"
}

predict() { # predict FD: sets p_queue p_irq p_cpu p_json
	p_json=$(sockaff query --pid "$flows_pid" --fd "$1" --predict --json)
	p_queue=$(echo "$p_json" | field rx_queue)
	p_irq=$(echo "$p_json" | field irq)
	p_cpu=$(echo "$p_json" | field cpu)
}

start_flows() {
	mkfifo /tmp/flows.in
	sockaff-bench rss-flows --local 10.77.0.2 --peer 10.77.0.1 --udp-port 7000 --tcp-port 7001 \
		--udp "$SOCKAFF_RSS_UDP" --tcp "$SOCKAFF_RSS_TCP" </tmp/flows.in >/tmp/flows.out 2>&1 &
	exec 4>/tmp/flows.in
	tries=0
	while ! grep -q '^ready' /tmp/flows.out && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
	flows_pid=$(sed -n 's/^ready //p' /tmp/flows.out)
	check rss-flows-ready "$([ -n "$flows_pid" ]; echo $?)" "$(grep -c '^flow' /tmp/flows.out) flows from pid $flows_pid"
}

# Before 5.17 virtio-net has no RSS: the device (qemu's tap) picks each
# flow's queue. sockaff must say RSS is off and that it cannot predict, and
# (without the tracer, before 5.12) answer each flow from the kernel's own
# SO_INCOMING_CPU and SO_INCOMING_NAPI_ID.
no_rss_checks() {
	! ethtool -X eth0 hkey "$SOCKAFF_RSS_KEY" equal 4 2>/dev/null
	check rss-unsupported-by-driver $? "ethtool -X refused on $(uname -r)"
	status=$(sockaff status --json | compact)
	echo "$status" | grep -q '"interface":"eth0",' && echo "$status" | grep -q '"queues":4,"rss":false'
	check rss-status-says-off $? "status: $(echo "$status" | grep -o '"interfaces":.*' | cut -c1-300)"
	start_flows
	set -- $(grep '^flow' /tmp/flows.out | head -n 1)
	sockaff query --pid "$flows_pid" --fd "$4" --predict 2>/tmp/predict.err
	predicted=$?
	[ "$predicted" = 15 ] && grep -q "eth0 has no RSS to predict from" /tmp/predict.err
	check rss-predict-says-why-not $? "exit $predicted: $(cat /tmp/predict.err)"
	# Warm-up: a queue's first interrupts may land before its affinity holds.
	grep '^flow' /tmp/flows.out | while read -r _ index _; do flows_send "$index" 4 >/dev/null; done
	all=0
	answers=""
	while read -r _ index kind fd port; do
		receipt=$(flows_send "$index" 8)
		answer=$(sockaff query --pid "$flows_pid" --fd "$fd" --json)
		# The socket's own values just before the query and, asked again
		# without new traffic ("send I 0"), just after it.
		after=$(flows_send "$index" 0)
		cpu=$(echo "$answer" | field cpu)
		napi=$(echo "$answer" | field napi_id)
		source=$(echo "$answer" | field source)
		expected_source=$([ "$traced" = yes ] && echo bpf || echo kernel)
		matches=1
		for truth in "$receipt" "$after"; do
			[ "$cpu" = "$(echo "$truth" | cut -d' ' -f5)" ] && [ "$napi" = "$(echo "$truth" | cut -d' ' -f4)" ] && matches=0
		done
		[ "$matches" = 0 ] && [ "$source" = "$expected_source" ] || all=1
		answers="$answers $port:cpu$cpu/napi$napi/$source(kernel:$(echo "$receipt" | cut -d' ' -f5)/$(echo "$receipt" | cut -d' ' -f4))"
	done <<-FLOWS
		$(grep '^flow' /tmp/flows.out)
	FLOWS
	check rss-observed-without-rss "$all" "each flow's cpu and napi id as the socket's SO_INCOMING_CPU/NAPI_ID:$answers"
	# No RSS reported, so nothing to check a hash against: said.
	hash_check=$(echo "$answer" | compact | grep -o '"hash_check":{[^}]*}')
	echo "$hash_check" | grep -q '"verdict":"unverifiable"' &&
		echo "$hash_check" | grep -Eq 'eth0reportsnoRSS|thekernelkeepsasocket.shash'
	check rss-hash-unverifiable-without-rss $? "$hash_check"
	echo quit >&4
	exec 4>&-
}

# Pins every thread of the flows' process (each by its tid) to MASK (hex, as taskset takes it).
pin_flows() { for task in /proc/"$flows_pid"/task/*; do taskset -p "$1" "${task##*/}" >/dev/null; done; }

# The pid of the kernel thread named NAME.
thread_pid() { for dir in /proc/[0-9]*; do [ "$(cat "$dir/comm" 2>/dev/null)" = "$1" ] && echo "${dir#/proc/}"; done; }

# Threaded NAPI (5.12): each queue is polled by a kernel thread, pinned here
# to a CPU on the next node from its queue's IRQ's. The packets are
# processed where the thread runs (every receiving socket's SO_INCOMING_CPU
# says so), the path names the thread and the prediction predicts its CPU
# (its NAPI: the one netdev queue-get names for the queue, else the one the
# socket's SO_INCOMING_NAPI_ID names).
threaded_napi_checks() {
	# A queue's IRQ moved back by an earlier check takes its effective
	# affinity with its next interrupt: traffic on every flow first.
	while read -r index _; do flows_send "$index" 2 >/dev/null; done </tmp/predictions
	echo 1 >/sys/class/net/eth0/threaded && sockaff status --json | compact | grep -q '"threaded_napi":true'
	check rss-threaded-napi-on $? "threaded=$(cat /sys/class/net/eth0/threaded); status: $(sockaff status | grep '^interface eth0')"
	sort -u /tmp/queue-napi >/tmp/queue-napi.sorted
	pinned=""
	while read -r queue napi; do
		irq=$(irq_of_queue "$queue")
		irq_cpu=$(cat /proc/irq/"$irq"/effective_affinity_list)
		target=$(((irq_cpu + 2) % 8))
		pid=$(thread_pid "napi/eth0-$napi")
		[ -n "$pid" ] && taskset -p "$(printf '%x' $((1 << target)))" "$pid" >/dev/null
		echo "$queue $napi $pid $target $irq_cpu" >>/tmp/threads
		pinned="$pinned rx-$queue:napi/eth0-$napi(pid $pid) irq cpu $irq_cpu -> cpu $target"
	done </tmp/queue-napi.sorted
	check rss-napi-threads-pinned "$([ "$(wc -l </tmp/threads)" = 4 ] && ! grep -q '^[0-9]* [0-9]*  ' /tmp/threads; echo $?)" "$pinned"
	while read -r index kind fd port queue _; do
		set -- $(grep "^$queue " /tmp/threads)
		napi=$2 pid=$3 target=$4 irq_cpu=$5
		flows_send "$index" 4 >/dev/null # the thread moves to its CPU on its next wake-up
		predicted=$(sockaff query --pid "$flows_pid" --fd "$fd" --predict --json 2>/tmp/predict.err)
		predicted_status=$?
		receipt=$(flows_send "$index" 16)
		kernel_cpu=$(echo "$receipt" | cut -d' ' -f5)
		raw=$(sockaff query --pid "$flows_pid" --fd "$fd" --json)
		path=$(echo "$raw" | compact | grep -o '"path":{.*}')
		[ "$kernel_cpu" = "$target" ] && [ "$(echo "$raw" | field cpu)" = "$target" ] &&
			echo "$path" | grep -q "\"napi_thread\":{\"allowed_cpus\":\[$target\],[^}]*\"pid\":$pid," &&
			echo "$path" | grep -q '"moved_off_irq_cpu_cause":"napi_thread"'
		check "rss-threaded-napi-path-$kind-$port" $? "thread pid $pid pinned to cpu $target (irq cpu $irq_cpu): kernel cpu $kernel_cpu; path $(echo "$path" | cut -c1-500)"
		[ "$predicted_status" = 0 ] && [ "$(echo "$predicted" | field cpu)" = "$target" ] &&
			echo "$predicted" | compact | grep -q "threadedNAPI:napi/eth0-$napi"
		check "rss-threaded-napi-predicted-$kind-$port" $? "exit $predicted_status, cpu $(echo "$predicted" | field cpu), expected $target; $(echo "$predicted" | grep '"note"'; cat /tmp/predict.err)"
	done </tmp/predictions
	advise_napi_checks
	echo 0 >/sys/class/net/eth0/threaded
}

# sockaff advise under threaded NAPI: the threads free to run anywhere, the
# flows' readers pinned to node 2 (CPUs 4 and 5). Each queue's thread is
# pinned to a CPU of node 2 (taskset), and nothing else changes (the IRQs
# only wake the threads). After --apply each thread's affinity is the one
# advised and each flow's SO_INCOMING_CPU the CPU its effect predicted;
# --undo gives each thread back the CPUs it had.
advise_napi_checks() {
	while read -r queue napi pid _; do taskset -p ff "$pid" >/dev/null; done </tmp/threads
	pin_flows 30
	while read -r index _; do flows_send "$index" 4 >/dev/null; done </tmp/predictions
	advice=$(sockaff advise --json | compact)
	kinds=$(echo "$advice" | grep -o '"what":"[a-z_]*"' | sort | uniq -c | tr -s ' ' | tr '\n' ';')
	afters=$(echo "$advice" | grep -o '"after":"[0-9]*","before":"0-7","command":"taskset' | sed 's/"after":"\([0-9]*\)".*/\1/' | sort | tr '\n' ' ')
	effects=$(echo "$advice" | grep -o '"after_cpus":\[[0-9]*\],"after_nodes":\[[0-9,]*\],"after_rx_queue":null,"before_cpus":\[[0-9,]*\],"before_nodes":\[[0-9,]*\],"command":"[^"]*","fd":[0-9]*')
	[ "$kinds" = " 4 \"what\":\"napi_thread_affinity\";" ] && [ "$(echo "$afters" | tr -d '45 ')" = "" ] &&
		[ "$(echo "$effects" | grep -c '"after_nodes":\[2\]')" = "$(wc -l </tmp/predictions)" ]
	check rss-advise-pins-napi-threads $? "changes:$kinds threads to cpus $afters; $(echo "$effects" | grep -c '"after_nodes":\[2\]') of $(wc -l </tmp/predictions) flows to node 2: $(echo "$advice" | cut -c1-400)"
	echo "SOCKAFF-SHOW sockaff advise (threaded NAPI)"
	sockaff advise
	echo "SOCKAFF-SHOW end"
	sockaff advise --apply --measure 1 >/tmp/napi.apply 2>&1
	apply_status=$?
	agree=0
	detail=""
	while read -r queue napi pid _; do
		allowed=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/"$pid"/status)
		case "$allowed" in 4 | 5) ;; *) agree=1 ;; esac
		detail="$detail napi/eth0-$napi on $allowed;"
	done </tmp/threads
	while read -r index kind fd port _; do
		predicted=$(echo "$effects" | grep "\"fd\":$fd\$" | head -n 1 | sed 's/^"after_cpus":\[\([0-9]*\)\].*/\1/')
		flows_send "$index" 4 >/dev/null # a thread moves to its CPU when it next wakes
		kernel_cpu=$(flows_send "$index" 8 | cut -d' ' -f5)
		[ -n "$predicted" ] && [ "$kernel_cpu" = "$predicted" ] || agree=1
		detail="$detail $kind/$port: predicted $predicted, kernel $kernel_cpu;"
	done </tmp/predictions
	[ "$apply_status" = 0 ]
	check rss-advise-napi-applied-as-predicted "$([ "$apply_status" = 0 ] && [ "$agree" = 0 ]; echo $?)" "exit $apply_status $(head -n 1 /tmp/napi.apply):$detail"
	sockaff advise --undo >/tmp/napi.undo 2>&1
	undo_status=$?
	restored=0
	while read -r queue napi pid _; do
		[ "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/"$pid"/status)" = "0-7" ] || restored=1
	done </tmp/threads
	check rss-advise-napi-undo-restores "$([ "$undo_status" = 0 ] && [ "$restored" = 0 ]; echo $?)" "exit $undo_status: $(tr '\n' ' ' </tmp/napi.undo)"
	pin_flows ff
}

# RFS: with a flow table on every queue and the flows' process pinned to
# one CPU, each flow is processed on its reader's CPU after its first
# reads: the path says RFS moved it, and the prediction names that CPU.
rfs_checks() {
	reader_cpu=7
	pin_flows "$(printf '%x' $((1 << reader_cpu)))"
	echo 4096 >/proc/sys/net/core/rps_sock_flow_entries
	for q in 0 1 2 3; do echo 256 >/sys/class/net/eth0/queues/rx-$q/rps_flow_cnt; done
	while read -r index kind fd port queue _ irq_cpu; do
		[ "$irq_cpu" = "$reader_cpu" ] && continue
		flows_send "$index" 4 >/dev/null # RFS learns the reader's CPU from its reads
		predicted=$(sockaff query --pid "$flows_pid" --fd "$fd" --predict --json 2>/tmp/predict.err)
		receipt=$(flows_send "$index" 16)
		kernel_cpu=$(echo "$receipt" | cut -d' ' -f5)
		answer=$(sockaff query --pid "$flows_pid" --fd "$fd" --json | compact)
		path=$(echo "$answer" | grep -o '"path":{.*}')
		[ "$kernel_cpu" = "$reader_cpu" ] && echo "$path" | grep -q '"moved_off_irq_cpu_cause":"rfs"' &&
			[ "$(echo "$predicted" | field cpu)" = "$reader_cpu" ] && echo "$predicted" | compact | grep -q 'RFSonrx-'
		check "rss-rfs-$kind-$port" $? "reader pinned to cpu $reader_cpu, irq cpu $irq_cpu: kernel cpu $kernel_cpu; predicted cpu $(echo "$predicted" | field cpu) $(cat /tmp/predict.err); path $(echo "$path" | cut -c1-400)"
	done </tmp/predictions
	for q in 0 1 2 3; do echo 0 >/sys/class/net/eth0/queues/rx-$q/rps_flow_cnt; done
	echo 0 >/proc/sys/net/core/rps_sock_flow_entries
	pin_flows ff
}

# Busy polling: a UDP flow's owner sets SO_BUSY_POLL, its reader pinned to
# a CPU of another node than the flow's IRQ. The packets are processed by
# the reader while it polls (or by the IRQ's CPU when it did not): the path
# names busy polling, gives the cause of a move, and the prediction exits
# 15 naming it, since the share each CPU takes cannot be predicted.
busy_poll_checks() {
	set -- $(awk '$2 == "udp" { print; exit }' /tmp/predictions)
	index=$1 fd=$3 port=$4 irq_cpu=$7
	reader_cpu=$(((irq_cpu + 4) % 8))
	pin_flows "$(printf '%x' $((1 << reader_cpu)))"
	echo "busy-poll $index 200" >&4
	tries=0
	while ! grep -q "^busy-poll $index " /tmp/flows.out && [ $tries -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done
	set_result=$(grep "^busy-poll $index " /tmp/flows.out | tail -n 1)
	sockaff query --pid "$flows_pid" --fd "$fd" --predict >/dev/null 2>/tmp/predict.err
	predicted_status=$?
	receipt=$(flows_send "$index" 16)
	kernel_cpu=$(echo "$receipt" | cut -d' ' -f5)
	raw=$(sockaff query --pid "$flows_pid" --fd "$fd" --json)
	path=$(echo "$raw" | compact | grep -o '"path":{.*}')
	echo "$path" | grep -q '"busy_polling":{[^}]*"socket_us":200}' && [ "$(echo "$raw" | field cpu)" = "$kernel_cpu" ] &&
		{ { [ "$kernel_cpu" = "$reader_cpu" ] && echo "$path" | grep -q '"moved_off_irq_cpu_cause":"busy_poll"'; } ||
			{ [ "$kernel_cpu" = "$irq_cpu" ] && echo "$path" | grep -q '"moved_off_irq_cpu":false'; }; }
	check "rss-busy-poll-in-path-udp-$port" $? "$set_result; reader on cpu $reader_cpu, irq cpu $irq_cpu: kernel cpu $kernel_cpu; path $(echo "$path" | cut -c1-400)"
	[ "$predicted_status" = 15 ] && grep -q "busy polling (SO_BUSY_POLL 200 us)" /tmp/predict.err
	check "rss-busy-poll-not-predictable-udp-$port" $? "exit $predicted_status: $(cat /tmp/predict.err)"
	echo "busy-poll $index 0" >&4
	pin_flows ff
}

# sockaff check on a host made bad on purpose: RPS on an RSS queue, a table
# that leaves two queues out. Each finding is there with the evidence the
# kernel's own files give (rps_cpus, the IRQ's CPU, ethtool -X), exit 21;
# once undone, those findings are gone.
check_checks() {
	irq=$(irq_of_queue 1)
	irq_cpu=$(cat /proc/irq/"$irq"/effective_affinity_list)
	echo 20 >/sys/class/net/eth0/queues/rx-1/rps_cpus # CPU 5
	ethtool -X eth0 weight 1 1 0 0
	report=$(sockaff check --json)
	status=$?
	report_compact=$(echo "$report" | compact)
	[ "$status" = 21 ] &&
		echo "$report_compact" | grep -q "\"evidence\":\[\"rx-1:rpscpus5,irqoncpus$irq_cpu\"\],\"id\":\"rps_on_rss_nic\"" &&
		echo "$report_compact" | grep -q '"evidence":\["128entriesoverqueues0,1;unused:rx-2,rx-3"\],"id":"table_leaves_queues_out"'
	check rss-check-finds-a-bad-layout $? "exit $status: $(echo "$report_compact" | grep -o '"id":"[a-z_]*"' | tr '\n' ' ')"
	echo 0 >/sys/class/net/eth0/queues/rx-1/rps_cpus
	ethtool -X eth0 equal 4
	report_compact=$(sockaff check --json | compact)
	! echo "$report_compact" | grep -Eq '"id":"(rps_on_rss_nic|table_leaves_queues_out|rps_inconsistent)"'
	check rss-check-clean-once-undone $? "$(echo "$report_compact" | grep -o '"id":"[a-z_]*"' | tr '\n' ' ')"
	echo "SOCKAFF-SHOW sockaff check"
	sockaff check
}

# Every queue's IRQ affinity and RPS mask, as the kernel prints them.
layout() {
	for q in 0 1 2 3; do
		printf ' rx-%s irq %s rps %s;' "$q" "$(cat /proc/irq/"$(irq_of_queue "$q")"/smp_affinity_list)" "$(cat /sys/class/net/eth0/queues/rx-"$q"/rps_cpus)"
	done
}

# sockaff advise on a host made bad on purpose: every queue's IRQ on CPU 0
# and RPS on CPU 1 (node 0), the flows' readers pinned to node 2 (CPUs 4
# and 5): every flow received on node 0, read on node 2. advise predicts,
# per flow, the CPU that --apply then makes the kernel use (SO_INCOMING_CPU);
# --apply's own before and after (the tracer's counts) go from all to none
# cross-NUMA; --undo puts back every value exactly as the kernel printed it.
advise_checks() {
	: >/tmp/advise.saved
	for q in 0 1 2 3; do
		irq=$(irq_of_queue "$q")
		echo "$irq $(cat /proc/irq/"$irq"/smp_affinity_list) $(cat /sys/class/net/eth0/queues/rx-"$q"/rps_cpus)" >>/tmp/advise.saved
		echo 0 >/proc/irq/"$irq"/smp_affinity_list
		echo 2 >/sys/class/net/eth0/queues/rx-"$q"/rps_cpus
	done
	pin_flows 30
	# Traffic on every flow: the IRQs' next interrupts land on CPU 0, and
	# each flow's packets are counted where RPS put them.
	while read -r index _; do flows_send "$index" 8 >/dev/null; done </tmp/predictions
	flows=$(wc -l </tmp/predictions)
	advice=$(sockaff advise --json)
	advice_status=$?
	advice=$(echo "$advice" | compact)
	rps_changes=$(echo "$advice" | grep -o '"what":"rps_cpus"' | wc -l)
	irq_changes=$(echo "$advice" | grep -o '"what":"irq_affinity"' | wc -l)
	effects=$(echo "$advice" | grep -o '"after_cpus":\[[0-9,]*\],"after_nodes":\[[0-9,]*\],"after_rx_queue":null,"before_cpus":\[[0-9,]*\],"before_nodes":\[[0-9,]*\],"command":"[^"]*","fd":[0-9]*')
	[ "$advice_status" = 0 ] && [ "$rps_changes" = 4 ] && [ "$irq_changes" = 4 ] &&
		[ "$(echo "$effects" | grep -c '"after_nodes":\[2\],"after_rx_queue":null,"before_cpus":\[1\],"before_nodes":\[0\]')" = $((2 * flows)) ] &&
		[ "$(echo "$effects" | wc -l)" = $((2 * flows)) ]
	check rss-advise-moves-every-flow-to-its-readers $? "exit $advice_status: $rps_changes rps and $irq_changes irq changes, $(echo "$effects" | grep -c '"after_nodes":\[2\]') of $((2 * flows)) effects from cpu 1 (node 0) to node 2: $(echo "$advice" | cut -c1-600)"
	echo "SOCKAFF-SHOW sockaff advise"
	sockaff advise
	echo "SOCKAFF-SHOW end"

	# Traffic through both measured windows and the change between them.
	before_apply=$(layout)
	(
		rounds=0
		while [ $rounds -lt 45 ]; do
			while read -r index _; do echo "send $index 2" >&4; done </tmp/predictions
			sleep 0.2
			rounds=$((rounds + 1))
		done
	) &
	sender=$!
	applied=$(sockaff advise --apply --measure 2 --json 2>/tmp/apply.err)
	apply_status=$?
	wait "$sender"
	applied=$(echo "$applied" | compact | grep -o '"applied":{.*')
	measured=$(echo "$applied" | grep -o '"after":{"cross_numa_share":[0-9.e-]*,"packets":[0-9]*,"read_node":[0-9]*' | wc -l)
	local_after=$(echo "$applied" | grep -o '"after":{"cross_numa_share":0,"packets":[1-9][0-9]*,"read_node":2' | wc -l)
	remote_before=$(echo "$applied" | grep -o '"before":{"cross_numa_share":1,"packets":[1-9][0-9]*,"read_node":2' | wc -l)
	[ "$apply_status" = 0 ] && [ "$measured" = "$flows" ] && [ "$local_after" = "$flows" ] && [ "$remote_before" = "$flows" ] &&
		[ -f /run/sockaff/advise-undo.json ]
	check rss-advise-apply-measures-cross-numa-gone $? "exit $apply_status $(cat /tmp/apply.err): of $flows flows, $remote_before all cross-NUMA before, $local_after none after ($measured measured): $(echo "$applied" | cut -c1-700)"

	# The kernel's own answer: each flow's SO_INCOMING_CPU is the CPU advise
	# predicted for it, on the readers' node, and RPS is off.
	agree=0
	detail=""
	while read -r index kind fd port queue _; do
		predicted=$(echo "$effects" | grep "\"fd\":$fd\$" | head -n 1 | sed 's/^"after_cpus":\[\([0-9]*\)\].*/\1/')
		kernel_cpu=$(flows_send "$index" 4 | cut -d' ' -f5)
		rps=$(cat /sys/class/net/eth0/queues/rx-"$queue"/rps_cpus)
		[ -n "$predicted" ] && [ "$kernel_cpu" = "$predicted" ] && [ $((kernel_cpu / 2)) = 2 ] &&
			[ "$(echo "$rps" | tr -d '0,')" = "" ] || agree=1
		detail="$detail $kind/$port rx-$queue: predicted cpu $predicted, kernel $kernel_cpu;"
	done </tmp/predictions
	check rss-advise-prediction-is-the-kernels-cpu "$agree" "$detail"

	sockaff advise --undo >/tmp/undo.out 2>&1
	undo_status=$?
	undone=$(layout)
	[ "$undo_status" = 0 ] && [ ! -f /run/sockaff/advise-undo.json ] && [ "$undone" = "$before_apply" ]
	check rss-advise-undo-restores-exactly $? "exit $undo_status: $(head -n 1 /tmp/undo.out); before --apply:$before_apply; after --undo:$undone"
	sockaff advise --undo 2>/tmp/undo.err
	undo_again=$?
	[ "$undo_again" = 23 ] && grep -q "no undo file" /tmp/undo.err
	check rss-advise-undo-twice-says-so $? "exit $undo_again: $(cat /tmp/undo.err)"

	# The host as it was before this check.
	while read -r irq affinity rps; do echo "$affinity" >/proc/irq/"$irq"/smp_affinity_list; done </tmp/advise.saved
	for q in 0 1 2 3; do echo 0 >/sys/class/net/eth0/queues/rx-$q/rps_cpus; done
	pin_flows ff
}

# sockaff advise on a table that leaves rx-2 and rx-3 out (ethtool -X
# weight 1 1 0 0): one rss_table change (`ethtool -X eth0 equal 4`), each
# traced flow whose bucket moves named with its new queue and CPU. After
# --apply, `ethtool -x` prints the even table the lab had before, and each
# flow's SO_INCOMING_CPU is the CPU its effect predicted (or, with no
# effect, the one it had); --undo puts the weighted table back, bucket by
# bucket as ethtool prints it.
advise_table_checks() {
	equal_rows=$(ethtool -x eth0 | grep '^ *[0-9]*:' | compact)
	# Traffic on every queue first: an IRQ whose affinity was just written
	# back moves at its next interrupt (x86 MSI), and this settles them.
	while read -r index _; do flows_send "$index" 2 >/dev/null; done </tmp/predictions
	ethtool -X eth0 weight 1 1 0 0
	weighted_rows=$(ethtool -x eth0 | grep '^ *[0-9]*:' | compact)
	: >/tmp/table.before
	while read -r index kind fd port _; do
		echo "$fd $(flows_send "$index" 4 | cut -d' ' -f5)" >>/tmp/table.before
	done </tmp/predictions
	advice=$(sockaff advise --json | compact)
	kinds=$(echo "$advice" | grep -o '"what":"[a-z_]*"' | tr '\n' ' ')
	effects=$(echo "$advice" | grep -o '"after_cpus":\[[0-9]*\],"after_nodes":\[[0-9,]*\],"after_rx_queue":[0-9]*,"before_cpus":\[[0-9,]*\],"before_nodes":\[[0-9,]*\],"command":"[^"]*","fd":[0-9]*')
	moved=$(echo "$effects" | grep -c fd)
	[ "$kinds" = '"what":"rss_table" ' ] && echo "$advice" | grep -q '"command":"ethtool-Xeth0equal4"' && [ "$moved" -gt 0 ]
	check rss-advise-table-spreads-every-queue $? "changes: $kinds; $moved flows moved: $(echo "$advice" | cut -c1-500)"
	echo "SOCKAFF-SHOW sockaff advise (a table leaving rx-2 and rx-3 out)"
	sockaff advise
	echo "SOCKAFF-SHOW end"

	sockaff advise --apply --measure 1 >/tmp/table.apply 2>&1
	apply_status=$?
	applied_rows=$(ethtool -x eth0 | grep '^ *[0-9]*:' | compact)
	[ "$apply_status" = 0 ] && [ "$applied_rows" = "$equal_rows" ]
	check rss-advise-table-applied $? "exit $apply_status: $(head -n 2 /tmp/table.apply | tr '\n' ' '); ethtool -x now$([ "$applied_rows" = "$equal_rows" ] || echo " not") the even table"

	agree=0
	detail=""
	while read -r index kind fd port _; do
		effect=$(echo "$effects" | grep "\"fd\":$fd\$" | head -n 1)
		predicted=$(echo "$effect" | sed -n 's/^"after_cpus":\[\([0-9]*\)\].*/\1/p')
		[ -n "$predicted" ] || predicted=$(awk -v fd="$fd" '$1 == fd { print $2 }' /tmp/table.before)
		kernel_cpu=$(flows_send "$index" 4 | cut -d' ' -f5)
		[ "$kernel_cpu" = "$predicted" ] || agree=1
		detail="$detail $kind/$port: predicted cpu $predicted$([ -n "$effect" ] && echo " (moved)"), kernel $kernel_cpu;"
	done </tmp/predictions
	check rss-advise-table-prediction-is-the-kernels-cpu "$agree" "$detail"

	sockaff advise --undo >/tmp/table.undo 2>&1
	undo_status=$?
	undone_rows=$(ethtool -x eth0 | grep '^ *[0-9]*:' | compact)
	[ "$undo_status" = 0 ] && [ "$undone_rows" = "$weighted_rows" ] && grep -q "weight 1 1" /tmp/table.undo
	check rss-advise-table-undo-restores-exactly $? "exit $undo_status: $(cat /tmp/table.undo | tr '\n' ' ')"
	ethtool -X eth0 equal 4
}

rss_checks() {
	$IP link set eth0 up
	$IP addr add 10.77.0.2/24 dev eth0
	# The host's side, known without ARP (Tests/vm/run.sh fixes both MACs).
	$IP neigh add 10.77.0.1 lladdr 02:00:0a:4d:00:01 dev eth0 nud permanent
	if [ "$kver" -lt 517 ]; then
		no_rss_checks
		return
	fi
	ethtool -X eth0 hfunc toeplitz hkey "$SOCKAFF_RSS_KEY" equal 4
	check rss-configured $? "ethtool -X eth0 hkey (Microsoft's key) equal 4: $(ethtool -x eth0 | grep -c '^ *[0-9]*:') table rows"
	# The tracer attached before this key was set: status says the key changed since.
	changes=$(sockaff status --json | compact | grep -o '"steering_changes":\[[^]]*\]')
	echo "$changes" | grep -q '"interface":"eth0","what":"rss_key"}'
	check rss-drift-key-since-attach $? "$changes"
	status=$(sockaff status --json | compact)
	# Keys are sorted in sockaff's JSON. Each queue's IRQ and its CPU as the
	# kernel says right now (x86 delivers to one CPU of the mask). Before 6.8
	# there is no netdev queue-get/napi-get: the IRQ names decide (sysfs).
	source_pattern=$([ "$kver" -lt 608 ] && echo sysfs || echo '[a-z]*')
	truth=""
	queues_ok=0
	for q in 0 1 2 3; do
		irq=$(irq_of_queue "$q")
		cpu=$(cat /proc/irq/"$irq"/effective_affinity_list)
		truth="$truth rx-$q:irq $irq cpu $cpu"
		echo "$status" | grep -q "\"cpus\":\[$cpu\],\"irq\":$irq,\"irq_name\":\"virtio0-input.$q\",\"irq_source\":\"$source_pattern\",\"nodes\":\[$((cpu / 2))\],\"queue\":$q" ||
			queues_ok=1
	done
	# ethtool's netlink RSS_GET from 6.3, the ioctl before.
	rss_source=$([ "$kver" -lt 603 ] && echo ioctl || echo netlink)
	echo "$status" | grep -q "\"hash_function\":\"toeplitz\",\"input_transform\":\"none\",\"interface\":\"eth0\",\"key_bytes\":40,\"ntuple_rules\":0,\"queues\":4,\"rss\":true,\"rss_source\":\"$rss_source\"" &&
		echo "$status" | grep -q '"table_size":128' && [ "$queues_ok" = 0 ]
	check rss-status-interface $? "kernel:$truth; status: $(echo "$status" | grep -o '"interfaces":.*' | cut -c1-500)"

	# The kernel's own record of each packet the NIC's driver delivers:
	# net:napi_gro_receive_entry shows the hash it handed over, and whether
	# it covered the ports (l4_hash).
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
	rx_trace=/sys/kernel/tracing/instances/sockaff-lab
	mkdir -p "$rx_trace" &&
		echo 'name == "eth0"' >"$rx_trace/events/net/napi_gro_receive_entry/filter" &&
		echo 1 >"$rx_trace/events/net/napi_gro_receive_entry/enable"
	check rss-kernel-packet-trace $? "tracefs instance with net:napi_gro_receive_entry on eth0"
	# virtio-net offers the NIC's hash (qemu's hash=on, VIRTIO_NET_F_HASH_REPORT)
	# as receive-hashing, off until asked for.
	ethtool -K eth0 rxhash on && ethtool -k eth0 | grep -q '^receive-hashing: on' &&
		sockaff status --json | compact | grep -q '"rxhash":true'
	check rss-receive-hashing-on $? "$(ethtool -k eth0 | grep '^receive-hashing'); status: $(sockaff status --json | compact | grep -o '"rxhash":[a-z]*')"

	start_flows

	# Predictions first, before any data: no flow has received anything yet
	# (the TCP handshake's SYN-ACK aside).
	: >/tmp/predictions
	while read -r _ index kind fd port; do
		predict "$fd"
		echo "$index $kind $fd $port $p_queue $p_irq $p_cpu" >>/tmp/predictions
	done <<-FLOWS
		$(grep '^flow' /tmp/flows.out)
	FLOWS
	# libsockaff on a flow that received nothing: the Windows call's answer
	# for a new socket is RSS's, and RSS is on for its interface.
	set -- $(head -n 1 /tmp/predictions)
	echo "capi $1" >&4
	tries=0
	while ! grep -q "^capi $1 " /tmp/flows.out && [ $tries -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done
	capi=$(grep "^capi $1 " /tmp/flows.out)
	[ "$capi" = "capi $1 0 0 $7 $(($7 / 2)) 1" ]
	check rss-capi-answers-from-prediction $? "sockaff_query_rss_processor_info before any data: '$capi' (status group number node rss_enabled); predicted cpu $7"
	queues_covered=$(cut -d' ' -f5 /tmp/predictions | sort -u | tr -d '\n')
	[ "$queues_covered" = 0123 ]
	check rss-predictions-cover-queues $? "predicted queues $queues_covered over $(wc -l </tmp/predictions) flows (the host chose ports for every queue)"

	# Warm-up: each queue's first interrupt may arrive before its affinity
	# takes effect.
	while read -r index _; do flows_send "$index" 4 >/dev/null; done </tmp/predictions

	count=32
	while read -r index kind fd port queue irq cpu; do
		observe_flow "$index" "$fd" "$count" "$queue" "$cpu"
		check "rss-$kind-flow-$port" "$ok" "$detail"
		hash_check=$(echo "$answer" | compact | grep -o '"hash_check":{[^}]*}')
		hash_verified "$kind" "$port"
		echo "$queue $kernel_napi" >>/tmp/queue-napi
	done </tmp/predictions

	# The census (--source kernel: the kernel's own fields, no tracer
	# needed): each flow's CPU and NAPI as its socket's own SO_INCOMING_CPU
	# and SO_INCOMING_NAPI_ID say, the CPU's node, and the RX queue whose
	# counter grew, named through the NAPI where the kernel links queues to
	# NAPIs (netdev queue-get, 6.8+, and a driver that does); else none.
	census=$(sockaff list --source kernel --pid "$flows_pid" --json 2>/tmp/census.err)
	census_ok=0
	census_detail=""
	while read -r index kind fd port queue irq cpu; do
		truth=$(flows_send "$index" 0)
		row=$(echo "$census" | grep "\"fd\":$fd,")
		row_cpu=$(echo "$row" | grep -o '"cpu":[0-9-]*' | head -n 1 | cut -d: -f2)
		row_node=$(echo "$row" | grep -o '"numa_node":[0-9a-z-]*' | head -n 1 | cut -d: -f2)
		row_napi=$(echo "$row" | grep -o '"napi_id":[0-9a-z]*' | head -n 1 | cut -d: -f2)
		row_queue=$(echo "$row" | grep -o '"rx_queue":[0-9a-z]*' | head -n 1 | cut -d: -f2)
		row_interface=$(echo "$row" | grep -o '"interface":[^,]*' | head -n 1 | cut -d: -f2 | tr -d '"')
		kernel_cpu=$(echo "$truth" | cut -d' ' -f5)
		[ "$row_cpu" = "$kernel_cpu" ] && [ "$row_node" = "$((kernel_cpu / 2))" ] &&
			[ "$row_napi" = "$(echo "$truth" | cut -d' ' -f4)" ] && echo "$row" | grep -q '"source":"kernel"' &&
			{ [ "$row_queue" = "$queue" ] || [ "$row_queue" = null ]; } || census_ok=1
		census_detail="$census_detail $kind/$port:cpu$row_cpu(kernel $kernel_cpu)/node$row_node/napi$row_napi/$row_interface-rxq$row_queue(grew $queue)"
	done </tmp/predictions
	check rss-census-each-flow "$census_ok" "$census_detail $(cat /tmp/census.err)"
	# Where the census names queues, it names every flow's.
	named=$(echo "$census" | grep -c '"rx_queue":[0-9]')
	echo "$census_detail" | grep -q 'rxqnull' && [ "$named" -gt 0 ] && named_ok=1 || named_ok=0
	check rss-census-queues-all-or-none "$named_ok" "$named rows name a queue:$census_detail"

	# The key changed behind the kept hashes: sockaff now predicts with a
	# key the packets were not hashed with, and says so. New packets carry
	# the new key's hash, and the check is verified again.
	set -- $(head -n 1 /tmp/predictions)
	index=$1 kind=$2 fd=$3 port=$4
	ethtool -X eth0 hkey "$(echo "$SOCKAFF_RSS_KEY" | sed 's/^6d/6e/')"
	hash_check=$(sockaff query --pid "$flows_pid" --fd "$fd" --json | compact | grep -o '"hash_check":{[^}]*}')
	echo "$hash_check" | grep -q '"verdict":"contradicted"' && echo "$hash_check" | grep -q '"from_nic":true' &&
		echo "$hash_check" | grep -q "orchangedafterthepacket"
	check rss-hash-contradicted-after-key-change $? "$hash_check"
	# The prediction (with the new key) says so too: every prediction on the NIC is suspect.
	predicted=$(sockaff query --pid "$flows_pid" --fd "$fd" --predict --json | compact)
	echo "$predicted" | grep -q '"verdict":"contradicted"' && echo "$predicted" | grep -q 'everypredictiononeth0issuspect'
	check rss-prediction-says-the-nic-contradicts-it $? "$(echo "$predicted" | grep -o '"hash_check":{[^}]*}.*"note":"[^"]*"')"
	# status counts them per NIC: every kept hash is the old key's now.
	status_checks=$(sockaff status --json | compact | grep -o '"hash_checks":\[[^]]*\]')
	echo "$status_checks" | grep -q '"interface":"eth0"' &&
		echo "$status_checks" | grep -q "\"contradicted\":$(wc -l </tmp/predictions)[,}]" &&
		echo "$status_checks" | grep -q '"verified":0[,}]' &&
		sockaff status | grep -q '^interface eth0:.*CONTRADICTED (its predictions are suspect)'
	check rss-status-counts-contradicted-flows $? "$status_checks ($(wc -l </tmp/predictions) flows)"
	observe_flow "$index" "$fd" 8 "$(sockaff query --pid "$flows_pid" --fd "$fd" --predict --json | field rx_queue)" 0
	hash_check=$(echo "$answer" | compact | grep -o '"hash_check":{[^}]*}')
	hash_verified "$kind" "$port-new-key"
	ethtool -X eth0 hkey "$SOCKAFF_RSS_KEY"
	flows_send "$index" 4 >/dev/null # the old key's hash again

	# The metrics count each NIC's flows by verdict: every flow verified.
	flows=$(wc -l </tmp/predictions)
	sockaff export >/tmp/export.hash
	grep -q "^sockaff_rss_hash_checks{interface=\"eth0\",verdict=\"verified\"} $flows" /tmp/export.hash &&
		! grep -q '^sockaff_rss_hash_checks{interface="eth0",verdict="contradicted"}' /tmp/export.hash
	check rss-metrics-count-hash-verdicts $? "$(grep '^sockaff_rss_hash_checks' /tmp/export.hash | tr '\n' ' ') ($flows flows)"
	status_checks=$(sockaff status --json | compact | grep -o '"hash_checks":\[[^]]*\]')
	echo "$status_checks" | grep -q "\"verified\":$flows[,}]" && echo "$status_checks" | grep -q '"contradicted":0[,}]' &&
		sockaff status | grep -q "^interface eth0:.*hash checks $flows verified" && ! sockaff status | grep -q CONTRADICTED
	check rss-status-counts-verified-flows $? "$status_checks ($flows flows)"


	# The metrics' per-queue view: each queue's IRQ and CPU as /proc/irq
	# says, and the flows whose latest packet came from each queue (3 each).
	metrics=$(sockaff export)
	metrics_ok=0
	for q in 0 1 2 3; do
		irq=$(irq_of_queue "$q")
		cpu=$(cat /proc/irq/"$irq"/effective_affinity_list)
		echo "$metrics" | grep -q "^sockaff_rx_queue_irq_cpu{interface=\"eth0\",queue=\"$q\",irq=\"$irq\",cpu=\"$cpu\",node=\"$((cpu / 2))\"} 1" ||
			metrics_ok=1
		sockets=$(awk -v q="$q" '$5 == q' /tmp/predictions | wc -l)
		echo "$metrics" | grep -q "^sockaff_rx_queue_sockets{interface=\"eth0\",queue=\"$q\",irq=\"$irq\"} $sockets" ||
			metrics_ok=1
	done
	echo "$metrics" | grep -q '^sockaff_interface_rss_enabled{interface="eth0"} 1' || metrics_ok=1
	check rss-metrics-per-queue "$metrics_ok" "$(echo "$metrics" | grep -E '^sockaff_(rx_queue|interface_rss)' | tr '\n' ' ' | cut -c1-700)"

	# A new table: queues 1 and 3 only. A flow that was on 0 or 2 must move,
	# in the prediction and in the traffic.
	moved=$(awk '$5 == 0 || $5 == 2 { print; exit }' /tmp/predictions)
	set -- $moved
	index=$1 kind=$2 fd=$3 old_queue=$5
	ethtool -X eth0 weight 0 1 0 1
	predict "$fd"
	[ "$p_queue" = 1 ] || [ "$p_queue" = 3 ]
	check rss-table-change-predicted $? "flow $index: rx-$old_queue before, predicted rx-$p_queue after 'weight 0 1 0 1'"
	observe_flow "$index" "$fd" "$count" "$p_queue" "$p_cpu"
	check rss-table-change-traffic-follows "$ok" "$detail"
	ethtool -X eth0 equal 4

	# Move one queue's interrupt to another node's CPU: the path and the
	# receiving CPU follow it.
	set -- $(awk '$5 == 0 { print; exit }' /tmp/predictions)
	index=$1 kind=$2 fd=$3 queue=$5 irq=$6
	echo 6 >/proc/irq/"$irq"/smp_affinity_list
	flows_send "$index" 4 >/dev/null # the first interrupt may still land on the old CPU
	predict "$fd"
	observe_flow "$index" "$fd" "$count" "$queue" 6
	path=$(echo "$answer" | compact | grep -o '"path":{.*}')
	[ "$ok" = 0 ] && [ "$p_cpu" = 6 ] && echo "$path" | grep -q '"irq":{"cpus":\[6\],"name":"virtio0-input.0","nodes":\[3\]'
	check rss-irq-affinity-moves-path $? "irq $irq to cpu 6: predicted cpu $p_cpu; $detail; path $(echo "$path" | cut -c1-240)"
	echo 0 >/proc/irq/"$irq"/smp_affinity_list

	# RPS on one queue: packets are processed on the RPS CPU, not the IRQ's.
	set -- $(awk '$5 == 1 { print; exit }' /tmp/predictions)
	index=$1 kind=$2 fd=$3 queue=$5 irq=$6 irq_cpu=$7
	echo 20 >/sys/class/net/eth0/queues/rx-"$queue"/rps_cpus # CPU 5
	predict "$fd"
	flows_send "$index" "$count" >/dev/null
	answer=$(sockaff query --pid "$flows_pid" --fd "$fd" --json)
	seen_cpu=$(echo "$answer" | field cpu)
	path=$(echo "$answer" | compact | grep -o '"path":{.*}')
	[ "$seen_cpu" = 5 ] && echo "$path" | grep -q '"moved_off_irq_cpu":true' &&
		echo "$path" | grep -q '"rps_cpus":\[5\]' && echo "$p_json" | compact | grep -q '"candidate_cpus":\[5\]'
	check rss-rps-shows-in-path $? "rps_cpus 5 on rx-$queue (irq on cpu $irq_cpu): received on cpu $seen_cpu; predicted candidates $(echo "$p_json" | compact | grep -o '"candidate_cpus":\[[0-9,]*\]'); path $(echo "$path" | cut -c1-300)"
	echo 0 >/sys/class/net/eth0/queues/rx-"$queue"/rps_cpus

	threaded_napi_checks
	rfs_checks
	busy_poll_checks
	check_checks
	advise_checks
	advise_table_checks

	# ethtool -L: the channel count changes under the traced flows (the
	# table first: the kernel refuses fewer channels than a table set by
	# hand uses), and status and the metrics say so; then it is put back.
	ethtool -X eth0 equal 2 && ethtool -L eth0 combined 2 &&
		changes=$(sockaff status --json | compact | grep -o '"steering_changes":\[[^]]*\]') &&
		echo "$changes" | grep -q '{"after":"2","before":"4","interface":"eth0","what":"rx_queues"}' &&
		echo "$changes" | grep -q '"interface":"eth0","what":"rss_table"}' &&
		sockaff export | grep -q '^sockaff_steering_changes{interface="eth0",what="rx_queues"} 1'
	check rss-drift-channels $? "ethtool -L eth0 combined 2: $changes"
	echo "SOCKAFF-SHOW sockaff status (steering)"
	sockaff status | sed -n '/^steering/,$p'
	ethtool -L eth0 combined 4 && ethtool -X eth0 equal 4

	# Receive-hashing off: the packets carry no hash, and there is nothing
	# to verify. (virtio-net also sets its RSS hash types to none then, so
	# every flow lands on one queue: last, after every check of the queues.)
	set -- $(head -n 1 /tmp/predictions)
	index=$1 fd=$3
	ethtool -K eth0 rxhash off
	flows_send "$index" 4 >/dev/null
	hash_check=$(sockaff query --pid "$flows_pid" --fd "$fd" --json | compact | grep -o '"hash_check":{[^}]*}')
	echo "$hash_check" | grep -q '"verdict":"unverifiable"' && echo "$hash_check" | grep -q 'receive-hashingoff'
	check rss-hash-unverifiable-without-receive-hashing $? "$hash_check"
	ethtool -K eth0 rxhash on
	flows_send "$index" 4 >/dev/null

	# For the record (the console log): what an operator sees.
	set -- $(awk '$2 == "udp" { print; exit }' /tmp/predictions)
	echo "SOCKAFF-SHOW sockaff status (interfaces)"
	sockaff status | sed -n '/^interface/,$p'
	echo "SOCKAFF-SHOW sockaff query --pid $flows_pid --fd $3 --predict"
	sockaff query --pid "$flows_pid" --fd "$3" --predict
	echo "SOCKAFF-SHOW sockaff query --pid $flows_pid --fd $3"
	sockaff query --pid "$flows_pid" --fd "$3"
	echo "SOCKAFF-SHOW sockaff list --pid $flows_pid"
	sockaff list --pid "$flows_pid"
	echo "SOCKAFF-SHOW end"
	echo 0 >"$rx_trace/events/net/napi_gro_receive_entry/enable" && rmdir "$rx_trace"

	echo quit >&4
	exec 4>&-
}

rss_checks
