// SPDX-License-Identifier: GPL-2.0
/*
 * sockaff: records, per receiving socket, the CPU that processed each packet.
 *
 * Attached as cgroup_skb/ingress on the root cgroup v2, so it runs from
 * sk_filter() in the softirq that delivers the packet to the socket, on the
 * CPU that processed it (after RSS/RPS/RFS steering). It only observes:
 * every path returns 1 (pass) and nothing in the skb is written.
 *
 * Cost discipline (BUILD-NOTES, measured here): each non-inlined helper costs
 * 20-40 ns per packet, so the hot path makes exactly one call,
 * bpf_sk_storage_get. bpf_get_smp_processor_id and bpf_jiffies64 are inlined
 * by the verifier. The per-CPU share is only touched when the CPU changes.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sockaff_abi.h"

char LICENSE[] SEC("license") = "GPL";

#ifdef SOCKAFF_RECORDS_ONLY
/*
 * The object built for tracing without reads: records stop before the read
 * counters, which nothing here touches (the verifier holds every access to
 * the map's value size).
 */
struct sockaff_record_without_reads {
	__u8 bytes[SOCKAFF_RECORD_SIZE_WITHOUT_READS];
};
_Static_assert(sizeof(struct sockaff_record_without_reads) ==
		       __builtin_offsetof(struct sockaff_record, reads_and_cpu),
	       "the read counters end the record");
#define SOCKAFF_RECORD_VALUE struct sockaff_record_without_reads
#else
#define SOCKAFF_RECORD_VALUE struct sockaff_record
#endif

/* Freed with its socket, so closed sockets never pile up here. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, SOCKAFF_RECORD_VALUE);
} sockaff_records SEC(".maps");

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

#define SOCKAFF_ON_RECORD_START() count(SOCKAFF_COUNT_RECORDS_CREATED)
#include "record_packet.h"

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
		count(SOCKAFF_COUNT_UNTRACKED);
		return 1;
	}

	record_packet(r, skb);
	return 1;
}

struct sock;

#ifndef SOCKAFF_RECORDS_ONLY
/*
 * Runs in recvmsg (sock_recvmsg_nosec), in process context on the CPU of the
 * thread that reads, for every socket family: sockets without a record
 * (never received a traced packet, or not INET) are left alone. A read costs
 * one helper call; array-map lookups are inlined by the verifier. It writes
 * only the record's read counters, a cache line of their own.
 */
SEC("tp_btf/sock_recv_length")
int sockaff_consume(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];
	struct sockaff_record *r;
	__u32 cpu, last;
	__u32 *reader_node, *receiver_node;

	/* MSG_PEEK (2) would count the same data twice. */
	if (ret <= 0 || (flags & 2))
		return 0;
	r = bpf_sk_storage_get(&sockaff_records, sk, 0, 0);
	/* Only cookie and last_cpu of the other groups: the cold line. */
	if (!r || r->cookie == 0)
		return 0;

	cpu = bpf_get_smp_processor_id();
	last = r->last_cpu;
	r->reads_and_cpu =
		((r->reads_and_cpu + 1) & SOCKAFF_READS_COUNT_MASK) |
		((__u64)cpu << SOCKAFF_READS_COUNT_BITS);
	if (cpu == last) {
		r->reads_same_cpu += 1;
		r->reads_same_node += 1;
		return 0;
	}
	reader_node = bpf_map_lookup_elem(&sockaff_cpu_node, &cpu);
	receiver_node = bpf_map_lookup_elem(&sockaff_cpu_node, &last);
	if (reader_node && receiver_node && *reader_node == *receiver_node)
		r->reads_same_node += 1;
	return 0;
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

/*
 * The context of an iterator over a socket-storage map (kernel >= 5.9), as
 * the kernel lays it out: one 8-byte slot per field.
 */
struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};
struct bpf_iter__bpf_sk_storage_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	struct sock *sk;
	void *value;
};

/*
 * Never attached to traffic: `status` (and the benchmark) run it over the
 * pinned sockaff_records map to learn which records exist right now. It
 * writes each live record's cookie (8 bytes), so the reader gets the exact
 * map fill, something no map-info field tells for socket storage.
 */
SEC("iter/bpf_sk_storage_map")
int sockaff_live_records(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct sockaff_record *r = ctx->value;

	if (!ctx->sk || !r)
		return 0;
	bpf_seq_write(ctx->meta->seq, &r->cookie, sizeof(r->cookie));
	return 0;
}
