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
#include <bpf/bpf_core_read.h>
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

/*
 * The census: every TCP and UDP socket's latest receive as the kernel keeps
 * it (sk_incoming_cpu, sk_napi_id, sk_rxhash), with no program on the packet
 * path and no record. One pass per protocol and network namespace (the
 * iterators walk the namespace their iterator was made in), where reading
 * each socket from userspace takes a pidfd_getfd and about eight syscalls.
 */
struct sock_common;
struct udp_sock;
struct socket;
struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	__u32 uid __attribute__((aligned(8)));
};
struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
	__u32 uid __attribute__((aligned(8)));
	int bucket __attribute__((aligned(8)));
};

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7

struct in6_addr___sockaff {
	__u8 s6_addr[16];
} __attribute__((preserve_access_index));
struct sock_common___census {
	__u32 skc_daddr;
	__u32 skc_rcv_saddr;
	__u16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	int skc_incoming_cpu;
	__u32 skc_rxhash;
	struct in6_addr___sockaff skc_v6_daddr;
	struct in6_addr___sockaff skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));
struct inode___sockaff {
	unsigned long i_ino;
} __attribute__((preserve_access_index));
struct socket_alloc___sockaff {
	struct inode___sockaff vfs_inode;
} __attribute__((preserve_access_index));
struct sock___census {
	struct sock_common___census __sk_common;
	unsigned int sk_napi_id;
	__u32 sk_rxhash;
	unsigned int sk_ll_usec;
	__u8 sk_prefer_busy_poll;
	struct socket *sk_socket;
} __attribute__((preserve_access_index));

/*
 * One socket's row. `sk` is a full socket (tcp_sock or udp_sock, which
 * begin with struct sock); fields a kernel lacks (no busy polling built in,
 * before 5.11's prefer flag) read as 0.
 */
static __always_inline void census_write(struct seq_file *seq, struct sock___census *sk, __u8 protocol)
{
	struct sockaff_census_socket row = {};
	struct socket *socket;
	unsigned char state;

	row.family = sk->__sk_common.skc_family;
	if (row.family != AF_INET && row.family != AF_INET6)
		return;
	row.protocol = protocol;
	state = sk->__sk_common.skc_state;
	row.state = state;
	row.cookie = bpf_get_socket_cookie(sk);
	row.incoming_cpu = sk->__sk_common.skc_incoming_cpu;
	if (bpf_core_field_exists(sk->sk_napi_id))
		row.napi_id = sk->sk_napi_id;
	/* In struct sock_common since 6.18 (skc_rxhash), in struct sock before. */
	if (bpf_core_field_exists(sk->__sk_common.skc_rxhash))
		row.rx_hash = sk->__sk_common.skc_rxhash;
	else if (bpf_core_field_exists(sk->sk_rxhash))
		row.rx_hash = sk->sk_rxhash;
	if (bpf_core_field_exists(sk->sk_ll_usec))
		row.busy_poll_usec = sk->sk_ll_usec;
	if (bpf_core_field_exists(sk->sk_prefer_busy_poll))
		row.prefer_busy_poll = sk->sk_prefer_busy_poll;
	row.local_port = sk->__sk_common.skc_num;
	/* getpeername's rule: a peer port, and not closed or still connecting. */
	if (sk->__sk_common.skc_dport && state != TCP_CLOSE && state != TCP_SYN_SENT)
		row.remote_port = __builtin_bswap16(sk->__sk_common.skc_dport);
	if (row.family == AF_INET) {
		__u32 local = sk->__sk_common.skc_rcv_saddr, remote = sk->__sk_common.skc_daddr;

		__builtin_memcpy(row.local_address, &local, 4);
		if (row.remote_port)
			__builtin_memcpy(row.remote_address, &remote, 4);
	} else {
		bpf_probe_read_kernel(row.local_address, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		if (row.remote_port)
			bpf_probe_read_kernel(row.remote_address, 16, &sk->__sk_common.skc_v6_daddr);
	}
	/*
	 * The inode that /proc/P/fd names ("socket:[N]"): the struct socket
	 * is the first half of a socket_alloc, its inode the second, beyond
	 * what the verifier lets a typed load of struct socket reach.
	 */
	socket = sk->sk_socket;
	if (socket)
		bpf_probe_read_kernel(&row.inode, sizeof(row.inode),
				      &((struct socket_alloc___sockaff *)socket)->vfs_inode.i_ino);
	bpf_seq_write(seq, &row, sizeof(row));
}

SEC("iter/tcp")
int sockaff_tcp_sockets(struct bpf_iter__tcp *ctx)
{
	/*
	 * The walk also yields request and time-wait sockets, which no
	 * process holds and which keep no receive CPU of their own: only a
	 * full socket converts.
	 */
	struct sock___census *sk;

	/* The verifier takes the helper's argument only once it is not NULL. */
	if (!ctx->sk_common)
		return 0;
	sk = (struct sock___census *)bpf_skc_to_tcp_sock(ctx->sk_common);
	if (sk)
		census_write(ctx->meta->seq, sk, IPPROTO_TCP);
	return 0;
}

SEC("iter/udp")
int sockaff_udp_sockets(struct bpf_iter__udp *ctx)
{
	struct sock___census *sk = (struct sock___census *)ctx->udp_sk;

	if (sk)
		census_write(ctx->meta->seq, sk, IPPROTO_UDP);
	return 0;
}
