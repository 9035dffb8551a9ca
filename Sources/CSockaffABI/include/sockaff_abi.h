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
#define SOCKAFF_ABI_VERSION 5

/*
 * Per-CPU share of a socket's packets, bounded: hosts have up to 512 CPUs, so
 * the record keeps a few (cpu, packets) slots plus an "other CPUs" total
 * instead of a counter per CPU. The slots are credited only when the
 * receiving CPU changes (the packets of the run that just ended); the reader
 * adds the current run, packets - run_start_packets, to last_cpu.
 */
#define SOCKAFF_SHARE_SLOTS 4
#define SOCKAFF_NO_CPU 0xffffu /* in a 16-bit slot: Linux allows at most 8192 CPUs */

/*
 * Value of the socket-local-storage map sockaff_records, one per receiving
 * socket. Three groups of fields, each written by one side:
 *
 *   - cold: written on the first packet or when the receiving CPU changes,
 *     by the ingress program; read per packet (last_cpu) and per read
 *     (cookie, last_cpu);
 *   - per packet: written for every packet by the CPU that processes it;
 *   - reads: written by sockaff_consume (tp_btf/sock_recv_length, kernel
 *     >= 6.3) in recvmsg, on the CPU of the thread that reads. Each read
 *     that returns data is compared with last_cpu.
 *
 * Size is a memory decision: socket storage allocates 72 bytes of its own in
 * front of the value (the element header, cache-line aligned) from kmalloc
 * size classes, and each socket also has one bpf_local_storage (kmalloc-192)
 * for all its maps. One 144-byte value is a 216-byte kmalloc-256 object;
 * the read counters in a map of their own took a second element
 * (kmalloc-96) and a second lookup per read. A unit test holds the class.
 * Without read tracing the value stops before the read counters
 * (SOCKAFF_RECORD_SIZE_WITHOUT_READS, below).
 *
 * Layout is a performance decision: the groups must not share cache lines,
 * or each side's stores bounce the other's line (measured: reader counters
 * in the per-packet line took the ingress cost from 1.5x to 2.4-3.1x the
 * empty program). kmalloc-192 and -256 objects are 64-byte aligned, so the
 * value starts 8 bytes into a line: cold is offsets 0-55 (the line that also
 * holds the element's map pointer, read by every lookup), per packet 80-119
 * (the next line), reads 120-143 (the line after). A unit test checks the
 * three lines; keep them when adding fields.
 */
#define SOCKAFF_READS_COUNT_BITS 48
#define SOCKAFF_READS_COUNT_MASK 0xffffffffffffULL /* the low SOCKAFF_READS_COUNT_BITS */
struct sockaff_record {
	/* Cold: written on the first packet or when the receiving CPU changes. */
	__u64 cookie;            /* bpf_get_socket_cookie; non-zero once started */
	__u32 last_cpu;          /* CPU that processed the latest packet */
	__u32 cpu_changes;       /* times last_cpu changed */
	__u64 first_jiffies;     /* bpf_jiffies64() of the first packet */
	__u64 run_start_packets; /* value of packets when the run on last_cpu began */
	__u64 other_packets;     /* finished runs on CPUs that found no free slot */
	__u16 slot_cpu[SOCKAFF_SHARE_SLOTS]; /* SOCKAFF_NO_CPU when unused */
	__u64 slot_packets[SOCKAFF_SHARE_SLOTS];
	/* Per packet, by the receiving CPU only. */
	__u64 packets;           /* packets seen by the ingress program */
	__u64 bytes;             /* skb->len at the socket: network header onwards */
	__u64 last_jiffies;      /* bpf_jiffies64() of the latest packet */
	__u32 rx_queue;          /* skb->queue_mapping: rx queue + 1, 0 if unrecorded */
	__u32 napi_id;           /* skb->napi_id of the latest packet (0: none) */
	__u32 ifindex;           /* skb->ifindex of the latest packet */
	__u32 reserved;
	/* Reads, by the reading CPU only; zero with `trace --no-locality`. */
	__u64 reads_and_cpu;     /* low 48 bits: recvmsg calls that returned data;
				    high 16: CPU of the latest such read */
	__u64 reads_same_cpu;    /* ... on last_cpu itself */
	__u64 reads_same_node;   /* ... on last_cpu's NUMA node (sockaff_cpu_node) */
};

/* Map sockaff_cpu_node: NUMA node of each possible CPU, filled at attach. */

/* Indexes of the per-CPU counter array (map sockaff_counts). */
enum sockaff_counter {
	SOCKAFF_COUNT_RECORDS_CREATED = 0, /* first packet of a socket */
	SOCKAFF_COUNT_UNTRACKED = 1,       /* no record: not a full socket, or no memory */
	SOCKAFF_COUNT_MAX = 2,
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
 * Clock reference (map sockaff_clock, one entry). The program stores jiffies,
 * because bpf_jiffies64() is inlined into one load while every clock helper
 * is a real call (BUILD-NOTES: 35-44 ns per packet). The loader measures HZ
 * and a (jiffies, CLOCK_MONOTONIC ns) pair once at attach time through the
 * sockaff_probe program, so readers can turn jiffies into wall time.
 */
struct sockaff_clock {
	__u64 jiffies;
	__u64 monotonic_ns;
	__u64 hz; /* 0 until the loader has measured it */
};

#endif
