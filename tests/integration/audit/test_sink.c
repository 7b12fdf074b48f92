/*
 * test_sink.c - audit sinks against real receivers: a TCP and a Unix
 * stream listener that is stopped and restarted midway (every record
 * arrives, in order, none lost; a receiver that drops repeated seqs sees
 * each exactly once; releases are not held up), a file sink under real
 * logrotate (copytruncate and create), and syslog into a real rsyslogd.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/unit/audit/audit_test.h"
#include "tsi/audit_sink.h"
#include "tsi/log.h"

#define WAIT_MS 120000

/* ---- helpers ---- */

/* The sinks are under test, not the store's commit latency: a loaded
 * machine (other suites' fsyncs) may hold a synced commit past the
 * default 2 s, and a record refused for that would fail a sink test for
 * a reason it does not test. */
static const struct tsi_audit_opts audit_opts = {
	.commit_timeout_ms = 30000,
};
static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *
pathf(const char *fmt, ...)
{
	char b[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && n < (int)sizeof(b));
	return strdup(b);
}

static void
append_one(struct tsi_audit *a, int i, long long *lat_us)
{
	char path[64];
	json_t *rec;
	uint64_t seq;
	long long t0 = test_mono_ms();
	struct timespec s, e;

	(void)t0;
	snprintf(path, sizeof(path), "secret/data/app/%d", i % 7);
	rec = test_rec("read", path, i % 5 == 0 ? "deny" : "allow",
	    i % 2 ? "dal05" : "fra02", "hipaaCluster", "medical",
	    "sha256:"
	    "1111111111111111111111111111111111111111111111111111111111111111");
	assert_non_null(rec);
	clock_gettime(CLOCK_MONOTONIC, &s);
	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	clock_gettime(CLOCK_MONOTONIC, &e);
	if (lat_us != NULL)
		*lat_us = (e.tv_sec - s.tv_sec) * 1000000LL +
		    (e.tv_nsec - s.tv_nsec) / 1000;
	json_decref(rec);
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long
pct(long long *v, size_t n, int p)
{
	qsort(v, n, sizeof(*v), cmp_ll);
	return v[(n - 1) * (size_t)p / 100];
}

/* seq of one line, 0 when it is not a record */
static uint64_t
line_seq(const char *line)
{
	json_t *j = json_loads(line, 0, NULL), *s;
	uint64_t v = 0;

	if (j == NULL)
		return 0;
	s = json_object_get(j, "seq");
	if (json_is_integer(s) && json_object_get(j, "hash") != NULL)
		v = (uint64_t)json_integer_value(s);
	json_decref(j);
	return v;
}

static uint64_t
wait_pos(struct tsi_audit_sinks *s, uint64_t want)
{
	struct tsi_audit_sink_stat st;
	long long end = test_mono_ms() + WAIT_MS;

	for (;;) {
		assert_int_equal(tsi_audit_sinks_stat(s, 0, &st), TSI_OK);
		if (st.pos >= want || test_mono_ms() > end)
			return st.pos;
		usleep(10000);
	}
}

/* ---- a stream receiver that drops repeated seqs ---- */

struct rx {
	int unix_sock;
	char *sock_path;
	int port;
	uint64_t target, stop_at;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t last, dups, lines, bad;
	int gaps, down, restart, listening;
	pthread_t thr;
};

static int
rx_listen(struct rx *r)
{
	int fd, one = 1;

	if (r->unix_sock) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
		    r->sock_path);
		unlink(r->sock_path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 ||
		    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			return -1;
	} else {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons((uint16_t)r->port);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
		    getsockname(fd, (struct sockaddr *)&sin, &sl) != 0)
			return -1;
		r->port = ntohs(sin.sin_port);
	}
	if (listen(fd, 4) != 0)
		return -1;
	return fd;
}

/* Takes lines as a receiver would, keeping only seq > last; the first
 * time last reaches stop_at it drops both sockets with whatever is still
 * unread (a SIEM that crashed) and waits to be told to come back. */
static void *
rx_main(void *arg)
{
	struct rx *r = arg;
	long long end = test_mono_ms() + 3 * WAIT_MS;
	char *buf = malloc(1 << 20);
	size_t have = 0;
	int lfd = -1, cfd = -1, stopped = 0;

	while (test_mono_ms() < end) {
		struct pollfd pf;
		ssize_t n;
		char *nl, *p;

		if (lfd < 0) {
			if ((lfd = rx_listen(r)) < 0)
				break;
			pthread_mutex_lock(&r->mu);
			r->listening = 1;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mu);
		}
		if (cfd < 0) {
			pf.fd = lfd;
			pf.events = POLLIN;
			if (poll(&pf, 1, 200) == 1)
				cfd = accept(lfd, NULL, NULL);
			have = 0;
			continue;
		}
		pf.fd = cfd;
		pf.events = POLLIN;
		if (poll(&pf, 1, 200) != 1)
			continue;
		n = read(cfd, buf + have, (1 << 20) - have - 1);
		if (n <= 0) {
			close(cfd);
			cfd = -1;
			continue;
		}
		have += (size_t)n;
		buf[have] = '\0';
		p = buf;
		while ((nl = strchr(p, '\n')) != NULL) {
			uint64_t s;

			*nl = '\0';
			s = line_seq(p);
			pthread_mutex_lock(&r->mu);
			r->lines++;
			if (s == 0)
				r->bad++;
			else if (s <= r->last)
				r->dups++;
			else if (s != r->last + 1)
				r->gaps++;
			if (s > r->last)
				r->last = s;
			pthread_cond_broadcast(&r->cv);
			pthread_mutex_unlock(&r->mu);
			p = nl + 1;
			if (!stopped && s >= r->stop_at)
				break;
		}
		memmove(buf, p, have - (size_t)(p - buf));
		have -= (size_t)(p - buf);
		if (!stopped && r->last >= r->stop_at) {
			stopped = 1;
			close(cfd);
			close(lfd);
			cfd = lfd = -1;
			pthread_mutex_lock(&r->mu);
			r->down = 1;
			r->listening = 0;
			pthread_cond_broadcast(&r->cv);
			while (!r->restart)
				pthread_cond_wait(&r->cv, &r->mu);
			pthread_mutex_unlock(&r->mu);
		}
		pthread_mutex_lock(&r->mu);
		if (r->last >= r->target) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		pthread_mutex_unlock(&r->mu);
	}
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
	free(buf);
	return NULL;
}

/* Waits (bounded) until pred holds under r->mu. */
#define RX_WAIT(r, pred) \
	do { \
		struct timespec dl_; \
		clock_gettime(CLOCK_REALTIME, &dl_); \
		dl_.tv_sec += WAIT_MS / 1000; \
		pthread_mutex_lock(&(r)->mu); \
		while (!(pred) && \
		    pthread_cond_timedwait(&(r)->cv, &(r)->mu, &dl_) != \
		        ETIMEDOUT) \
			; \
		assert_true(pred); \
		pthread_mutex_unlock(&(r)->mu); \
	} while (0)

#define N_STREAM 10000

static void
stream_restart(int unix_sock)
{
	char *dir = test_tmpdir(), *adir, *sdir;
	struct tsi_audit *a = NULL;
	struct tsi_audit_sinks *sk = NULL;
	struct tsi_audit_sink_cfg c;
	struct tsi_audit_sinks_opts o;
	struct tsi_audit_sink_stat st;
	struct rx r;
	char addr[64];
	long long *before, *during, *after;
	int i;
	size_t nb = 0, nd = 0, na = 0;

	assert_non_null(dir);
	adir = pathf("%s/audit", dir);
	sdir = pathf("%s/sinks", dir);
	memset(&r, 0, sizeof(r));
	r.unix_sock = unix_sock;
	r.sock_path = pathf("%s/siem.sock", dir);
	r.target = N_STREAM;
	r.stop_at = 3000;
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	assert_int_equal(pthread_create(&r.thr, NULL, rx_main, &r), 0);
	RX_WAIT(&r, r.listening);

	assert_int_equal(tsi_audit_open(adir, &audit_opts, &a), TSI_OK);
	memset(&c, 0, sizeof(c));
	c.name = "siem";
	if (unix_sock) {
		c.type = TSI_AUDIT_SINK_UNIX;
		c.path = r.sock_path;
	} else {
		c.type = TSI_AUDIT_SINK_TCP;
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", r.port);
		c.address = addr;
	}
	memset(&o, 0, sizeof(o));
	o.state_dir = sdir;
	o.retry_min_ms = 50;
	o.retry_max_ms = 400;
	assert_int_equal(tsi_audit_sinks_start(adir, &c, 1, &o, &sk), TSI_OK);
	tsi_audit_set_durable_cb(a, tsi_audit_sinks_notify, sk);

	before = calloc(N_STREAM, sizeof(long long));
	during = calloc(N_STREAM, sizeof(long long));
	after = calloc(N_STREAM, sizeof(long long));
	assert_true(before && during && after);
	/* before the outage: until the receiver has dropped out */
	for (i = 1; i <= 3500; i++)
		append_one(a, i, &before[nb++]);
	RX_WAIT(&r, r.down);
	/* the outage: releases go on; halfway, tsi-vault "restarts" its
	 * sinks (positions from the state dir) */
	for (; i <= 7000; i++) {
		append_one(a, i, &during[nd++]);
		if (i == 5000) {
			tsi_audit_set_durable_cb(a, NULL, NULL);
			tsi_audit_sinks_stop(sk);
			sk = NULL;
			assert_int_equal(tsi_audit_sinks_start(adir, &c, 1, &o,
			                     &sk),
			    TSI_OK);
			tsi_audit_set_durable_cb(a, tsi_audit_sinks_notify, sk);
		}
	}
	assert_int_equal(tsi_audit_sinks_stat(sk, 0, &st), TSI_OK);
	assert_int_equal(st.up, 0);
	assert_true(st.lag > 0);
	assert_true(st.errors > 0);
	/* the receiver comes back */
	pthread_mutex_lock(&r.mu);
	r.restart = 1;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	for (; i <= N_STREAM; i++)
		append_one(a, i, &after[na++]);
	RX_WAIT(&r, r.last >= N_STREAM);
	assert_int_equal(pthread_join(r.thr, NULL), 0);
	assert_int_equal(r.gaps, 0);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.last, N_STREAM);
	assert_int_equal(r.lines - r.dups, N_STREAM);
	assert_int_equal(wait_pos(sk, N_STREAM), N_STREAM);
	assert_int_equal(tsi_audit_sinks_stat(sk, 0, &st), TSI_OK);
	assert_int_equal(st.lag, 0);
	assert_int_equal(st.up, 1);
	{
		long long b50 = pct(before, nb, 50), b99 = pct(before, nb, 99);
		long long d50 = pct(during, nd, 50), d99 = pct(during, nd, 99);
		long long dmax = during[nd - 1];

		printf("# %s sink: %d records, %llu lines received, %llu "
		       "repeats dropped by seq, 0 gaps; release latency us "
		       "before p50 %lld p99 %lld, during the outage p50 %lld "
		       "p99 %lld max %lld, after p50 %lld\n",
		    unix_sock ? "unix" : "tcp", N_STREAM,
		    (unsigned long long)r.lines, (unsigned long long)r.dups,
		    b50, b99, d50, d99, dmax, pct(after, na, 50));
		/* a sink in the release path would hold releases for its
		 * connect/write timeouts while the receiver is down */
		assert_true(d99 <= 10 * b99 + 50000);
		assert_true(dmax < 3000000);
	}
	tsi_audit_set_durable_cb(a, NULL, NULL);
	tsi_audit_sinks_stop(sk);
	tsi_audit_close(a);
	free(before);
	free(during);
	free(after);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	free(r.sock_path);
	test_rmrf(dir);
	free(adir);
	free(sdir);
	free(dir);
}

static void
test_tcp_restart(void **state)
{
	(void)state;
	stream_restart(0);
}

static void
test_unix_restart(void **state)
{
	(void)state;
	stream_restart(1);
}

/* ---- a file sink under logrotate ---- */

static volatile sig_atomic_t got_hup;

static void
on_hup(int sig)
{
	(void)sig;
	got_hup = 1;
}

static int
run_wait(char *const argv[])
{
	pid_t pid = fork();
	int st = 0;

	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
			dup2(devnull, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define N_FILE 6000

static void
file_rotate(int copytruncate)
{
	char *dir = test_tmpdir(), *adir, *sdir, *log, *conf, *state;
	struct tsi_audit *a = NULL;
	struct tsi_audit_sinks *sk = NULL;
	struct tsi_audit_sink_cfg c;
	struct tsi_audit_sinks_opts o;
	struct sigaction sa;
	FILE *f;
	uint8_t *seen;
	uint64_t total = 0, s;
	char name[PATH_MAX], *line = NULL;
	size_t cap = 0;
	int i, k, rot = 0;

	assert_non_null(dir);
	adir = pathf("%s/audit", dir);
	sdir = pathf("%s/sinks", dir);
	log = pathf("%s/audit.jsonl", dir);
	conf = pathf("%s/logrotate.conf", dir);
	state = pathf("%s/logrotate.state", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	if (copytruncate)
		fprintf(f,
		    "%s {\n  copytruncate\n  rotate 20\n  nocompress\n"
		    "  missingok\n}\n",
		    log);
	else
		fprintf(f,
		    "%s {\n  create 0640\n  rotate 20\n  nocompress\n"
		    "  missingok\n  postrotate\n    kill -HUP %ld\n  "
		    "endscript\n"
		    "}\n",
		    log, (long)getpid());
	fclose(f);
	chmod(conf, 0644);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);

	assert_int_equal(tsi_audit_open(adir, &audit_opts, &a), TSI_OK);
	memset(&c, 0, sizeof(c));
	c.name = "file";
	c.type = TSI_AUDIT_SINK_FILE;
	c.path = log;
	memset(&o, 0, sizeof(o));
	o.state_dir = sdir;
	assert_int_equal(tsi_audit_sinks_start(adir, &c, 1, &o, &sk), TSI_OK);
	tsi_audit_set_durable_cb(a, tsi_audit_sinks_notify, sk);

	/* records keep coming while logrotate runs: a child rotates five
	 * times while this thread appends */
	{
		pid_t pid = fork();

		if (pid == 0) {
			char *argv[] = { "logrotate", "-f", "-s", state, conf,
				NULL };
			for (k = 0; k < 5; k++) {
				usleep(150000);
				if (run_wait(argv) != 0)
					_exit(1);
			}
			_exit(0);
		}
		assert_true(pid > 0);
		for (i = 1; i <= N_FILE; i++) {
			append_one(a, i, NULL);
			if (got_hup) {
				got_hup = 0;
				tsi_audit_sinks_reopen(sk);
				rot++;
			}
		}
		{
			int st;

			assert_int_equal(waitpid(pid, &st, 0), pid);
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
	}
	if (got_hup) {
		tsi_audit_sinks_reopen(sk);
		rot++;
	}
	assert_int_equal(wait_pos(sk, N_FILE), N_FILE);
	tsi_audit_set_durable_cb(a, NULL, NULL);
	tsi_audit_sinks_stop(sk);
	tsi_audit_close(a);
	if (!copytruncate)
		assert_true(rot >= 1);

	/* every record in exactly one of the files, each file in order */
	seen = calloc(N_FILE + 1, 1);
	assert_non_null(seen);
	for (k = -1; k <= 20; k++) {
		uint64_t prev = 0;

		if (k < 0)
			snprintf(name, sizeof(name), "%s", log);
		else
			snprintf(name, sizeof(name), "%s.%d", log, k);
		if ((f = fopen(name, "r")) == NULL)
			continue;
		while (getline(&line, &cap, f) > 0) {
			s = line_seq(line);
			assert_true(s >= 1 && s <= N_FILE);
			assert_true(s > prev);
			prev = s;
			assert_int_equal(seen[s], 0);
			seen[s] = 1;
			total++;
		}
		fclose(f);
	}
	for (i = 1; i <= N_FILE; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(total, N_FILE);
	{
		char p1[PATH_MAX];
		struct stat st1;

		snprintf(p1, sizeof(p1), "%s.1", log);
		assert_int_equal(stat(p1, &st1), 0); /* logrotate did rotate */
	}
	printf("# file sink, %s: %d records in the live file and its "
	       "rotations, each once\n",
	    copytruncate ? "copytruncate" : "create", N_FILE);
	signal(SIGHUP, SIG_DFL);
	free(line);
	free(seen);
	test_rmrf(dir);
	free(adir);
	free(sdir);
	free(log);
	free(conf);
	free(state);
	free(dir);
}

static void
test_file_copytruncate(void **state)
{
	(void)state;
	file_rotate(1);
}

static void
test_file_create(void **state)
{
	(void)state;
	file_rotate(0);
}

/* A crash between a file sink's write and its position save: the saved
 * position is behind the file; the restarted sink resumes after the
 * file's last line, so nothing is written twice. */
static void
test_file_resume_after_crash(void **state)
{
	char *dir = test_tmpdir(), *adir, *sdir, *log, *posf;
	struct tsi_audit *a = NULL;
	struct tsi_audit_sinks *sk = NULL;
	struct tsi_audit_sink_cfg c;
	struct tsi_audit_sinks_opts o;
	char *line = NULL;
	size_t cap = 0;
	uint64_t want = 1;
	FILE *f;
	int i;

	(void)state;
	assert_non_null(dir);
	adir = pathf("%s/audit", dir);
	sdir = pathf("%s/sinks", dir);
	log = pathf("%s/audit.jsonl", dir);
	posf = pathf("%s/sinks/file.pos", dir);
	assert_int_equal(tsi_audit_open(adir, &audit_opts, &a), TSI_OK);
	memset(&c, 0, sizeof(c));
	c.name = "file";
	c.type = TSI_AUDIT_SINK_FILE;
	c.path = log;
	memset(&o, 0, sizeof(o));
	o.state_dir = sdir;
	assert_int_equal(tsi_audit_sinks_start(adir, &c, 1, &o, &sk), TSI_OK);
	tsi_audit_set_durable_cb(a, tsi_audit_sinks_notify, sk);
	for (i = 1; i <= 100; i++)
		append_one(a, i, NULL);
	assert_int_equal(wait_pos(sk, 100), 100);
	tsi_audit_set_durable_cb(a, NULL, NULL);
	tsi_audit_sinks_stop(sk);
	/* the position as a crash would have left it */
	f = fopen(posf, "w");
	assert_non_null(f);
	fprintf(f, "%020d\n", 50);
	fclose(f);
	assert_int_equal(tsi_audit_sinks_start(adir, &c, 1, &o, &sk), TSI_OK);
	tsi_audit_set_durable_cb(a, tsi_audit_sinks_notify, sk);
	for (; i <= 110; i++)
		append_one(a, i, NULL);
	assert_int_equal(wait_pos(sk, 110), 110);
	tsi_audit_set_durable_cb(a, NULL, NULL);
	tsi_audit_sinks_stop(sk);
	tsi_audit_close(a);
	f = fopen(log, "r");
	assert_non_null(f);
	while (getline(&line, &cap, f) > 0)
		assert_int_equal(line_seq(line), want++);
	fclose(f);
	assert_int_equal(want, 111);
	free(line);
	test_rmrf(dir);
	free(adir);
	free(sdir);
	free(log);
	free(posf);
	free(dir);
}

/* ---- syslog into rsyslogd ---- */

#define N_SYSLOG 2000

static pid_t
rsyslog_start(const char *conf, const char *pidf, const char *sock)
{
	struct stat st;
	long long end;
	pid_t pid;
	int wst;

	unlink(pidf);
	pid = fork();
	if (pid == 0) {
		execlp("rsyslogd", "rsyslogd", "-n", "-f", conf, "-i", pidf,
		    (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	end = test_mono_ms() + WAIT_MS;
	while (stat(sock, &st) != 0 && test_mono_ms() < end &&
	    waitpid(pid, &wst, WNOHANG) == 0)
		usleep(20000);
	assert_int_equal(stat(sock, &st), 0);
	return pid;
}

static void
rsyslog_stop(pid_t pid, const char *sock)
{
	int wst;

	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	unlink(sock);
}

/* Waits (bounded) until out holds want lines; checks that they are
 * records 1..want in order, in facility local3 with the tag, and that
 * record 1000 came as a summary. */
static void
syslog_wait(const char *out, uint64_t want)
{
	long long end = test_mono_ms() + WAIT_MS;
	char *line = NULL;
	size_t cap = 0;
	uint64_t prev, s, n = 0, summaries;
	FILE *f;

	while (test_mono_ms() < end) {
		n = summaries = prev = 0;
		if ((f = fopen(out, "r")) != NULL) {
			while (getline(&line, &cap, f) > 0) {
				char *j = strchr(line, '{');
				json_t *rj;

				assert_non_null(j);
				assert_true(
				    strncmp(line, "local3 tsi-test[", 16) == 0);
				rj = json_loads(j, 0, NULL);
				assert_non_null(rj);
				s = (uint64_t)json_integer_value(
				    json_object_get(rj, "seq"));
				if (json_is_true(
				        json_object_get(rj, "truncated"))) {
					summaries++;
					assert_int_equal(s, 1000);
					assert_non_null(
					    json_object_get(rj, "hash"));
				} else
					assert_non_null(
					    json_object_get(rj, "claims"));
				json_decref(rj);
				assert_int_equal(s, prev + 1);
				prev = s;
				n++;
			}
			fclose(f);
		}
		if (n >= want)
			break;
		usleep(50000);
	}
	free(line);
	assert_int_equal(n, want);
	assert_int_equal(summaries, want >= 1000 ? 1 : 0);
}

static void
test_syslog_rsyslog(void **state)
{
	char *dir = test_tmpdir(), *adir, *sdir, *sock, *conf, *pidf, *out;
	struct tsi_audit *a = NULL;
	struct tsi_audit_sinks *sk = NULL;
	struct tsi_audit_sink_cfg c;
	struct tsi_audit_sinks_opts o;
	struct tsi_audit_sink_stat st;
	char *big;
	uint64_t s;
	pid_t pid;
	FILE *f;
	int i;
	json_t *rec;

	(void)state;
	assert_non_null(dir);
	adir = pathf("%s/audit", dir);
	sdir = pathf("%s/sinks", dir);
	sock = pathf("%s/log.sock", dir);
	conf = pathf("%s/rsyslog.conf", dir);
	pidf = pathf("%s/rsyslog.pid", dir);
	out = pathf("%s/siem.log", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
	    "global(workDirectory=\"%s\")\n"
	    "module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
	    "input(type=\"imuxsock\" Socket=\"%s\")\n"
	    "template(name=\"m\" type=\"string\" "
	    "string=\"%%syslogfacility-text%%"
	    " %%syslogtag%%%%msg%%\\n\")\n"
	    "if $syslogtag startswith \"tsi-test\" then {\n"
	    "  action(type=\"omfile\" file=\"%s\" template=\"m\")\n}\n",
	    dir, sock, out);
	fclose(f);
	pid = rsyslog_start(conf, pidf, sock);

	assert_int_equal(tsi_audit_open(adir, &audit_opts, &a), TSI_OK);
	memset(&c, 0, sizeof(c));
	c.name = "syslog";
	c.type = TSI_AUDIT_SINK_SYSLOG;
	c.path = sock;
	c.facility = LOG_LOCAL3;
	c.tag = "tsi-test";
	memset(&o, 0, sizeof(o));
	o.state_dir = sdir;
	o.retry_min_ms = 50;
	o.retry_max_ms = 400;
	assert_int_equal(tsi_audit_sinks_start(adir, &c, 1, &o, &sk), TSI_OK);
	tsi_audit_set_durable_cb(a, tsi_audit_sinks_notify, sk);
	for (i = 1; i <= N_SYSLOG; i++) {
		if (i == 1000) {
			/* over rsyslog's 8 KiB: sent as a summary naming it */
			big = calloc(1, 20001);
			assert_non_null(big);
			memset(big, 'x', 20000);
			rec = test_rec("read", "secret/data/big", "allow",
			    "dal05", "hipaaCluster", "medical", big);
			assert_int_equal(tsi_audit_append(a, rec, &s), TSI_OK);
			json_decref(rec);
			free(big);
		} else
			append_one(a, i, NULL);
		if (i == 1200) {
			/* the daemon goes away once it wrote what it got */
			assert_int_equal(wait_pos(sk, 1200), 1200);
			syslog_wait(out, 1200);
			rsyslog_stop(pid, sock);
		}
		if (i == 1600) {
			assert_int_equal(tsi_audit_sinks_stat(sk, 0, &st),
			    TSI_OK);
			assert_int_equal(st.up, 0);
			assert_int_equal(st.pos, 1200);
			pid = rsyslog_start(conf, pidf, sock);
		}
	}
	assert_int_equal(wait_pos(sk, N_SYSLOG), N_SYSLOG);
	syslog_wait(out, N_SYSLOG);
	printf("# syslog sink: %d records through rsyslogd in order, none "
	       "lost while it was down, the one over 8 KiB as a summary\n",
	    N_SYSLOG);
	tsi_audit_set_durable_cb(a, NULL, NULL);
	tsi_audit_sinks_stop(sk);
	tsi_audit_close(a);
	rsyslog_stop(pid, sock);
	test_rmrf(dir);
	free(adir);
	free(sdir);
	free(sock);
	free(conf);
	free(pidf);
	free(out);
	free(dir);
}

static void
test_check(void **state)
{
	struct tsi_audit_sink_cfg c;
	char err[160];
	int fac;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.name = "siem";
	c.type = TSI_AUDIT_SINK_TCP;
	c.address = "127.0.0.1:6514";
	assert_int_equal(tsi_audit_sink_check(&c, err, sizeof(err)), TSI_OK);
	c.address = "127.0.0.1";
	assert_int_equal(tsi_audit_sink_check(&c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	c.address = "[::1]:6514";
	assert_int_equal(tsi_audit_sink_check(&c, err, sizeof(err)), TSI_OK);
	c.name = "../x";
	assert_int_equal(tsi_audit_sink_check(&c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	c.name = "f";
	c.type = TSI_AUDIT_SINK_FILE;
	c.path = "relative.log";
	assert_int_equal(tsi_audit_sink_check(&c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_int_equal(tsi_audit_sink_facility("local0", &fac), TSI_OK);
	assert_int_equal(fac, LOG_LOCAL0);
	assert_int_equal(tsi_audit_sink_facility("local9", &fac),
	    TSI_ERR_CONFIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_tcp_restart),
		cmocka_unit_test(test_unix_restart),
		cmocka_unit_test(test_file_copytruncate),
		cmocka_unit_test(test_file_create),
		cmocka_unit_test(test_file_resume_after_crash),
		cmocka_unit_test(test_syslog_rsyslog),
	};

	tsi_log_init("test_sink", TSI_LOG_WARN);
	/* TSI_TEST_FILTER=test_tcp_restart runs one case */
	if (getenv("TSI_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TSI_TEST_FILTER"));
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
