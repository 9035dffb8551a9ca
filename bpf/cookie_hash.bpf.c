// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's alternative design, never used by sockaff: the same record
 * update (record_packet.h) in a hash map keyed by socket cookie instead of
 * socket storage. It costs less memory per socket (no bpf_local_storage,
 * no cache-line aligned element header) and more per packet (the cookie
 * helper and a hash lookup on every packet); `make bench` measures both, to
 * show what the 200-byte memory target would cost. A real tracer built this
 * way would also need a sock_release program to delete closed sockets'
 * entries, and a fixed capacity that can fill up.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sockaff_abi.h"
#include "record_packet.h"

char LICENSE[] SEC("license") = "GPL";

/* The record without its read counters: what every packet writes. */
struct hash_record {
	__u8 bytes[SOCKAFF_RECORD_SIZE_WITHOUT_READS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 18);
	__type(key, __u64);
	__type(value, struct hash_record);
} sockaff_hash_records SEC(".maps");

/* A zeroed record to insert from (120 bytes would crowd the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hash_record);
} sockaff_hash_zero SEC(".maps");

SEC("cgroup_skb/ingress")
int sockaff_hash(struct __sk_buff *skb)
{
	struct sockaff_record *r;
	struct hash_record *zero;
	__u32 index = 0;
	__u64 cookie;

	if (!skb->sk)
		return 1;
	cookie = bpf_get_socket_cookie(skb);
	r = bpf_map_lookup_elem(&sockaff_hash_records, &cookie);
	if (!r) {
		zero = bpf_map_lookup_elem(&sockaff_hash_zero, &index);
		if (!zero)
			return 1;
		bpf_map_update_elem(&sockaff_hash_records, &cookie, zero, BPF_NOEXIST);
		r = bpf_map_lookup_elem(&sockaff_hash_records, &cookie);
		if (!r)
			return 1;
	}
	record_packet(r, skb);
	return 1;
}
