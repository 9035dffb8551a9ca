/*
 * What Swift cannot call directly: glibc's pidfd wrappers are declared in
 * <sys/pidfd.h> (glibc >= 2.36), which no Swift module exports, and syscall()
 * is variadic. Each shim returns -1 and leaves errno set on failure.
 */
#ifndef SOCKAFF_SHIMS_H
#define SOCKAFF_SHIMS_H

#include <linux/capability.h> /* CAP_* numbers, for Swift too */
#include <linux/ethtool.h>    /* *_FLOW, RXH_* numbers, for Swift too */
#include <stdarg.h>

int sockaff_pidfd_open(int pid);
int sockaff_pidfd_getfd(int pidfd, int targetfd);
int sockaff_pidfd_send_signal(int pidfd, int sig);

/*
 * Name of interface ifindex as seen from socket sockfd's network namespace
 * (SIOCGIFNAME on that socket), so a container's socket names its own
 * interfaces. name must hold 16 bytes (IFNAMSIZ).
 */
int sockaff_interface_name(int sockfd, int ifindex, char *name);

/*
 * A BPF iterator (BPF_ITER_CREATE on iterator link link_fd) made from inside
 * the network namespace netns_fd (an open /proc/P/ns/net), for the
 * iterators that walk their maker's namespace (iter/tcp, iter/udp). The
 * calling thread enters it and returns to its own before returning; -1 with
 * errno set on failure (and -2 if the thread could not return: it is left
 * in netns_fd's namespace and must not be used again).
 */
int sockaff_iter_create_in_netns(int link_fd, int netns_fd);

/*
 * A close-on-exec signalfd for SIGINT, SIGTERM and SIGHUP, which it blocks
 * first (<sys/signalfd.h> is not exported to Swift by Glibc).
 */
int sockaff_termination_signalfd(void);

/*
 * 1 if capability cap (CAP_NET_ADMIN = 12, ...) is in this process's
 * effective set, 0 if not, -1 on error (capget is a raw syscall: glibc has
 * no wrapper and libcap is not a dependency).
 */
int sockaff_has_effective_capability(int cap);

/*
 * The whole of a printf-style message, however long (vasprintf: libbpf
 * prints a failed program's verifier log as one message, whose last lines
 * say why); free() it. NULL on failure.
 */
char *sockaff_format_message(const char *format, va_list args);

/*
 * Sets thread `tid`'s affinity to the `count` CPUs in `cpus` (a threaded
 * NAPI kernel thread's, for `advise --apply` and `--undo`).
 */
int sockaff_set_thread_affinity(int tid, const int *cpus, int count);

/* Pins the calling thread to one CPU (sched_setaffinity needs _GNU_SOURCE). */
int sockaff_pin_thread_to_cpu(int cpu);

/*
 * An interface's RSS configuration through the SIOCETHTOOL ioctl on socket
 * sockfd (so in that socket's network namespace). ETHTOOL_GRSSH: the hash
 * function bits (ETH_RSS_HASH_TOP = 1: Toeplitz), the key and the
 * indirection table of RSS context rss_context (0: the default one, which
 * every flow no ntuple rule sends elsewhere takes); key and table are filled up to their
 * capacity, and their real sizes are returned in *key_size and
 * *table_size (call with capacities of 0 to learn them). *input_xfrm gets
 * the input transform (RXH_XFRM_SYM_XOR 1, RXH_XFRM_SYM_OR_XOR 2; 6.8+,
 * the byte older kernels reserve and leave 0). The struct has a flexible
 * array, which Swift cannot import.
 */
int sockaff_ethtool_rss(int sockfd, const char *ifname, unsigned int rss_context, unsigned char *hash_function,
			unsigned char *input_xfrm, unsigned char *key, unsigned int *key_size, unsigned int *table,
			unsigned int *table_size);

/*
 * ETHTOOL_SRSSH: sets the indirection table of RSS context 0 to `table`
 * (`table_size` entries, the size the driver reports), key and hash
 * function unchanged. `advise --apply` and `--undo`, which read it back.
 */
int sockaff_ethtool_set_rss_table(int sockfd, const char *ifname, const unsigned int *table, unsigned int table_size);

/*
 * ETHTOOL_GRXFH: the fields (RXH_* bits) the NIC hashes for flow_type
 * (TCP_V4_FLOW, UDP_V6_FLOW, ...) into *fields.
 */
int sockaff_ethtool_hash_fields(int sockfd, const char *ifname, unsigned int flow_type, unsigned long long *fields);

/*
 * ETHTOOL_GRXRINGS: the RX queues RSS spreads over; ETHTOOL_GRXCLSRLCNT:
 * the ntuple classification rules, which override RSS for their flows.
 */
int sockaff_ethtool_rx_rings(int sockfd, const char *ifname, unsigned long long *rings);
int sockaff_ethtool_rule_count(int sockfd, const char *ifname, unsigned int *rules);

/*
 * The ntuple rules themselves: ETHTOOL_GRXCLSRLALL for their locations,
 * then ETHTOOL_GRXCLSRULE for each, as the driver reports it, into
 * rules[i], and the RSS context of a rule whose flow_type has FLOW_RSS
 * into rss_contexts[i] (0 otherwise). *count holds the capacity on entry
 * and the number of rules on return; a capacity below it returns the
 * number only (call with 0 to learn it). Swift decodes each spec's union.
 */
int sockaff_ethtool_rules(int sockfd, const char *ifname, struct ethtool_rx_flow_spec *rules,
			  unsigned int *rss_contexts, unsigned int *count);

/*
 * 1 if socket sockfd belongs to this process's network namespace, 0 if to
 * another, -1 if it cannot tell (SIOCGSKNS needs CAP_NET_ADMIN).
 */
int sockaff_socket_in_own_netns(int sockfd);

/*
 * ETHTOOL_GDRVINFO: the driver's name (driver must hold 32 bytes).
 */
int sockaff_ethtool_driver(int sockfd, const char *ifname, char *driver);

/*
 * The private flag `name` (ETH_SS_PRIV_FLAGS strings, ETHTOOL_GPFLAGS):
 * *on gets 1 or 0; -1 with ENOENT where the driver has no such flag.
 */
int sockaff_ethtool_private_flag(int sockfd, const char *ifname, const char *name, int *on);

/* ETHTOOL_GFLAGS: the interface's flags (ETH_FLAG_NTUPLE: n-tuple filters, and so aRFS, enabled). */
int sockaff_ethtool_flags(int sockfd, const char *ifname, unsigned int *flags);

#endif
