// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's per-packet floor of any per-socket tracer: one socket
 * storage lookup per packet, nothing written. Beside sockaff under fan-in it
 * separates what sockaff's own writes cost from what every reader of the
 * socket pays while the kernel's writes (receive queue, rmem accounting)
 * bounce the socket's cache lines between the receiving CPUs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} sockaff_lookup_floor SEC(".maps");

SEC("cgroup_skb/ingress")
int sockaff_lookup_floor_prog(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (sk)
		bpf_sk_storage_get(&sockaff_lookup_floor, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return 1;
}
