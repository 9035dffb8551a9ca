#define _GNU_SOURCE
#include <sys/syscall.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/signalfd.h>
#include <errno.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/bpf.h>
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

int sockaff_set_thread_affinity(int tid, const int *cpus, int count)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int i = 0; i < count; i++) {
		if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) {
			errno = EINVAL;
			return -1;
		}
		CPU_SET(cpus[i], &set);
	}
	return sched_setaffinity(tid, sizeof(set), &set);
}

int sockaff_pin_thread_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int ethtool(int sockfd, const char *ifname, void *data)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	ifr.ifr_data = data;
	return ioctl(sockfd, SIOCETHTOOL, &ifr);
}

int sockaff_ethtool_rss(int sockfd, const char *ifname, unsigned int rss_context, unsigned char *hash_function,
			unsigned char *input_xfrm, unsigned char *key, unsigned int *key_size, unsigned int *table,
			unsigned int *table_size)
{
	struct ethtool_rxfh sizes = { .cmd = ETHTOOL_GRSSH, .rss_context = rss_context };
	struct ethtool_rxfh *rxfh;
	int result;

	if (ethtool(sockfd, ifname, &sizes) < 0)
		return -1;
	*hash_function = sizes.hfunc;
	/* input_xfrm since 6.8: the first of the bytes older headers reserve. */
	*input_xfrm = sizes.rsvd8[0];
	if (*key_size < sizes.key_size || *table_size < sizes.indir_size) {
		/* Too small to hold them: the sizes only. */
		*key_size = sizes.key_size;
		*table_size = sizes.indir_size;
		return 0;
	}
	rxfh = calloc(1, sizeof(*rxfh) + sizes.indir_size * sizeof(__u32) + sizes.key_size);
	if (!rxfh)
		return -1;
	rxfh->cmd = ETHTOOL_GRSSH;
	rxfh->rss_context = rss_context;
	rxfh->indir_size = sizes.indir_size;
	rxfh->key_size = sizes.key_size;
	result = ethtool(sockfd, ifname, rxfh);
	if (result == 0) {
		*hash_function = rxfh->hfunc;
		*input_xfrm = rxfh->rsvd8[0];
		memcpy(table, rxfh->rss_config, rxfh->indir_size * sizeof(__u32));
		memcpy(key, (unsigned char *)(rxfh->rss_config + rxfh->indir_size), rxfh->key_size);
		*key_size = rxfh->key_size;
		*table_size = rxfh->indir_size;
	}
	free(rxfh);
	return result;
}

int sockaff_ethtool_set_rss_table(int sockfd, const char *ifname, const unsigned int *table, unsigned int table_size)
{
	struct ethtool_rxfh now = { .cmd = ETHTOOL_GRSSH };
	struct ethtool_rxfh *rxfh;
	int result;

	/* The input transform as it is: 0 would turn a symmetric one off (6.8+). */
	if (ethtool(sockfd, ifname, &now) < 0)
		return -1;
	rxfh = calloc(1, sizeof(*rxfh) + table_size * sizeof(__u32));
	if (!rxfh)
		return -1;
	rxfh->cmd = ETHTOOL_SRSSH;
	rxfh->indir_size = table_size;
	rxfh->key_size = 0;			/* the key unchanged */
	rxfh->hfunc = 0;			/* ETH_RSS_HASH_NO_CHANGE */
	rxfh->rsvd8[0] = now.rsvd8[0];		/* input_xfrm, kept */
	memcpy(rxfh->rss_config, table, table_size * sizeof(__u32));
	result = ethtool(sockfd, ifname, rxfh);
	free(rxfh);
	return result;
}

int sockaff_ethtool_hash_fields(int sockfd, const char *ifname, unsigned int flow_type, unsigned long long *fields)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXFH, .flow_type = flow_type };

	if (ethtool(sockfd, ifname, &nfc) < 0)
		return -1;
	*fields = nfc.data;
	return 0;
}

int sockaff_ethtool_rx_rings(int sockfd, const char *ifname, unsigned long long *rings)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXRINGS };

	if (ethtool(sockfd, ifname, &nfc) < 0)
		return -1;
	*rings = nfc.data;
	return 0;
}

int sockaff_ethtool_rule_count(int sockfd, const char *ifname, unsigned int *rules)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXCLSRLCNT };

	if (ethtool(sockfd, ifname, &nfc) < 0)
		return -1;
	*rules = nfc.rule_cnt;
	return 0;
}

int sockaff_ethtool_rules(int sockfd, const char *ifname, struct ethtool_rx_flow_spec *rules,
			  unsigned int *rss_contexts, unsigned int *count)
{
	struct ethtool_rxnfc counted = { .cmd = ETHTOOL_GRXCLSRLCNT };
	struct ethtool_rxnfc *all;
	unsigned int i, found;

	if (ethtool(sockfd, ifname, &counted) < 0)
		return -1;
	if (*count < counted.rule_cnt || counted.rule_cnt == 0) {
		*count = counted.rule_cnt;
		return 0;
	}
	all = calloc(1, sizeof(*all) + counted.rule_cnt * sizeof(__u32));
	if (!all)
		return -1;
	all->cmd = ETHTOOL_GRXCLSRLALL;
	all->rule_cnt = counted.rule_cnt;
	if (ethtool(sockfd, ifname, all) < 0) {
		free(all);
		return -1;
	}
	/* Rules may have been deleted in between: the driver's count now. */
	found = all->rule_cnt < counted.rule_cnt ? all->rule_cnt : counted.rule_cnt;
	for (i = 0; i < found; i++) {
		struct ethtool_rxnfc one = { .cmd = ETHTOOL_GRXCLSRULE };

		one.fs.location = all->rule_locs[i];
		if (ethtool(sockfd, ifname, &one) < 0) {
			free(all);
			return -1;
		}
		rules[i] = one.fs;
		rss_contexts[i] = (one.fs.flow_type & FLOW_RSS) ? one.rss_context : 0;
	}
	free(all);
	*count = found;
	return 0;
}

int sockaff_ethtool_driver(int sockfd, const char *ifname, char *driver)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };

	if (ethtool(sockfd, ifname, &info) < 0)
		return -1;
	memcpy(driver, info.driver, sizeof(info.driver));
	driver[sizeof(info.driver) - 1] = 0;
	return 0;
}

int sockaff_ethtool_private_flag(int sockfd, const char *ifname, const char *name, int *on)
{
	struct {
		struct ethtool_sset_info info;
		__u32 count;
	} sset = { .info = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ULL << ETH_SS_PRIV_FLAGS } };
	struct ethtool_value flags = { .cmd = ETHTOOL_GPFLAGS };
	struct ethtool_gstrings *strings;
	unsigned int i, count;
	int found = -1;

	if (ethtool(sockfd, ifname, &sset) < 0)
		return -1;
	/* The kernel clears the set's bit where the driver has no such strings. */
	count = sset.info.sset_mask ? sset.count : 0;
	strings = calloc(1, sizeof(*strings) + (size_t)count * ETH_GSTRING_LEN);
	if (!strings)
		return -1;
	strings->cmd = ETHTOOL_GSTRINGS;
	strings->string_set = ETH_SS_PRIV_FLAGS;
	strings->len = count;
	if (count && ethtool(sockfd, ifname, strings) < 0) {
		free(strings);
		return -1;
	}
	for (i = 0; i < count && i < 32 && found < 0; i++)
		if (strncmp((const char *)strings->data + i * ETH_GSTRING_LEN, name, ETH_GSTRING_LEN) == 0)
			found = (int)i;
	free(strings);
	if (found < 0) {
		errno = ENOENT;
		return -1;
	}
	if (ethtool(sockfd, ifname, &flags) < 0)
		return -1;
	*on = (flags.data >> found) & 1;
	return 0;
}

int sockaff_ethtool_flags(int sockfd, const char *ifname, unsigned int *flags)
{
	struct ethtool_value value = { .cmd = ETHTOOL_GFLAGS };

	if (ethtool(sockfd, ifname, &value) < 0)
		return -1;
	*flags = value.data;
	return 0;
}

int sockaff_socket_in_own_netns(int sockfd)
{
	struct stat theirs, ours;
	int ns = ioctl(sockfd, SIOCGSKNS);

	if (ns < 0)
		return -1;
	if (fstat(ns, &theirs) < 0 || stat("/proc/self/ns/net", &ours) < 0) {
		close(ns);
		return -1;
	}
	close(ns);
	return theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev;
}

char *sockaff_format_message(const char *format, va_list args)
{
	char *message = NULL;

	if (vasprintf(&message, format, args) < 0)
		return NULL;
	return message;
}

int sockaff_iter_create_in_netns(int link_fd, int netns_fd)
{
	union bpf_attr attr;
	int own, iterator, saved;

	own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (own < 0)
		return -1;
	if (setns(netns_fd, CLONE_NEWNET) < 0) {
		saved = errno;
		close(own);
		errno = saved;
		return -1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.iter_create.link_fd = (__u32)link_fd;
	iterator = (int)syscall(__NR_bpf, BPF_ITER_CREATE, &attr, sizeof(attr));
	saved = errno;
	if (setns(own, CLONE_NEWNET) < 0) {
		if (iterator >= 0)
			close(iterator);
		close(own);
		errno = saved;
		return -2;
	}
	close(own);
	errno = saved;
	return iterator;
}
