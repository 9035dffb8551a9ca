/*
 * The layout of sockaff's BPF maps: the one definition, included by the BPF
 * program (bpf/sockaff.bpf.c) and imported by Swift (module CSockaffABI).
 * Plain __u32/__u64 fields only, so both compilers agree on every offset;
 * Swift checks value_size against MemoryLayout at load time.
 */
#ifndef SOCKAFF_ABI_H
#define SOCKAFF_ABI_H

#include <linux/types.h>

/* Bumped whenever a map value changes shape. */
#define SOCKAFF_ABI_VERSION 7

/*
 * How one socket's packets are counted when many CPUs receive it (RSS
 * spreading an unconnected UDP socket or a listener over every queue):
 *
 *   - the record (socket storage) counts the packets of one CPU only, its
 *     owner: the CPU that received the socket's first packet;
 *   - every other CPU counts in its own copy of a pool slot (a PERCPU_ARRAY
 *     entry, struct sockaff_cpu_share), taken the first time a second CPU
 *     receives the socket (a slot given back earlier, else a never-used
 *     one) and given back by the sock_release program when the socket is
 *     closed.
 *
 * So no cache line is written per packet by more than one CPU, and every
 * packet is counted exactly once, on the CPU that processed it. When the
 * pool is empty, the socket's other CPUs add into shared atomic totals
 * (unpooled_*): still exact, but without their split, and said so.
 */
#define SOCKAFF_POOL_NONE 0xffffffffu /* pool_slot: no slot (pool was empty, or socket released) */

/*
 * Value of the socket-local-storage map sockaff_records, one per receiving
 * socket. Three groups of fields, each on a cache line of its own:
 *
 *   - cold: written when the record starts, at most once per jiffy per
 *     receiving CPU when the latest CPU changes, and when a connected
 *     socket's packet hash changes (its first packet, a new RSS key, a TCP
 *     sender re-pathing); read per packet (owner, pool_slot, latest_cpu,
 *     rx_hash) and per read (cookie, latest_cpu);
 *   - per packet: written for every packet the owner CPU processes, by that
 *     CPU only;
 *   - reads: written by sockaff_consume (tp_btf/sock_recv_length, kernel
 *     >= 6.3) in recvmsg, on the CPU of the thread that reads. Each read
 *     that returns data is compared with latest_cpu.
 *
 * Size is a memory decision: socket storage allocates 72 bytes of its own in
 * front of the value (the element header, cache-line aligned) from kmalloc
 * size classes, and each socket also has one bpf_local_storage (kmalloc-192)
 * for all its maps. One 144-byte value is a 216-byte kmalloc-256 object; a
 * unit test holds the class. Without read tracing the value stops before
 * the read counters (SOCKAFF_RECORD_SIZE_WITHOUT_READS, below): kmalloc-192.
 *
 * Layout is a performance decision: the groups must not share cache lines,
 * or each side's stores bounce the other's line (measured: reader counters
 * in the per-packet line took the ingress cost from 1.5x to 2.4-3.1x the
 * empty program). kmalloc-192 and -256 objects are 64-byte aligned, so the
 * value starts 8 bytes into a line: cold is offsets 0-55 (the line that also
 * holds the element's map pointer, read by every lookup), per packet 56-119
 * (the next line), reads 120-143 (the line after). A unit test checks the
 * three lines; keep them when adding fields.
 */
/*
 * What one CPU counts of one socket's packets: the record's owner CPU in the
 * record, every other CPU in its copy of the socket's pool slot. Written
 * only by that CPU.
 */
struct sockaff_rx {
	__u64 packets;           /* packets this CPU processed */
	__u64 bytes;             /* skb->len at the socket: network header onwards */
	__u64 last_jiffies;      /* bpf_jiffies64() of this CPU's latest packet */
	__u32 rx_queue;          /* skb->queue_mapping: rx queue + 1, 0 if unrecorded */
	__u32 napi_id;           /* skb->napi_id of this CPU's latest packet (0: none) */
	__u32 ifindex;           /* skb->ifindex of this CPU's latest packet */
	__u32 latest_mark;       /* low 32 bits of the jiffy in which this CPU last
				    wrote the record's latest_cpu */
};

#define SOCKAFF_READS_COUNT_BITS 48
#define SOCKAFF_READS_COUNT_MASK 0xffffffffffffULL /* the low SOCKAFF_READS_COUNT_BITS */
/*
 * `trace --sampled-reads`: the read program (sockaff_sampled) examines one
 * read in SOCKAFF_READ_SAMPLE, chosen at random, and counts it as that many
 * reads. Not an ABI change: the counters mean the same, estimated.
 */
#define SOCKAFF_READ_SAMPLE_BITS 4
#define SOCKAFF_READ_SAMPLE (1 << SOCKAFF_READ_SAMPLE_BITS)
struct sockaff_record {
	/* Cold: set when the record starts. */
	__u64 cookie;            /* bpf_get_socket_cookie; non-zero once started */
	__u32 owner_cpu;         /* CPU + 1 whose packets the per-packet group counts;
				    0 until the first packet claims it */
	__u32 pool_slot;         /* 0: none yet; slot + 1; SOCKAFF_POOL_NONE */
	__u64 first_jiffies;     /* bpf_jiffies64() of the first packet */
	/* Cold: written rarely, by any receiving CPU. */
	__u32 latest_cpu;        /* CPU of the latest packet; with several CPUs
				    receiving at once, one that received in the
				    latest jiffy (each writes it once a jiffy at most) */
	__u32 cpu_changes;       /* times latest_cpu was changed (atomic) */
	__u64 unpooled_packets;  /* packets on CPUs other than the owner while the
				    socket had no pool slot (atomic) */
	__u64 unpooled_bytes;
	/* Cold: written when the packets' hash changes, connected sockets only
	   (an unconnected socket's packets are many flows: 0 stays). */
	__u32 rx_hash;           /* skb->hash of the latest packet: the NIC's RSS
				    hash where the NIC gives one, else the
				    kernel's own or the sender's (loopback); 0: none */
	__u32 rx_hash_changes;   /* times rx_hash was changed, the first included (atomic) */
	/* Per packet, by the owner CPU only. */
	struct sockaff_rx owner;
	__u64 reserved_packet[3];
	/* Reads, by the reading CPU only; zero with `trace --no-locality`. */
	__u64 reads_and_cpu;     /* low 48 bits: recvmsg calls that returned data;
				    high 16: CPU of the latest such read */
	__u64 reads_same_cpu;    /* ... on latest_cpu itself */
	__u64 reads_same_node;   /* ... on latest_cpu's NUMA node (sockaff_cpu_node) */
};

/*
 * Value of the pool (map sockaff_pool, PERCPU_ARRAY): one CPU's packets of
 * the socket whose record holds this slot. Written only by its own CPU.
 * A slot given back and taken by another socket is reset by each CPU on its
 * first packet of the new socket (cookie differs); readers count only the
 * CPUs whose cookie matches the record's.
 */
struct sockaff_cpu_share {
	__u64 cookie;
	struct sockaff_rx rx;
};

/* Map sockaff_cpu_node: NUMA node of each possible CPU, filled at attach. */

/* Indexes of the per-CPU counter array (map sockaff_counts). */
enum sockaff_counter {
	SOCKAFF_COUNT_RECORDS_CREATED = 0, /* first packet of a socket */
	SOCKAFF_COUNT_UNTRACKED = 1,       /* no record: not a full socket, or no memory */
	SOCKAFF_COUNT_POOL_TAKEN = 2,      /* pool slots taken by sockets */
	SOCKAFF_COUNT_POOL_RETURNED = 3,   /* ... and given back at sock_release */
	SOCKAFF_COUNT_POOL_EXHAUSTED = 4,  /* sockets that found the pool empty */
	SOCKAFF_COUNT_MAX = 5,
};

/*
 * Without read tracing (`trace --no-locality`, or a kernel before 6.3) the
 * records map holds only the first 120 bytes of struct sockaff_record, up to
 * the read counters: a kmalloc-192 element instead of -256. The BPF object
 * is built twice (bpf/sockaff.bpf.c with -DSOCKAFF_RECORDS_ONLY for this
 * one); readers take either size and see zero read counters.
 */
#define SOCKAFF_RECORD_SIZE_WITHOUT_READS 120

/*
 * What the sockaff_held_sockets iterator writes per open file that is a
 * socket with a record: the holding process and fd, what the socket is, and
 * the record's fields that a scrape sums (80 bytes, not the whole record:
 * 100k sockets are 8 MB through the iterator, not 16). Threads that share
 * their process's file table are not listed again, so there is one entry per
 * process and fd, as a walk of /proc/P/fd finds them.
 */
struct sockaff_held_socket {
	__u32 tgid;
	__u32 fd;
	__u16 family;           /* AF_INET, AF_INET6 */
	__u16 type;             /* SOCK_STREAM, SOCK_DGRAM, ... */
	__u16 protocol;         /* IPPROTO_TCP, IPPROTO_UDP, ... */
	__u16 reserved;
	__u64 cookie;
	__u32 owner_cpu;        /* the record's (CPU + 1) */
	__u32 pool_slot;        /* the record's */
	__u32 latest_cpu;       /* the record's */
	__u32 owner_rx_queue;   /* owner.rx_queue: rx queue + 1, 0 if unrecorded */
	__u64 owner_packets;
	__u64 unpooled_packets;
	__u32 owner_ifindex;
	__u32 rx_hash;          /* the record's */
	__u64 reads;            /* reads_and_cpu (0 in records without read counters) */
	__u64 reads_same_node;
};

/*
 * What the census iterators (sockaff_tcp_sockets over iter/tcp,
 * sockaff_udp_sockets over iter/udp) write per full TCP or UDP socket of the
 * network namespace the iterator was made in: the kernel's own fields of its
 * latest receive, the socket's inode (what /proc/P/fd shows, to find its
 * holders) and its addresses as getsockname/getpeername give them. No record
 * and no program on the packet path: 80 bytes a socket.
 */
struct sockaff_census_socket {
	__u64 cookie;           /* bpf_get_socket_cookie: SO_COOKIE's */
	__u64 inode;            /* its sockfs inode; 0: no struct socket (orphaned) */
	__u8 local_address[16]; /* network order; IPv4 in the first 4 bytes */
	__u8 remote_address[16];
	__u16 local_port;       /* host order */
	__u16 remote_port;      /* host order; 0: not connected */
	__u16 family;           /* AF_INET, AF_INET6 */
	__u8 protocol;          /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 state;             /* sk_state (TCP_ESTABLISHED, TCP_CLOSE, ...) */
	__s32 incoming_cpu;     /* sk_incoming_cpu: SO_INCOMING_CPU's, -1 unset */
	__u32 napi_id;          /* sk_napi_id raw: a NAPI id, or (no NAPI) a CPU + 1 */
	__u32 rx_hash;          /* sk_rxhash (0: none kept) */
	__u32 busy_poll_usec;   /* sk_ll_usec: SO_BUSY_POLL's */
	__u8 prefer_busy_poll;  /* sk_prefer_busy_poll (5.11): SO_PREFER_BUSY_POLL's */
	__u8 reserved[7];
};

/*
 * Clock reference (map sockaff_clock, one entry). The program stores jiffies,
 * because bpf_jiffies64() is inlined into one load while every clock helper
 * is a real call (35-44 ns more per packet, measured on the development VM). The loader measures HZ
 * and a (jiffies, CLOCK_MONOTONIC ns) pair once at attach time through the
 * sockaff_probe program, so readers can turn jiffies into wall time.
 */
struct sockaff_clock {
	__u64 jiffies;
	__u64 monotonic_ns;
	__u64 hz; /* 0 until the loader has measured it */
	__u64 abi_version; /* SOCKAFF_ABI_VERSION of the loader: readers refuse others */
};

#endif
