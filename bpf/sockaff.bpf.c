// SPDX-License-Identifier: GPL-2.0
/*
 * sockaff: records, per receiving socket, the CPU that processed each packet.
 *
 * Attached as cgroup_skb/ingress on the root cgroup v2, so it runs from
 * sk_filter() in the softirq that delivers the packet to the socket, on the
 * CPU that processed it (after RSS/RPS/RFS steering). It only observes:
 * every path returns 1 (pass) and nothing in the skb is written.
 *
 * Cost discipline (measured, BENCHMARKS.md): each non-inlined helper costs
 * 20-40 ns per packet, so the hot path makes one call, bpf_sk_storage_get
 * (plus a PERCPU_ARRAY lookup on CPUs other than the socket's owner).
 * bpf_get_smp_processor_id and bpf_jiffies64 are inlined by the verifier.
 *
 * Many-core discipline (sockaff_abi.h): no cache line is written per packet
 * by more than one CPU. The record's per-packet line belongs to the owner
 * CPU; every other CPU counts in its own copy of a pool slot. Counts are
 * exact under any concurrency: atomics only where a field is shared, and
 * shared fields are written at most once per jiffy per CPU.
 *
 * Atomics (cmpxchg, xchg) need -mcpu=v3 and kernel >= 5.12.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sockaff_abi.h"

char LICENSE[] SEC("license") = "GPL";

#include "sockaff_records.bpf.h"

/*
 * The pool of per-CPU shares for sockets received on more than one CPU;
 * max_entries (the pool's slots) is set by the loader from the CPU count,
 * so its memory (slots x possible CPUs x 48 bytes) stays bounded.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockaff_cpu_share);
} sockaff_pool SEC(".maps");

/* Pool slots given back by closed sockets (indexes), reused first; FIFO, so
 * a slot given back is reused last among them. Same max_entries as
 * sockaff_pool. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 1);
	__type(value, __u32);
} sockaff_pool_free SEC(".maps");

/* Slots never used yet start at this index: taken by an atomic bump, so the
 * loader fills nothing at attach. */
__u32 sockaff_pool_next = 0;

/* NUMA node per CPU; max_entries is set to the possible CPUs before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sockaff_cpu_node SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKAFF_COUNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sockaff_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockaff_clock);
} sockaff_clock SEC(".maps");

static __always_inline void count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&sockaff_counts, &counter);

	if (value)
		*value += 1;
}

/* Counts skb in this CPU's own counters of its socket. */
static __always_inline void count_rx(struct sockaff_rx *rx, struct __sk_buff *skb,
				     __u64 now)
{
	rx->packets += 1;
	rx->bytes += skb->len;
	rx->last_jiffies = now;
	rx->rx_queue = skb->queue_mapping;
	rx->napi_id = skb->napi_id;
	rx->ifindex = skb->ifindex;
}

/*
 * latest_cpu is shared by every receiving CPU: each writes it only when it
 * is not already its own and it has not written it in this jiffy (*mark is
 * the CPU's own), so under fan-in the line takes at most one store per CPU
 * per jiffy, and a socket that moves from CPU to CPU is followed exactly.
 */
static __always_inline void note_latest(struct sockaff_record *r, __u32 cpu,
					__u64 now, __u32 *mark)
{
	if (r->latest_cpu == cpu || *mark == (__u32)now)
		return;
	*mark = (__u32)now;
	r->latest_cpu = cpu;
	__sync_fetch_and_add(&r->cpu_changes, 1);
}

/*
 * The socket's pool slot + 1, taken on its first packet off the owner CPU:
 * one given back by a closed socket if there is one, else a never-used one;
 * SOCKAFF_POOL_NONE when every slot is held. Two CPUs may race here: the
 * loser gives its slot back.
 */
static __always_inline __u32 take_slot(struct sockaff_record *r)
{
	__u32 index, old;

	if (bpf_map_pop_elem(&sockaff_pool_free, &index) != 0) {
		/*
		 * The lookup is the bound (no entry past the last slot). The
		 * counter stops once past it, overshooting by at most the CPUs
		 * racing here, so it never wraps back onto slot 0.
		 */
		index = sockaff_pool_next;
		if (bpf_map_lookup_elem(&sockaff_pool, &index))
			index = __sync_fetch_and_add(&sockaff_pool_next, 1);
		if (!bpf_map_lookup_elem(&sockaff_pool, &index)) {
			if (__sync_val_compare_and_swap(&r->pool_slot, 0, SOCKAFF_POOL_NONE) == 0)
				count(SOCKAFF_COUNT_POOL_EXHAUSTED);
			return r->pool_slot;
		}
	}
	old = __sync_val_compare_and_swap(&r->pool_slot, 0, index + 1);
	if (old != 0) {
		bpf_map_push_elem(&sockaff_pool_free, &index, 0);
		return old;
	}
	count(SOCKAFF_COUNT_POOL_TAKEN);
	return index + 1;
}

/* A packet of r's socket processed on a CPU other than its owner. */
static __always_inline void record_elsewhere(struct sockaff_record *r,
					     struct __sk_buff *skb, __u32 cpu,
					     __u64 now)
{
	struct sockaff_cpu_share *share = 0;
	__u32 slot = r->pool_slot;
	__u64 cookie;

	if (slot == 0)
		slot = take_slot(r);
	if (slot != SOCKAFF_POOL_NONE && slot != 0) {
		__u32 index = slot - 1;

		share = bpf_map_lookup_elem(&sockaff_pool, &index);
	}
	if (!share) {
		/* No slot: exact totals, shared (so atomic), split unknown. */
		__sync_fetch_and_add(&r->unpooled_packets, 1);
		__sync_fetch_and_add(&r->unpooled_bytes, skb->len);
		if (r->latest_cpu != cpu)
			r->latest_cpu = cpu;
		return;
	}
	/* The owner stores the cookie right after claiming the record. */
	cookie = r->cookie;
	if (cookie == 0)
		cookie = bpf_get_socket_cookie(skb);
	if (share->cookie != cookie) {
		/* This CPU's first packet of this socket in this slot. */
		share->cookie = cookie;
		share->rx.packets = 0;
		share->rx.bytes = 0;
		share->rx.latest_mark = 0;
	}
	count_rx(&share->rx, skb, now);
	note_latest(r, cpu, now, &share->rx.latest_mark);
}

/*
 * The hash a connected socket's packets carry (skb->hash: the NIC's RSS
 * hash where it gives one), kept so that a prediction can be checked
 * against it. One flow, one hash: the cold line is written only when it
 * changes, not per packet. An unconnected socket (no peer port) receives
 * many flows, whose hashes would write the shared line per packet: never
 * kept for those.
 */
static __always_inline void note_hash(struct sockaff_record *r,
				      struct bpf_sock *sk,
				      struct __sk_buff *skb)
{
	__u32 hash;

	if (sk->dst_port == 0)
		return;
	hash = skb->hash;
	if (r->rx_hash == hash && r->rx_hash_changes != 0)
		return;
	r->rx_hash = hash;
	__sync_fetch_and_add(&r->rx_hash_changes, 1);
}

/* Records skb, a packet of sk, in r. */
static __always_inline void record_packet(struct sockaff_record *r,
					  struct bpf_sock *sk,
					  struct __sk_buff *skb)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 now = bpf_jiffies64();
	__u32 owner = r->owner_cpu;

	note_hash(r, sk, skb);

	if (owner == 0) {
		/* The first packet: whichever CPU claims the record owns it. */
		owner = __sync_val_compare_and_swap(&r->owner_cpu, 0, cpu + 1);
		if (owner == 0) {
			owner = cpu + 1;
			r->cookie = bpf_get_socket_cookie(skb);
			r->first_jiffies = now;
			r->latest_cpu = cpu;
			count(SOCKAFF_COUNT_RECORDS_CREATED);
		}
	}
	if (owner != cpu + 1) {
		record_elsewhere(r, skb, cpu, now);
		return;
	}
	count_rx(&r->owner, skb, now);
	note_latest(r, cpu, now, &r->owner.latest_mark);
}

SEC("cgroup_skb/ingress")
int sockaff_ingress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct sockaff_record *r;

	if (!sk)
		return 1;
	/*
	 * skb->sk goes straight to the helper: it returns NULL itself for
	 * request and timewait sockets, so a bpf_sk_fullsock call first would
	 * only add a helper call per packet (kernel >= 5.10 for this argument).
	 */
	r = bpf_sk_storage_get(&sockaff_records, sk, 0,
			       BPF_SK_STORAGE_GET_F_CREATE);
	if (!r) {
		/*
		 * Two CPUs creating one socket's record at once: the kernel
		 * answers the loser NULL (EEXIST/EAGAIN), and the winner's
		 * record is there now. Only creation takes this second call.
		 */
		r = bpf_sk_storage_get(&sockaff_records, sk, 0, 0);
		if (!r) {
			count(SOCKAFF_COUNT_UNTRACKED);
			return 1;
		}
	}
	record_packet(r, sk, skb);
	return 1;
}

/*
 * Gives a record's pool slot back (at most once: the exchange leaves "none",
 * after which the socket's other CPUs count in the unpooled totals).
 */
static __always_inline void give_slot_back(struct sockaff_record *r)
{
	__u32 slot = __sync_lock_test_and_set(&r->pool_slot, SOCKAFF_POOL_NONE);
	__u32 index;

	if (slot == 0 || slot == SOCKAFF_POOL_NONE)
		return;
	index = slot - 1;
	if (bpf_map_push_elem(&sockaff_pool_free, &index, 0) == 0)
		count(SOCKAFF_COUNT_POOL_RETURNED);
}

/*
 * Runs when a socket is closed (inet_release), for every INET socket on the
 * host: gives the socket's pool slot back. Packets that still arrive (TCP
 * closing states) are counted in the unpooled totals. One helper call per
 * closed socket; sockets without a record return at once.
 */
SEC("cgroup/sock_release")
int sockaff_release(struct bpf_sock *sk)
{
	struct sockaff_record *r = bpf_sk_storage_get(&sockaff_records, sk, 0, 0);

	if (r)
		give_slot_back(r);
	return 1;
}

struct sock;

/*
 * Runs on every TCP state change (sock:inet_sock_set_state): a socket that
 * reaches TCP_CLOSE gives its slot back. Sockets the kernel frees without
 * close() ever running on them (connections still in a listener's accept
 * queue when it closes, or reset there) go through TCP_CLOSE but never
 * through sock_release, and kept their slot until detach: 1,000 of 1,000
 * such connections leaked one each. The state test comes before the
 * storage lookup, so other transitions cost a compare.
 */
SEC("tp_btf/inet_sock_set_state")
int sockaff_closed(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int newstate = (int)ctx[2];
	struct sockaff_record *r;

	if (newstate != 7 /* TCP_CLOSE */)
		return 0;
	r = bpf_sk_storage_get(&sockaff_records, sk, 0, 0);
	if (r)
		give_slot_back(r);
	return 0;
}

#ifndef SOCKAFF_RECORDS_ONLY
/*
 * Counts a read of sk on this CPU as `weight` reads, if sk has a record.
 * Runs in recvmsg (sock_recvmsg_nosec), in process context on the CPU of
 * the thread that reads, for every socket family: sockets without a record
 * (never received a traced packet, or not INET) are left alone. A read costs
 * one helper call; array-map lookups are inlined by the verifier. It writes
 * only the record's read counters, a cache line of their own.
 */
static __always_inline int count_read(struct sock *sk, __u64 weight)
{
	struct sockaff_record *r;
	__u32 cpu, last;
	__u32 *reader_node, *receiver_node;

	r = bpf_sk_storage_get(&sockaff_records, sk, 0, 0);
	/* Only cookie and latest_cpu of the other groups: the cold line. */
	if (!r || r->cookie == 0)
		return 0;

	cpu = bpf_get_smp_processor_id();
	last = r->latest_cpu;
	r->reads_and_cpu =
		((r->reads_and_cpu + weight) & SOCKAFF_READS_COUNT_MASK) |
		((__u64)cpu << SOCKAFF_READS_COUNT_BITS);
	if (cpu == last) {
		r->reads_same_cpu += weight;
		r->reads_same_node += weight;
		return 0;
	}
	reader_node = bpf_map_lookup_elem(&sockaff_cpu_node, &cpu);
	receiver_node = bpf_map_lookup_elem(&sockaff_cpu_node, &last);
	if (reader_node && receiver_node && *reader_node == *receiver_node)
		r->reads_same_node += weight;
	return 0;
}

/* Every read that returned data. MSG_PEEK (2) would count the same data twice. */
SEC("tp_btf/sock_recv_length")
int sockaff_consume(__u64 *ctx)
{
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];

	if (ret <= 0 || (flags & 2))
		return 0;
	return count_read((struct sock *)ctx[0], 1);
}

/*
 * sockaff_sampled's random numbers: a xorshift32 state per CPU. An inlined
 * array lookup and three shifts per read, where bpf_get_prandom_u32 is a
 * helper call that costs about as much as the socket storage lookup it
 * would save (40 ns against an empty program's 60, measured on 6.18).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sockaff_read_random SEC(".maps");

/*
 * `trace --sampled-reads`: one read in SOCKAFF_READ_SAMPLE, chosen at random
 * (a thread that alternates between sockets cannot alias with it, as it
 * could with every Nth read), counted as SOCKAFF_READ_SAMPLE reads. The
 * others cost a random number, not the socket storage lookup that every
 * exact read tracer pays (bench/bpf/empty_read.bpf.c is the floor both are
 * measured against).
 */
SEC("tp_btf/sock_recv_length")
int sockaff_sampled(__u64 *ctx)
{
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];
	__u32 zero = 0, x;
	__u32 *state;

	if (ret <= 0 || (flags & 2))
		return 0;
	state = bpf_map_lookup_elem(&sockaff_read_random, &zero);
	if (!state)
		return 0;
	x = *state;
	if (x == 0)
		x = bpf_get_prandom_u32() | 1; /* this CPU's first read: a seed */
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	/* The top bits: xorshift's best. */
	if (x >> (32 - SOCKAFF_READ_SAMPLE_BITS))
		return 0;
	return count_read((struct sock *)ctx[0], SOCKAFF_READ_SAMPLE);
}
#endif

/*
 * Never attached: the loader runs it through BPF_PROG_TEST_RUN to read
 * jiffies and CLOCK_MONOTONIC together and so measure the kernel's HZ.
 */
SEC("cgroup_skb/ingress")
int sockaff_probe(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct sockaff_clock *clock = bpf_map_lookup_elem(&sockaff_clock, &key);

	if (clock) {
		clock->jiffies = bpf_jiffies64();
		clock->monotonic_ns = bpf_ktime_get_ns();
	}
	return 1;
}
