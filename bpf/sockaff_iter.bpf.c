// SPDX-License-Identifier: GPL-2.0
/*
 * sockaff's readers: BPF iterators that `status`, `export` and `serve` run
 * over what the tracer (sockaff.bpf.c) records. Never attached to traffic.
 *
 * An object apart from the tracer's, so that a kernel that refuses an
 * iterator program type (seen: EPERM for iter/bpf_sk_storage_map as root;
 * the verifier rejecting bpf_sock_from_file's socket as untrusted) costs
 * only that reader: each program is loaded alone, and the tracer never
 * loads any of them.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sockaff_abi.h"

char LICENSE[] SEC("license") = "GPL";

#include "sockaff_records.bpf.h"

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
 * The live-record iterator's count: one per loaded copy of that program (it
 * is loaded by each reading process, never by the tracer), reset when a new
 * run of the iterator (session) begins.
 */
struct sockaff_live_count {
	__u64 session_id;
	__u64 records;
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sockaff_live_count);
} sockaff_live_count SEC(".maps");

/*
 * Never attached to traffic: `status` (and every scrape) runs it over the
 * pinned sockaff_records map to count the records that exist right now, the
 * exact map fill that no map-info field tells for socket storage. It writes
 * nothing until the walk ends, then the count (8 bytes): a read() of the
 * iterator runs the whole walk in the kernel (up to a million records) only
 * while nothing is written, and each further read() restarts the walk of a
 * storage bucket from its head (the map has a bucket per possible CPU: with
 * 100k records on 2 CPUs, 50k a bucket).
 */
SEC("iter/bpf_sk_storage_map")
int sockaff_live_records(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	__u32 key = 0;
	struct sockaff_live_count *count = bpf_map_lookup_elem(&sockaff_live_count, &key);

	if (!count)
		return 0;
	if (count->session_id != ctx->meta->session_id) {
		count->session_id = ctx->meta->session_id;
		count->records = 0;
	}
	if (!ctx->value) {
		/* The end of the walk: the kernel's last call has no element. */
		bpf_seq_write(ctx->meta->seq, &count->records, sizeof(count->records));
		return 0;
	}
	/*
	 * An element with no socket is a record whose socket is being freed
	 * meanwhile (its storage lost its owner before the element left the
	 * map): not live, and not the end either. Taking it for the end wrote
	 * the count twice under socket churn.
	 */
	if (ctx->sk)
		count->records += 1;
	return 0;
}

/*
 * The context of an iterator over every process's open files (kernel >= 5.8):
 * pointers in 8-byte slots, as the kernel lays it out.
 */
struct task_struct;
struct file;
struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
};

/* <sys/socket.h>'s, which a BPF object does not include. */
#define AF_INET 2
#define AF_INET6 10

/*
 * Just the kernel fields read below, relocated by libbpf against the running
 * kernel's BTF (CO-RE): the "___sockaff" flavour names the kernel's own
 * struct without redefining it.
 */
struct task_struct___sockaff {
	int tgid;
} __attribute__((preserve_access_index));
struct socket___sockaff {
	struct sock *sk;
} __attribute__((preserve_access_index));
struct sock_common___sockaff {
	unsigned short skc_family;
} __attribute__((preserve_access_index));
struct sock___sockaff {
	struct sock_common___sockaff __sk_common;
	unsigned short sk_type;
	unsigned short sk_protocol;
} __attribute__((preserve_access_index));

/*
 * Never attached to traffic: `serve` and `export` run it once per scrape to
 * learn every traced socket's holder (process, fd) and record in one pass in
 * the kernel, instead of opening each socket of each process from userspace
 * (about ten syscalls a socket). Reads only; writes nothing but its output.
 */
SEC("iter/task_file")
int sockaff_held_sockets(struct bpf_iter__task_file *ctx)
{
	struct task_struct___sockaff *task = (struct task_struct___sockaff *)ctx->task;
	struct sockaff_held_socket held = {};
	struct socket___sockaff *sock;
	struct sock___sockaff *sk;
	struct file *file = ctx->file;
	/* Its read counters exist only when SOCKAFF_RECORDS_ONLY is not set. */
	struct sockaff_record *record;

	if (!task || !file)
		return 0;
	sock = (struct socket___sockaff *)bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = (struct sock___sockaff *)sock->sk;
	if (!sk)
		return 0;
	/*
	 * Records exist only for IP sockets (cgroup_skb ingress runs for no
	 * other): a host's many unix sockets are passed over from the family, on
	 * the socket's first cache line, without the storage lookup's miss on
	 * another.
	 */
	held.family = sk->__sk_common.skc_family;
	if (held.family != AF_INET && held.family != AF_INET6)
		return 0;
	record = bpf_sk_storage_get(&sockaff_records, sk, 0, 0);
	if (!record || !record->cookie)
		return 0;
	/* Direct loads of the kernel's own (BTF-typed) pointers, at CO-RE offsets. */
	held.tgid = task->tgid;
	held.fd = ctx->fd;
	held.type = sk->sk_type;
	held.protocol = sk->sk_protocol;
	held.cookie = record->cookie;
	held.owner_cpu = record->owner_cpu;
	held.pool_slot = record->pool_slot;
	held.latest_cpu = record->latest_cpu;
	held.owner_rx_queue = record->owner.rx_queue;
	held.owner_packets = record->owner.packets;
	held.unpooled_packets = record->unpooled_packets;
	held.owner_ifindex = record->owner.ifindex;
	held.rx_hash = record->rx_hash;
#ifndef SOCKAFF_RECORDS_ONLY
	held.reads = record->reads_and_cpu;
	held.reads_same_node = record->reads_same_node;
#endif
	bpf_seq_write(ctx->meta->seq, &held, sizeof(held));
	return 0;
}
