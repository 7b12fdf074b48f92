/*
 * forbidden_preload.c - LD_PRELOAD'ed into a program under test, it makes
 * one operation (TSI_PRELOAD_OP) when the program receives SIGUSR2, as if
 * an attacker had taken over the program at that moment; the program is
 * whichever one the sandbox test starts (the issuer's front end, or a
 * stand-in), unchanged.
 *
 * Operations that a confined front end must not be able to make:
 *   execve ptrace mount fork open_write socket_packet socket_netlink setuid0
 * and ones it must keep:
 *   connect (TCP to 127.0.0.1:TSI_PRELOAD_PORT) socketpair malloc64 thread
 *
 * After the operation it writes one line to stderr (the channel the test
 * reads anyway): "tsi-preload: OP returned rc=N errno=E" for the first
 * kind, "tsi-preload: OP ok" or "tsi-preload: OP failed" for the second.
 * A process the filter kills writes nothing and dies of SIGSYS.
 *
 * The handler calls functions that are not async-signal-safe (malloc,
 * pthread_create): the test signals the program while it waits for
 * events, holding no lock, which is also where an exploited parser bug
 * would run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/netlink.h>

static char op[32];
static int port;

static void
say(const char *what, long rc, int err)
{
	char line[160];
	int n;

	if (rc == -2)
		n = snprintf(line, sizeof(line), "tsi-preload: %s %s\n", op,
		    what);
	else
		n = snprintf(line, sizeof(line),
		    "tsi-preload: %s %s rc=%ld "
		    "errno=%d\n",
		    op, what, rc, err);
	if (n > 0 && (size_t)n < sizeof(line) &&
	    write(2, line, (size_t)n) != (ssize_t)n)
		return; /* nothing else to tell it with */
}

static void *
thread_main(void *arg)
{
	return arg;
}

/* The operations a confined front end keeps; 1 when it worked. */
static int
allowed_op(void)
{
	if (strcmp(op, "connect") == 0) {
		struct sockaddr_in sin;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		if (fd < 0)
			return 0;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((unsigned short)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    write(fd, "hi", 2) == 2;
		(void)close(fd);
		return ok;
	}
	if (strcmp(op, "socketpair") == 0) {
		int sv[2], ok;
		char b[4];

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) !=
		    0)
			return 0;
		ok = write(sv[0], "ping", 4) == 4 && read(sv[1], b, 4) == 4 &&
		    memcmp(b, "ping", 4) == 0;
		(void)close(sv[0]);
		(void)close(sv[1]);
		return ok;
	}
	if (strcmp(op, "malloc64") == 0) {
		size_t n = 64u << 20;
		volatile unsigned char *p = malloc(n);
		size_t i, sum = 0;

		if (p == NULL)
			return 0;
		memset((void *)p, 0x5a, n);
		for (i = 0; i < n; i += 4096)
			sum += p[i];
		free((void *)p);
		return sum == (n / 4096) * 0x5a;
	}
	if (strcmp(op, "thread") == 0) {
		pthread_t t;
		void *ret = NULL;
		int x = 7;

		if (pthread_create(&t, NULL, thread_main, &x) != 0)
			return 0;
		return pthread_join(t, &ret) == 0 && ret == &x;
	}
	return -1;
}

static void
on_usr2(int sig)
{
	char *argv[] = { "true", NULL }, *envp[] = { NULL };
	long rc = 0;
	int e, ok;

	(void)sig;
	errno = 0;
	if ((ok = allowed_op()) >= 0) {
		say(ok ? "ok" : "failed", -2, 0);
		return;
	}
	if (strcmp(op, "execve") == 0)
		rc = execve("/bin/true", argv, envp);
	else if (strcmp(op, "ptrace") == 0)
		/* Attaching to itself fails where it is allowed (EPERM). */
		rc = ptrace(PTRACE_ATTACH, getpid(), NULL, NULL);
	else if (strcmp(op, "mount") == 0)
		/* Harmless where it is allowed: there is no such target. */
		rc =
		    mount("none", "/nonexistent-tsi-preload", "tmpfs", 0, NULL);
	else if (strcmp(op, "fork") == 0) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p > 0)
			(void)waitpid(p, NULL, 0);
		rc = p;
	} else if (strcmp(op, "open_write") == 0) {
		rc = open("/dev/null", O_WRONLY | O_CLOEXEC);
	} else if (strcmp(op, "socket_packet") == 0)
		rc = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC,
		    htons(ETH_P_ALL));
	else if (strcmp(op, "socket_netlink") == 0)
		rc = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	else if (strcmp(op, "setuid0") == 0)
		rc = syscall(SYS_setuid, 0);
	else {
		say("unknown", -1, 0);
		return;
	}
	e = errno;
	say("returned", rc, e);
}

__attribute__((constructor)) static void
preload_init(void)
{
	const char *o = getenv("TSI_PRELOAD_OP"),
	           *p = getenv("TSI_PRELOAD_PORT");
	struct sigaction sa;

	if (o == NULL || strlen(o) >= sizeof(op))
		return;
	memcpy(op, o, strlen(o) + 1);
	port = p != NULL ? atoi(p) : 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	(void)sigaction(SIGUSR2, &sa, NULL);
}
