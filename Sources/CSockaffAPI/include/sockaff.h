/*
 * libsockaff: the Windows SIO_QUERY_RSS_PROCESSOR_INFO contract on Linux, for
 * C programs and code ported from Windows. Link with `pkg-config --libs sockaff`.
 *
 * One call, on the caller's own socket: which processor (Windows-style group
 * and number) and NUMA node process the packets it receives. It reads the
 * pinned maps of a running `sockaff trace` when the caller may (root), and
 * otherwise, or when nothing was traced for the socket, answers with the
 * kernel's SO_INCOMING_CPU.
 */
#ifndef SOCKAFF_H
#define SOCKAFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Laid out like Windows' SOCKET_PROCESSOR_AFFINITY (8 bytes). */
typedef struct sockaff_processor_affinity {
	uint16_t group;        /* PROCESSOR_NUMBER.Group */
	uint8_t number;        /* PROCESSOR_NUMBER.Number: position within the group */
	uint8_t reserved;      /* PROCESSOR_NUMBER.Reserved: 0 */
	uint16_t numa_node_id; /* NumaNodeId */
	uint16_t reserved2;    /* Reserved: 0 */
} sockaff_processor_affinity;

/*
 * Fills *out (out_len bytes) for socket fd and returns 0; on failure returns
 * -1 with errno:
 *   EINVAL     out is NULL or out_len is too small (WSAEINVAL /
 *              ERROR_INSUFFICIENT_BUFFER); *returned holds the size needed
 *   ENOTSOCK   fd is not a socket (WSAENOTSOCK)
 *   EOPNOTSUPP not TCP or UDP over IPv4/IPv6 (WSAEOPNOTSUPP)
 *   EBADF      fd is not open
 *   ENODATA    nothing received yet and the kernel has no SO_INCOMING_CPU
 *              (Windows would complete the overlapped call later)
 * *returned (if not NULL) is set to sizeof(sockaff_processor_affinity) on
 * success and on EINVAL. Unlike Windows, an unconnected UDP socket is
 * answered when the tracer has seen its packets.
 */
int sockaff_query_rss_processor_info(int fd, void *out, size_t out_len, size_t *returned);

#ifdef __cplusplus
}
#endif

#endif
