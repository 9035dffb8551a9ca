/*
 * Checks libsockaff's one call against the kernel, compiled against the
 * installed header and library (Tests/install/check.sh). Prints one
 * "PASS name: detail" or "FAIL name: detail" line per check.
 * Usage: check MODE, MODE being "traced" (the tracer is attached and this
 * process may read it) or "kernel" (it may not, or it is not attached).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sockaff.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;

static void check(int ok, const char *name, const char *detail)
{
	printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, detail);
	failures += !ok;
}

/* A connected UDP pair on loopback; fills *rx with the receiving end. */
static int udp_pair(int *rx, int *tx)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t length = sizeof(address);

	*rx = socket(AF_INET, SOCK_DGRAM, 0);
	*tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (bind(*rx, (struct sockaddr *)&address, sizeof(address)) || getsockname(*rx, (struct sockaddr *)&address, &length) ||
	    connect(*tx, (struct sockaddr *)&address, length))
		return -1;
	getsockname(*tx, (struct sockaddr *)&address, &length);
	return connect(*rx, (struct sockaddr *)&address, length);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "kernel";
	char detail[160], buffer[64];
	sockaff_processor_affinity answer;
	size_t returned = 0;
	int rx, tx, incoming = -1, pipe_fds[2], unix_fds[2];
	socklen_t length = sizeof(incoming);

	check(sizeof(answer) == 8, "layout", "8 bytes, as SOCKET_PROCESSOR_AFFINITY");
	if (udp_pair(&rx, &tx)) {
		check(0, "setup", strerror(errno));
		return 1;
	}

	/* Nothing received yet: no record, and SO_INCOMING_CPU is -1. */
	errno = 0;
	int status = sockaff_query_rss_processor_info(rx, &answer, sizeof(answer), &returned);
	snprintf(detail, sizeof(detail), "status %d errno %s", status, strerror(errno));
	check(status == -1 && errno == ENODATA, "nothing received: ENODATA", detail);

	for (int i = 0; i < 20; i++) {
		send(tx, "sockaff", 7, 0);
		recv(rx, buffer, sizeof(buffer), 0);
	}
	getsockopt(rx, SOL_SOCKET, SO_INCOMING_CPU, &incoming, &length);
	memset(&answer, 0xff, sizeof(answer));
	returned = 0;
	status = sockaff_query_rss_processor_info(rx, &answer, sizeof(answer), &returned);
	snprintf(detail, sizeof(detail), "%s: status %d, group %u number %u node %u, returned %zu; SO_INCOMING_CPU %d", mode,
		 status, answer.group, answer.number, answer.numa_node_id, returned, incoming);
	/* One NUMA node and at most 64 CPUs here: group 0, number = Linux CPU id. */
	check(status == 0 && returned == sizeof(answer) && answer.group == 0 && answer.number == incoming &&
		      answer.reserved == 0 && answer.reserved2 == 0,
	      "answer matches SO_INCOMING_CPU", detail);

	/*
	 * An unconnected UDP socket: the kernel keeps SO_INCOMING_CPU at -1, so
	 * only the tracer can answer (Windows says WSAENOTCONN).
	 */
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t address_length = sizeof(address);
	int unconnected = socket(AF_INET, SOCK_DGRAM, 0), sender = socket(AF_INET, SOCK_DGRAM, 0);
	bind(unconnected, (struct sockaddr *)&address, sizeof(address));
	getsockname(unconnected, (struct sockaddr *)&address, &address_length);
	for (int i = 0; i < 5; i++) {
		sendto(sender, "sockaff", 7, 0, (struct sockaddr *)&address, address_length);
		recv(unconnected, buffer, sizeof(buffer), 0);
	}
	errno = 0;
	status = sockaff_query_rss_processor_info(unconnected, &answer, sizeof(answer), NULL);
	snprintf(detail, sizeof(detail), "%s: status %d errno %s number %u", mode, status, strerror(errno), answer.number);
	if (strcmp(mode, "traced") == 0)
		check(status == 0 && answer.number < sysconf(_SC_NPROCESSORS_CONF), "unconnected UDP answered from the tracer", detail);
	else
		check(status == -1 && errno == ENODATA, "unconnected UDP without the tracer: ENODATA", detail);

	returned = 0;
	errno = 0;
	status = sockaff_query_rss_processor_info(rx, &answer, 4, &returned);
	snprintf(detail, sizeof(detail), "status %d errno %s returned %zu", status, strerror(errno), returned);
	check(status == -1 && errno == EINVAL && returned == sizeof(answer), "buffer too small: EINVAL and the size", detail);

	pipe(pipe_fds);
	errno = 0;
	status = sockaff_query_rss_processor_info(pipe_fds[0], &answer, sizeof(answer), NULL);
	snprintf(detail, sizeof(detail), "status %d errno %s", status, strerror(errno));
	check(status == -1 && errno == ENOTSOCK, "pipe: ENOTSOCK", detail);

	socketpair(AF_UNIX, SOCK_STREAM, 0, unix_fds);
	errno = 0;
	status = sockaff_query_rss_processor_info(unix_fds[0], &answer, sizeof(answer), NULL);
	snprintf(detail, sizeof(detail), "status %d errno %s", status, strerror(errno));
	check(status == -1 && errno == EOPNOTSUPP, "unix socket: EOPNOTSUPP", detail);

	errno = 0;
	status = sockaff_query_rss_processor_info(999, &answer, sizeof(answer), NULL);
	snprintf(detail, sizeof(detail), "status %d errno %s", status, strerror(errno));
	check(status == -1 && errno == EBADF, "closed fd: EBADF", detail);

	/* SIO_QUERY_RSS_SCALABILITY_INFO's counterpart: loopback never has RSS. */
	sockaff_rss_scalability_info scalability;
	memset(&scalability, 0xff, sizeof(scalability));
	returned = 0;
	status = sockaff_query_rss_scalability_info(rx, &scalability, sizeof(scalability), &returned);
	snprintf(detail, sizeof(detail), "status %d errno %s rss_enabled %u returned %zu", status, strerror(errno),
		 scalability.rss_enabled, returned);
	check(sizeof(scalability) == 1 && status == 0 && scalability.rss_enabled == 0 && returned == 1,
	      "scalability of a loopback socket: RSS off", detail);
	errno = 0;
	status = sockaff_query_rss_scalability_info(rx, &scalability, 0, &returned);
	snprintf(detail, sizeof(detail), "status %d errno %s returned %zu", status, strerror(errno), returned);
	check(status == -1 && errno == EINVAL && returned == 1, "scalability, buffer too small: EINVAL", detail);
	errno = 0;
	status = sockaff_query_rss_scalability_info(pipe_fds[0], &scalability, sizeof(scalability), NULL);
	snprintf(detail, sizeof(detail), "status %d errno %s", status, strerror(errno));
	check(status == -1 && errno == ENOTSOCK, "scalability of a pipe: ENOTSOCK", detail);
	return failures != 0;
}
