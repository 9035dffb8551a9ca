/*
 * libsockaff: the Windows SIO_QUERY_RSS_PROCESSOR_INFO contract on Linux, for
 * C programs and code ported from Windows. Link with `pkg-config --libs sockaff`.
 *
 * One call, on the caller's own socket: which processor (Windows-style group
 * and number) and NUMA node process the packets it receives. It reads the
 * pinned maps of a running `sockaff trace` when the caller may (root), and
 * otherwise, or when nothing was traced for the socket, answers with the
 * kernel's SO_INCOMING_CPU; when nothing was received at all, with RSS's
 * prediction for the socket's flow (what the Windows call returns for a new
 * socket): the interface's Toeplitz key and indirection table, the queue's
 * interrupt and its CPU.
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
 *   ENODATA    nothing received yet, the kernel has no SO_INCOMING_CPU and
 *              RSS cannot predict (loopback, veth, not connected, RPS on
 *              the queue); Windows would complete the overlapped call later
 * *returned (if not NULL) is set to sizeof(sockaff_processor_affinity) on
 * success and on EINVAL. Unlike Windows, an unconnected UDP socket is
 * answered when the tracer has seen its packets.
 */
int sockaff_query_rss_processor_info(int fd, void *out, size_t out_len, size_t *returned);

/* Laid out like Windows' RSS_SCALABILITY_INFO (1 byte). */
typedef struct sockaff_rss_scalability_info {
	uint8_t rss_enabled; /* RssEnabled: a BOOLEAN */
} sockaff_rss_scalability_info;

/*
 * The counterpart of SIO_QUERY_RSS_SCALABILITY_INFO, per socket: whether RSS
 * spreads the packets of socket fd's interface over several queues (the
 * interface holding its local address; for a socket bound to any address,
 * any interface of its network namespace). Fills *out and returns 0; on
 * failure -1 with errno EINVAL (out NULL or too small, *returned holds the
 * size), ENOTSOCK, EBADF. An interface without RSS (loopback, veth, one
 * queue) answers 0, not an error.
 */
int sockaff_query_rss_scalability_info(int fd, void *out, size_t out_len, size_t *returned);

#ifdef __cplusplus
}
#endif

#endif
