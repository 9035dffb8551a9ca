/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The records map, as the tracer (sockaff.bpf.c) and the readers'
 * iterators (sockaff_iter.bpf.c) both declare it: the readers' copy is
 * never created, it reuses the pinned map (bpf_map__reuse_fd), and libbpf
 * checks that the two definitions agree.
 */
#ifndef SOCKAFF_RECORDS_BPF_H
#define SOCKAFF_RECORDS_BPF_H

#ifdef SOCKAFF_RECORDS_ONLY
/*
 * The object built for tracing without reads: records stop before the read
 * counters, which nothing here touches (the verifier holds every access to
 * the map's value size).
 */
struct sockaff_record_without_reads {
	__u8 bytes[SOCKAFF_RECORD_SIZE_WITHOUT_READS];
};
_Static_assert(sizeof(struct sockaff_record_without_reads) ==
		       __builtin_offsetof(struct sockaff_record, reads_and_cpu),
	       "the read counters end the record");
#define SOCKAFF_RECORD_VALUE struct sockaff_record_without_reads
#else
#define SOCKAFF_RECORD_VALUE struct sockaff_record
#endif

/* Freed with its socket, so closed sockets never pile up here. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, SOCKAFF_RECORD_VALUE);
} sockaff_records SEC(".maps");

#endif
