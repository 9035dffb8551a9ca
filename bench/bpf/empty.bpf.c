// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's floor: a cgroup_skb/ingress program that does nothing.
 * Its per-packet cost is the cost of running any program at that hook,
 * plus the bpf_stats timing itself.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup_skb/ingress")
int sockaff_empty(struct __sk_buff *skb)
{
	return 1;
}
