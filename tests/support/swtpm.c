#include "swtpm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long
test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
test_mkdtemp(char *out, size_t len, const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	n = snprintf(out, len, "%s/tsi-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
	    tag);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return mkdtemp(out) == NULL ? -1 : 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void
test_rmtree(const char *dir)
{
	if (dir != NULL && dir[0] != '\0')
		(void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* op (bind or connect) on a fresh TCP socket with 127.0.0.1:port; 1 when
 * it succeeded: for bind, the port is free; for connect, something listens. */
static int
loopback_op(int port, int (*op)(int, const struct sockaddr *, socklen_t))
{
	struct sockaddr_in a;
	int fd, ok;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = op(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int
port_free(int port)
{
	return loopback_op(port, bind);
}

static int
port_accepts(int port)
{
	return loopback_op(port, connect);
}

static int
spawn(struct test_swtpm *s)
{
	char server[96], ctrl[96], state[300];
	long long deadline;
	int status;
	pid_t pid;

	snprintf(server, sizeof(server), "type=tcp,port=%d,bindaddr=127.0.0.1",
	    s->port);
	snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%d,bindaddr=127.0.0.1",
	    s->port + 1);
	snprintf(state, sizeof(state), "dir=%s", s->dir);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
			dup2(dn, 2);
		}
		execlp("swtpm", "swtpm", "socket", "--tpm2", "--server", server,
		    "--ctrl", ctrl, "--tpmstate", state, "--flags",
		    "not-need-init,startup-clear", (char *)NULL);
		_exit(127);
	}
	s->pid = pid;
	deadline = test_now_ms() + 10000; /* generous: a loaded machine */
	while (test_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			s->pid = 0;
			return -1;
		}
		/* The probe connection is the one client swtpm serves; it is
		 * closed at once, so the next client is served. */
		if (port_accepts(s->port))
			return 0;
		usleep(20000);
	}
	test_swtpm_kill(s, SIGKILL);
	return -1;
}

/* Tries free port pairs for s (s->dir set) until swtpm serves on one. */
static int
start_on_free_port(struct test_swtpm *s)
{
	int tries;

	srand((unsigned)(getpid() ^ time(NULL) ^ (unsigned)test_now_ms()));
	for (tries = 0; tries < 20; tries++) {
		int p = 20000 + (rand() % 20000) * 2;
		if (!port_free(p) || !port_free(p + 1))
			continue;
		s->port = p;
		snprintf(s->tcti, sizeof(s->tcti),
		    "swtpm:host=127.0.0.1,port=%d", p);
		if (spawn(s) == 0)
			return 0;
	}
	return -1;
}

int
test_swtpm_start(struct test_swtpm *s)
{
	memset(s, 0, sizeof(*s));
	if (test_mkdtemp(s->dir, sizeof(s->dir), "swtpm") != 0)
		return -1;
	return start_on_free_port(s);
}

int
test_swtpm_start_state(struct test_swtpm *s, const char *statedir)
{
	int n;

	memset(s, 0, sizeof(*s));
	n = snprintf(s->dir, sizeof(s->dir), "%s", statedir);
	if (n < 0 || (size_t)n >= sizeof(s->dir))
		return -1;
	return start_on_free_port(s);
}

int
test_swtpm_restart(struct test_swtpm *s)
{
	int tries;

	for (tries = 0; tries < 50; tries++) {
		if (spawn(s) == 0)
			return 0;
		usleep(100000);
	}
	return -1;
}

void
test_swtpm_kill(struct test_swtpm *s, int sig)
{
	if (s->pid > 0) {
		kill(s->pid, SIGCONT); /* a stopped swtpm cannot exit */
		kill(s->pid, sig);
		(void)waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

void
test_swtpm_cleanup(struct test_swtpm *s)
{
	test_swtpm_kill(s, SIGTERM);
	test_rmtree(s->dir);
}

char *
test_slurp(const char *path)
{
	struct stat st;
	size_t n = 0, cap;
	ssize_t k;
	char *t = NULL, *grown;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	/* The size is a hint: a log may grow while it is read. */
	cap = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1
	                                            : 4096;
	for (;;) {
		if (t == NULL || n + 1 >= cap) {
			if (t != NULL)
				cap *= 2;
			if ((grown = realloc(t, cap)) == NULL) {
				free(t);
				close(fd);
				return NULL;
			}
			t = grown;
		}
		if ((k = read(fd, t + n, cap - n - 1)) <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (t != NULL)
		t[n] = '\0';
	return t;
}

int
test_count(const char *path, const char *s)
{
	char *text = test_slurp(path), *p;
	int n = 0;

	if (text == NULL)
		return 0;
	for (p = text; (p = strstr(p, s)) != NULL; p++)
		n++;
	free(text);
	return n;
}

int
test_write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}
