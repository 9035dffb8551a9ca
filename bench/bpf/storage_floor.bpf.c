// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's memory floor: socket storage holding 8 bytes per socket.
 * What it costs per socket is what any socket-storage tracer pays before
 * its first field: the socket's bpf_local_storage (kmalloc-192) and one
 * element (72-byte header + value: kmalloc-96).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} sockaff_floor SEC(".maps");

SEC("cgroup_skb/ingress")
int sockaff_storage_floor(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u64 *packets;

	if (!sk)
		return 1;
	packets = bpf_sk_storage_get(&sockaff_floor, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (packets)
		*packets += 1;
	return 1;
}
