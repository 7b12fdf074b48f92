/*
 * test_sandbox.c - the issuer front end's sandbox, seen from outside: a
 * confined program with forbidden_preload.so makes, on SIGUSR2, a call an
 * attacker would want (execve, ptrace, mount, fork, open for writing,
 * packet and netlink sockets, setuid(0)) and dies of SIGSYS; the same
 * call in the same program unconfined returns; what the front end needs
 * (TCP on loopback, a socketpair, 64 MiB, a thread) still works confined.
 *
 * The confined program is one variable: TSI_SANDBOX_TARGET (a command
 * line, split at spaces; default: sandbox_target) and TSI_SANDBOX_READY
 * (what it writes on stderr once confined; default "sandbox.entered").
 * When the confined process is not the one started (the issuer's front
 * end is the signer's child; the "pid" of its sandbox.entered line names
 * it), the test cannot read its wait status: TSI_SANDBOX_KILLED is then
 * what the program logs when that process dies of SIGSYS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 30000
#define OUT_MAX 65536
#define ARGS_MAX 32

struct target {
	pid_t pid;  /* the program started */
	pid_t conf; /* the confined process: pid, or the "pid" of
	                         * its "sandbox.entered" line (a front end
	                         * started by the signer) */
	int err;    /* read end of its stderr */
	char out[OUT_MAX];
	size_t len;
};

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads the target's stderr until mark appears (1), or EOF or WAIT_MS (0). */
static int
wait_mark(struct target *t, const char *mark)
{
	long end = now_ms() + WAIT_MS;

	for (;;) {
		struct pollfd p = { t->err, POLLIN, 0 };
		long left = end - now_ms();
		ssize_t n;

		t->out[t->len] = '\0';
		if (strstr(t->out, mark) != NULL)
			return 1;
		if (left <= 0 || t->len >= OUT_MAX - 1)
			return 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(t->err, t->out + t->len, OUT_MAX - 1 - t->len);
		if (n <= 0)
			return 0;
		t->len += (size_t)n;
	}
}

/* Waits for the target to end; its wait status, or -1 after WAIT_MS. */
static int
wait_exit(struct target *t)
{
	int fd = (int)syscall(SYS_pidfd_open, t->pid, 0), st = -1;
	struct pollfd p;

	assert_true(fd >= 0);
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, WAIT_MS) == 1 && waitpid(t->pid, &st, 0) == t->pid) {
		t->pid = 0;
		/* Whatever it wrote last, for the assertions on its output. */
		(void)wait_mark(t, "\x01 never written");
	}
	(void)close(fd);
	return st;
}

/* The confined process ended by SIGSYS: its wait status when it is the
 * test's child, else the program's own report of its death. */
static int
killed_by_sigsys(struct target *t)
{
	const char *mark = getenv("TSI_SANDBOX_KILLED");
	struct pollfd p;
	int st, fd, gone;

	if (t->conf == t->pid) {
		st = wait_exit(t);
		if (!(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS))
			print_error("wait status %d; output:\n%s\n", st,
			    t->out);
		return st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
	}
	assert_non_null(mark);
	assert_true((fd = (int)syscall(SYS_pidfd_open, t->conf, 0)) >= 0);
	p.fd = fd;
	p.events = POLLIN;
	p.revents = 0;
	gone = poll(&p, 1, WAIT_MS) == 1;
	(void)close(fd);
	return gone && wait_mark(t, mark);
}

static void
stop(struct target *t)
{
	if (t->pid > 0) {
		(void)kill(t->pid, SIGKILL);
		(void)waitpid(t->pid, NULL, 0);
		t->pid = 0;
	}
	if (t->err >= 0)
		(void)close(t->err);
	t->err = -1;
}

static const char *
bin(const char *name, char *buf, size_t len)
{
	const char *d = getenv("TSI_TEST_BIN_DIR");
	int n = snprintf(buf, len, "%s/%s", d != NULL ? d : TSI_TEST_DIR, name);

	assert_true(n > 0 && (size_t)n < len);
	return buf;
}

/* Starts the confined program (confined = 1) or the stand-in unconfined,
 * with the preload making op on SIGUSR2; returns when it is ready. */
static void
start_args(struct target *t, int confined, const char *op, int port,
    const char *extra)
{
	char cmd[1024], prog[512], preload[512], portbuf[16], *argv[ARGS_MAX];
	const char *env = getenv("TSI_SANDBOX_TARGET");
	const char *ready = getenv("TSI_SANDBOX_READY");
	int p[2], argc = 0;
	char *tok;

	memset(t, 0, sizeof(*t));
	t->err = -1;
	if (confined && geteuid() != 0 && env == NULL)
		skip(); /* only root can become another user */
	if (confined && env != NULL && env[0] != '\0')
		(void)snprintf(cmd, sizeof(cmd), "%s", env);
	else
		(void)snprintf(cmd, sizeof(cmd), "%s%s %s",
		    bin("sandbox_target", prog, sizeof(prog)),
		    confined ? "" : " --no-sandbox", extra);
	if (!confined || ready == NULL || ready[0] == '\0')
		ready = confined ? "sandbox.entered" : "target.ready";
	/* Split at spaces, in place. */
	for (tok = cmd; *tok != '\0' && argc < ARGS_MAX - 1;) {
		size_t n = strcspn(tok, " ");
		if (n > 0)
			argv[argc++] = tok;
		if (tok[n] == '\0')
			break;
		tok[n] = '\0';
		tok += n + 1;
	}
	argv[argc] = NULL;
	assert_true(argc > 0);
	(void)bin("libtsi_forbidden_preload.so", preload, sizeof(preload));
	(void)snprintf(portbuf, sizeof(portbuf), "%d", port);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	if ((t->pid = fork()) == 0) {
		(void)dup2(p[1], 2);
		(void)setenv("LD_PRELOAD", preload, 1);
		(void)setenv("TSI_PRELOAD_OP", op, 1);
		(void)setenv("TSI_PRELOAD_PORT", portbuf, 1);
		/* Sanitizer builds: the preload is not first, and the leak
		 * check at exit uses ptrace, which the filter forbids. */
		(void)setenv("ASAN_OPTIONS",
		    "verify_asan_link_order=0:"
		    "detect_leaks=0",
		    1);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_true(t->pid > 0);
	(void)close(p[1]);
	t->err = p[0];
	if (!wait_mark(t, ready)) {
		print_error("%s did not get ready; it wrote:\n%s\n", argv[0],
		    t->out);
		stop(t);
		fail();
	}
	t->conf = t->pid;
	if (confined && (tok = strstr(t->out, "\"sandbox.entered\"")) != NULL &&
	    (tok = strstr(tok, "\"pid\":")) != NULL &&
	    tok < strchr(strstr(t->out, "\"sandbox.entered\""), '\n'))
		t->conf = (pid_t)atoi(tok + 6);
	assert_true(t->conf > 0);
}

static void
start(struct target *t, int confined, const char *op, int port)
{
	start_args(t, confined, op, port, "");
}

static const char *const forbidden[] = {
	"execve",
	"ptrace",
	"mount",
	"fork",
	"open_write",
	"socket_packet",
	"socket_netlink",
	"setuid0",
};

static void
test_forbidden_killed(void **state)
{
	struct target t;
	size_t i;
	int killed;

	(void)state;
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		start(&t, 1, forbidden[i], 0);
		assert_int_equal(kill(t.conf, SIGUSR2), 0);
		killed = killed_by_sigsys(&t);
		if (!killed)
			print_error("%s was not killed by SIGSYS\n",
			    forbidden[i]);
		assert_true(killed);
		assert_null(strstr(t.out, "tsi-preload:"));
		stop(&t);
	}
}

/* The same calls from the same code return when nothing is confined: the
 * deaths above are the filter's doing. */
static void
test_forbidden_returns_unconfined(void **state)
{
	char mark[64];
	struct target t;
	size_t i;
	int st;

	(void)state;
	for (i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		start(&t, 0, forbidden[i], 0);
		assert_int_equal(kill(t.pid, SIGUSR2), 0);
		if (strcmp(forbidden[i], "execve") == 0) {
			/* It became /bin/true. */
			st = wait_exit(&t);
			assert_true(st != -1 && WIFEXITED(st));
			assert_int_equal(WEXITSTATUS(st), 0);
		} else {
			(void)snprintf(mark, sizeof(mark),
			    "tsi-preload: %s "
			    "returned",
			    forbidden[i]);
			if (!wait_mark(&t, mark))
				print_error("%s: output:\n%s\n", forbidden[i],
				    t.out);
			assert_non_null(strstr(t.out, mark));
		}
		stop(&t);
	}
}

static int
listen_loopback(int *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
test_allowed_confined(void **state)
{
	static const char *const ops[] = {
		"connect",
		"socketpair",
		"malloc64",
		"thread",
	};
	char mark[64], b[2];
	struct target t;
	size_t i;
	int lfd, port, c, st;

	(void)state;
	lfd = listen_loopback(&port);
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		start(&t, 1, ops[i], port);
		assert_int_equal(kill(t.conf, SIGUSR2), 0);
		(void)snprintf(mark, sizeof(mark), "tsi-preload: %s ok",
		    ops[i]);
		if (!wait_mark(&t, mark))
			print_error("%s: output:\n%s\n", ops[i], t.out);
		assert_non_null(strstr(t.out, mark));
		if (strcmp(ops[i], "connect") == 0) {
			/* The connection really reached the listener. */
			assert_true((c = accept(lfd, NULL, NULL)) >= 0);
			assert_int_equal(read(c, b, 2), 2);
			assert_memory_equal(b, "hi", 2);
			(void)close(c);
		}
		/* Still alive, and ends by the signal it is sent. */
		assert_int_equal(kill(t.conf, 0), 0);
		if (t.conf == t.pid) {
			assert_int_equal(kill(t.pid, SIGTERM), 0);
			st = wait_exit(&t);
			assert_true(st != -1 && WIFSIGNALED(st));
			assert_int_equal(WTERMSIG(st), SIGTERM);
		}
		stop(&t);
	}
	(void)close(lfd);
}

/* One "Name:\tvalue" line of /proc/PID/task/TID/status (tid 0: the
 * process's). */
static void
task_field(pid_t pid, pid_t tid, const char *name, char *val, size_t len)
{
	char path[96], line[256];
	size_t n = strlen(name);
	FILE *f;

	val[0] = '\0';
	if (tid > 0)
		(void)snprintf(path, sizeof(path), "/proc/%d/task/%d/status",
		    (int)pid, (int)tid);
	else
		(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	assert_non_null(f = fopen(path, "re"));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			(void)snprintf(val, len, "%s",
			    line + n + 1 + strspn(line + n + 1, " \t"));
			val[strcspn(val, "\n")] = '\0';
			n = strlen(val);
			while (n > 0 && val[n - 1] == ' ')
				val[--n] = '\0';
			n = strlen(name);
		}
	(void)fclose(f);
}

static void
status_field(pid_t pid, const char *name, char *val, size_t len)
{
	task_field(pid, 0, name, val, len);
}

/* What the kernel says about the confined process. */
static void
test_confined_state(void **state)
{
	struct target t;
	char v[128];

	(void)state;
	start(&t, 1, "connect", 0);
	status_field(t.conf, "Uid", v, sizeof(v));
	assert_string_equal(v, "65534\t65534\t65534\t65534");
	status_field(t.conf, "Gid", v, sizeof(v));
	assert_string_equal(v, "65534\t65534\t65534\t65534");
	status_field(t.conf, "Groups", v, sizeof(v));
	assert_string_equal(v, "65534");
	status_field(t.conf, "CapPrm", v, sizeof(v));
	assert_string_equal(v, "0000000000000000");
	status_field(t.conf, "CapEff", v, sizeof(v));
	assert_string_equal(v, "0000000000000000");
	status_field(t.conf, "CapInh", v, sizeof(v));
	assert_string_equal(v, "0000000000000000");
	status_field(t.conf, "CapAmb", v, sizeof(v));
	assert_string_equal(v, "0000000000000000");
	if (geteuid() == 0) {
		status_field(t.conf, "CapBnd", v, sizeof(v));
		assert_string_equal(v, "0000000000000000");
	}
	status_field(t.conf, "NoNewPrivs", v, sizeof(v));
	assert_string_equal(v, "1");
	status_field(t.conf, "Seccomp", v, sizeof(v));
	assert_string_equal(v, "2");
	/* The filter's size is logged. */
	assert_non_null(strstr(t.out, "\"bpf_instructions\":"));
	assert_null(strstr(t.out, "\"bpf_instructions\":-1"));
	stop(&t);
}

/* Threads started before the sandbox lose their capabilities and get the
 * filter too; a forbidden call from any of them kills the process. */
static void
test_threads_confined(void **state)
{
	char path[64], v[128];
	struct dirent *de;
	struct target t;
	int n = 0;
	DIR *d;

	(void)state;
	start_args(&t, 1, "execve", 0, "--threads 3");
	(void)snprintf(path, sizeof(path), "/proc/%d/task", (int)t.conf);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0)
			continue;
		task_field(t.conf, tid, "Uid", v, sizeof(v));
		assert_string_equal(v, "65534\t65534\t65534\t65534");
		task_field(t.conf, tid, "CapPrm", v, sizeof(v));
		assert_string_equal(v, "0000000000000000");
		task_field(t.conf, tid, "CapEff", v, sizeof(v));
		assert_string_equal(v, "0000000000000000");
		task_field(t.conf, tid, "NoNewPrivs", v, sizeof(v));
		assert_string_equal(v, "1");
		task_field(t.conf, tid, "Seccomp", v, sizeof(v));
		assert_string_equal(v, "2");
		n++;
	}
	(void)closedir(d);
	if (getenv("TSI_SANDBOX_TARGET") == NULL)
		assert_int_equal(n, 4);
	assert_int_equal(kill(t.conf, SIGUSR2), 0);
	assert_true(killed_by_sigsys(&t));
	stop(&t);
}

/* Fail closed: a user that cannot be taken stops the program. */
static void
test_fails_closed(void **state)
{
	static const char *const users[] = {
		"root",
		"0",
		"65534:0",
		"no-such-user-tsi",
		"",
	};
	char prog[512];
	size_t i;
	int st;

	(void)state;
	(void)bin("sandbox_target", prog, sizeof(prog));
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		struct target t;
		int p[2];

		memset(&t, 0, sizeof(t));
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		if ((t.pid = fork()) == 0) {
			(void)dup2(p[1], 2);
			execl(prog, prog, "--user", users[i], (char *)NULL);
			_exit(127);
		}
		(void)close(p[1]);
		t.err = p[0];
		st = wait_exit(&t);
		assert_true(st != -1 && WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 1);
		assert_non_null(strstr(t.out, "sandbox.failed"));
		assert_null(strstr(t.out, "target.ready"));
		stop(&t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_killed),
		cmocka_unit_test(test_forbidden_returns_unconfined),
		cmocka_unit_test(test_allowed_confined),
		cmocka_unit_test(test_confined_state),
		cmocka_unit_test(test_threads_confined),
		cmocka_unit_test(test_fails_closed),
	};

	/* A target's stderr closing early must not kill the test. */
	(void)signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
