/*
 * What Swift cannot call directly: glibc's pidfd wrappers are declared in
 * <sys/pidfd.h> (glibc >= 2.36), which no Swift module exports, and syscall()
 * is variadic. Each shim returns -1 and leaves errno set on failure.
 */
#ifndef SOCKAFF_SHIMS_H
#define SOCKAFF_SHIMS_H

#include <linux/capability.h> /* CAP_* numbers, for Swift too */

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

/* Pins the calling thread to one CPU (sched_setaffinity needs _GNU_SOURCE). */
int sockaff_pin_thread_to_cpu(int cpu);

#endif
