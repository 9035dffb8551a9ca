// SPDX-License-Identifier: GPL-2.0
/*
 * The read side's floor: a tp_btf/sock_recv_length program that does
 * nothing. It runs on every recvmsg of the host, as sockaff_consume does;
 * its cost per run is the hook's plus the bpf_stats timing itself.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sock_recv_length")
int sockaff_empty_read(unsigned long long *ctx)
{
	return 0;
}
