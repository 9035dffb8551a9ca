#define _GNU_SOURCE
#include <sys/syscall.h>
#include <net/if.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "sockaff_shims.h"

/*
 * Raw syscalls rather than glibc's wrappers, so the binary also runs on hosts
 * with a glibc older than 2.36 (the kernel has had both calls since 5.6).
 */
int sockaff_pidfd_open(int pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sockaff_pidfd_getfd(int pidfd, int targetfd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, targetfd, 0);
}

int sockaff_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int sockaff_interface_name(int sockfd, int ifindex, char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifindex = ifindex;
	if (ioctl(sockfd, SIOCGIFNAME, &ifr) < 0)
		return -1;
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return 0;
}

int sockaff_termination_signalfd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
		return -1;
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

int sockaff_has_effective_capability(int cap)
{
	struct __user_cap_header_struct header = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (cap < 0 || cap >= 32 * _LINUX_CAPABILITY_U32S_3)
		return -1;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &header, data) != 0)
		return -1;
	return (data[cap / 32].effective >> (cap % 32)) & 1;
}

int sockaff_pin_thread_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}
