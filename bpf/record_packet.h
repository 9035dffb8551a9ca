// SPDX-License-Identifier: GPL-2.0
/*
 * How one received packet updates a socket's record, wherever the record is
 * kept: included by the receive program (bpf/sockaff.bpf.c, socket storage)
 * and by the benchmark's alternative design (bpf/cookie_hash.bpf.c), so the
 * two differ only in how they find the record.
 *
 * Touches only the cold and per-packet fields (the first
 * SOCKAFF_RECORD_SIZE_WITHOUT_READS bytes). bpf_get_smp_processor_id and
 * bpf_jiffies64 are inlined by the verifier; bpf_get_socket_cookie is called
 * once per socket. The per-CPU share is only touched when the CPU changes.
 */
#ifndef SOCKAFF_RECORD_PACKET_H
#define SOCKAFF_RECORD_PACKET_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "sockaff_abi.h"

/* What the includer does when a socket's record starts (e.g. count it). */
#ifndef SOCKAFF_ON_RECORD_START
#define SOCKAFF_ON_RECORD_START()
#endif

static __always_inline void start_record(struct sockaff_record *r,
					 struct __sk_buff *skb, __u32 cpu,
					 __u64 now)
{
	r->cookie = bpf_get_socket_cookie(skb);
	r->first_jiffies = now;
	r->last_cpu = cpu;
#pragma unroll
	for (int i = 0; i < SOCKAFF_SHARE_SLOTS; i++)
		r->slot_cpu[i] = SOCKAFF_NO_CPU;
	SOCKAFF_ON_RECORD_START();
}

/* Credits the run that just ended on r->last_cpu to its share slot. */
static __always_inline void end_run(struct sockaff_record *r)
{
	__u64 run = r->packets - r->run_start_packets;
	__u32 cpu = r->last_cpu;

#pragma unroll
	for (int i = 0; i < SOCKAFF_SHARE_SLOTS; i++) {
		if (r->slot_cpu[i] == cpu || r->slot_cpu[i] == SOCKAFF_NO_CPU) {
			r->slot_cpu[i] = cpu;
			r->slot_packets[i] += run;
			return;
		}
	}
	r->other_packets += run;
}

/* Records skb in r. */
static __always_inline void record_packet(struct sockaff_record *r,
					  struct __sk_buff *skb)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 now = bpf_jiffies64();

	if (r->packets == 0) {
		start_record(r, skb, cpu, now);
	} else if (r->last_cpu != cpu) {
		end_run(r);
		r->run_start_packets = r->packets;
		r->last_cpu = cpu;
		r->cpu_changes += 1;
	}
	/*
	 * Plain stores, not atomics: two CPUs updating one socket at the same
	 * instant (unconnected UDP fed by several queues) may lose an
	 * increment; the record stays a sound sample and the hot path cheap.
	 */
	r->packets += 1;
	r->bytes += skb->len;
	r->last_jiffies = now;
	r->rx_queue = skb->queue_mapping;
	r->napi_id = skb->napi_id;
	r->ifindex = skb->ifindex;
}

#endif
