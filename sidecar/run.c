/*
 * The two modes of tsi-sidecar.
 *
 * --once: every secret is fetched; transient failures (issuer or server
 * unreachable, 5xx) are retried with exponential backoff up to retry_max
 * attempts; a refusal (403, 404, a login rejected, a workload the issuer
 * cannot identify) is final at once. Exit 0 only when every file is written.
 *
 * refresh: the same fetch, repeated every refresh_interval (+-20% jitter so
 * that a node's pods do not all hit the server at once). The client token is
 * renewed by a fresh login at two thirds of its lease. A secret that is no
 * longer released (403 or 404 with a valid token) has its file removed.
 * SIGTERM/SIGINT end the process within a second: the sleep is a poll on a
 * self-pipe, and transfers are aborted by curl's progress callback.
 */
#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static long long main_us = -1; /* monotonic time main started, -1 unknown */
static int stop_pipe[2] = { -1, -1 };

struct ctx {
	struct tsi_sidecar_settings *st;
	struct tsi_sidecar_http *http;
	int dirfd;
	char *ctoken;          /* vault client token, wiped when freed */
	long long renew_at_ms; /* monotonic time of the next login */
	long long start_ms;
	long long exec_ms; /* process age at start_ms, -1 unknown */
	long long last_write_ms;
	/* Where the time went, in us (--once: for the summary line). */
	long long us_setup;  /* main to the run: settings, libcurl */
	long long us_issuer; /* the issuer's token (reads' connections
				  * made meanwhile) */
	long long us_login;  /* waiting for the login (a vault commit) */
	long long us_reads;  /* reads in flight (vault commits) */
	long long us_files;  /* fsyncs, renames, directory fsync */
	/* Per secret, for fetch_batch (spec->n entries each). */
	struct tsi_sidecar_read_req *reqs;
	int *res;
	char (*why)[512];
	unsigned char *want;
	size_t *map;   /* request k of a batch -> secret */
	int *answered; /* the batch's answer for it has arrived */
	struct tsi_sidecar_staged *staged; /* file waiting for the commit */
	unsigned char (*digest)[32];       /* of the staged content */
	long long *version;                /* of the staged content */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * How long ago, in ms, the kernel started this process (exec, dynamic
 * linking, library constructors: what a pod waits for before main runs).
 * From /proc/self/stat's starttime against CLOCK_BOOTTIME; 10 ms
 * resolution. -1 when unknown.
 */
static long long
ms_since_exec(void)
{
	char buf[1024], *p;
	unsigned long long start = 0;
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);
	ssize_t n;
	int fd, field;

	if (hz <= 0 || (fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces and ')': skip to the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* p+2 is field 3 (state); starttime is field 22. */
	for (p += 2, field = 3; field < 22 && p != NULL; field++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL || sscanf(p, "%llu", &start) != 1 ||
	    clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
		return -1;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
	    (long long)(start * 1000 / (unsigned long long)hz);
}

void
tsi_sidecar_mark_main(void)
{
	main_us = now_us();
}

static uint32_t
rnd32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint32_t)now_ms();
	return v;
}

static void
on_signal(int sig)
{
	int saved = errno;
	char c = 1;

	stop_flag = 1;
	if (stop_pipe[1] >= 0)
		(void)!write(stop_pipe[1], &c, 1);
	errno = saved;
}

static int
install_signals(void)
{
	struct sigaction sa;

	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return TSI_ERR_IO;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0)
		return TSI_ERR_IO;
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	return TSI_OK;
}

/* Sleeps ms unless a signal arrives; returns nonzero when told to stop. */
static int
sleep_or_stop(long ms)
{
	long long until = now_ms() + ms, left;
	struct pollfd p;

	while (!stop_flag) {
		left = until - now_ms();
		if (left <= 0)
			break;
		p.fd = stop_pipe[0];
		p.events = POLLIN;
		p.revents = 0;
		(void)poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
	}
	return stop_flag != 0;
}

static void
drop_token(struct ctx *c)
{
	tsi_strfree(c->ctoken);
	c->ctoken = NULL;
}

/* Issuer token, then login. The JWT lives only for this call. */
static int
do_login(struct ctx *c, char *err, size_t errlen)
{
	char *jwt = NULL;
	long long exp = 0, lease = 0, t0, t1;
	int r;

	drop_token(c);
	/* The reads' connections open while the token and login are
	 * waited for. */
	tsi_sidecar_warm_up(c->http, c->st->spec->n);
	t0 = now_us();
	r = tsi_sidecar_get_token(c->http, &jwt, &exp, err, errlen);
	t1 = now_us();
	c->us_issuer += t1 - t0;
	if (r != TSI_OK)
		return r;
	r = tsi_sidecar_login(c->http, jwt, &c->ctoken, &lease, err, errlen);
	c->us_login += now_us() - t1;
	tsi_strfree(jwt);
	if (r != TSI_OK)
		return r;
	/* Log in again at two thirds of the lease: the old token still
	 * works while the new login is under way. */
	c->renew_at_ms = lease > 0 ? now_ms() + lease * 2000 / 3 : LLONG_MAX;
	tsi_log(TSI_LOG_INFO, "login.ok", TSI_LS("role", c->st->role),
	    TSI_LI("lease_duration", lease));
	return TSI_OK;
}

static void
sha256(const void *p, size_t n, unsigned char out[32])
{
	unsigned int len = 32;

	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
}

/*
 * First half of writing secret s's file: renders data (taken, and dropped
 * before the write: one copy at a time) and, when the content differs from
 * what is on disk, stages it (c->staged[s]) for commit_staged. TSI_OK also
 * when nothing needs writing.
 */
static int
stage_one(struct ctx *c, size_t s, json_t *data, long long version, char *err,
    size_t errlen)
{
	struct tsi_sidecar_secret *sec = &c->st->spec->v[s];
	struct tsi_buf *content = NULL;
	int r;

	r = tsi_sidecar_render(sec, data, &content, err, errlen);
	json_decref(data);
	if (r != TSI_OK)
		goto out;
	/* --once writes every file once: no digest to compare with (and no
	 * OpenSSL digest fetch on the way to the first file). */
	if (!c->st->once) {
		sha256(tsi_buf_ptr(content), tsi_buf_len(content),
		    c->digest[s]);
		if (sec->on_disk &&
		    memcmp(c->digest[s], sec->digest, sizeof(sec->digest)) == 0)
			goto out; /* r == TSI_OK: unchanged */
	}
	r = tsi_sidecar_stage_file(c->dirfd, sec->dest, tsi_buf_ptr(content),
	    tsi_buf_len(content), &c->staged[s], err, errlen);
	c->version[s] = version;
out:
	tsi_buf_free(content);
	return r;
}

/*
 * Second half: puts every staged file in place at once (each file fsync'd,
 * each directory once), sets c->res and c->why of those secrets.
 */
static void
commit_staged(struct ctx *c)
{
	struct tsi_sidecar_spec *sp = c->st->spec;
	struct tsi_sidecar_staged v[TSI_SIDECAR_MAX_SECRETS];
	size_t idx[TSI_SIDECAR_MAX_SECRETS], k = 0, i, s;
	int res[TSI_SIDECAR_MAX_SECRETS];
	static char errs[TSI_SIDECAR_MAX_SECRETS][512];
	long long t0;

	for (s = 0; s < sp->n && k < TSI_SIDECAR_MAX_SECRETS; s++)
		if (c->staged[s].fd >= 0) {
			v[k] = c->staged[s];
			c->staged[s].fd = -1;
			c->staged[s].parent = -1;
			idx[k++] = s;
		}
	if (k == 0)
		return;
	t0 = now_us();
	tsi_sidecar_commit_files(v, k, res, &errs[0][0], sizeof(errs[0]));
	c->us_files += now_us() - t0;
	c->last_write_ms = now_ms();
	for (i = 0; i < k; i++) {
		struct tsi_sidecar_secret *sec = &sp->v[idx[i]];
		s = idx[i];
		c->res[s] = res[i];
		if (res[i] != TSI_OK) {
			(void)snprintf(c->why[s], sizeof(c->why[s]), "%s",
			    errs[i]);
			continue;
		}
		memcpy(sec->digest, c->digest[s], sizeof(sec->digest));
		sec->on_disk = 1;
		tsi_log(TSI_LOG_INFO, "secret.written",
		    TSI_LS("name", sec->name), TSI_LS("path", sec->path),
		    TSI_LS("dest", sec->dest),
		    TSI_LS("format", tsi_sidecar_format_name(sec->format)),
		    TSI_LI("version", c->version[s]),
		    TSI_LI("ms_since_start", c->last_write_ms - c->start_ms));
	}
}

/* Reads one secret and writes its file when the content changed. */
static int
fetch_one(struct ctx *c, size_t s, char *err, size_t errlen)
{
	json_t *data = NULL;
	long long version = 0;
	int r;

	r = tsi_sidecar_read(c->http, c->ctoken, c->st->spec->v[s].path, &data,
	    &version, err, errlen);
	if (r != TSI_OK)
		return r;
	c->res[s] = r = stage_one(c, s, data, version, err, errlen);
	if (r != TSI_OK)
		return r;
	commit_staged(c);
	if ((r = c->res[s]) != TSI_OK)
		(void)snprintf(err, errlen, "%s", c->why[s]);
	return r;
}

/* A read of the batch answered: its file is staged at once, so the disk
 * works while the other reads are still on their way. */
static void
on_read(void *arg, size_t k, struct tsi_sidecar_read_req *q)
{
	struct ctx *c = arg;
	size_t s = c->map[k];

	c->answered[s] = 1;
	c->why[s][0] = '\0';
	if (q->r != TSI_OK) {
		c->res[s] = q->r;
		(void)snprintf(c->why[s], sizeof(c->why[s]), "%s", q->err);
		return;
	}
	c->res[s] =
	    stage_one(c, s, q->data, q->version, c->why[s], sizeof(c->why[s]));
	q->data = NULL; /* taken */
}

/*
 * Reads every secret i with want[i] set, concurrently, and writes those
 * that came back, all in one commit. c->res[i] gets the outcome, c->why[i]
 * the reason.
 */
static void
fetch_batch(struct ctx *c, const unsigned char *want)
{
	struct tsi_sidecar_spec *sp = c->st->spec;
	struct tsi_sidecar_read_req *q = c->reqs;
	size_t k = 0, i, s;
	long long t0;
	int r;

	for (i = 0; i < sp->n && k < TSI_SIDECAR_MAX_SECRETS; i++)
		if (want[i]) {
			q[k].path = sp->v[i].path;
			c->answered[i] = 0;
			c->map[k++] = i;
		}
	t0 = now_us();
	r = tsi_sidecar_read_many(c->http, c->ctoken, q, k, on_read, c);
	c->us_reads += now_us() - t0;
	for (i = 0; i < k; i++) {
		s = c->map[i];
		json_decref(q[i].data); /* only if not taken (never, today) */
		q[i].data = NULL;
		if (c->answered[s])
			continue;
		/* A batch that failed as a whole (out of memory) may work
		 * next time; a request's own failure keeps its class. */
		c->res[s] =
		    (r != TSI_OK && q[i].r == TSI_ERR_INTERNAL && !stop_flag)
		    ? TSI_ERR_AGAIN
		    : q[i].r;
		(void)snprintf(c->why[s], sizeof(c->why[s]), "%s", q[i].err);
	}
	commit_staged(c);
}

static void
set_reason(struct tsi_sidecar_secret *sec, int r, const char *why)
{
	sec->last_err = r;
	(void)snprintf(sec->reason, sizeof(sec->reason), "%s", why);
}

static int
run_once(struct ctx *c)
{
	struct tsi_sidecar_spec *sp = c->st->spec;
	char err[512];
	size_t i, pending, written = 0, failed = 0;
	int attempt, attempts = 0, r, interrupted = 0;

	for (attempt = 0;; attempt++) {
		attempts = attempt + 1;
		if (stop_flag) {
			interrupted = 1;
			break;
		}
		err[0] = '\0';
		if (c->ctoken == NULL &&
		    (r = do_login(c, err, sizeof(err))) != TSI_OK) {
			if (stop_flag) {
				interrupted = 1;
				break;
			}
			for (i = 0; i < sp->n; i++)
				if (!sp->v[i].done) {
					set_reason(&sp->v[i], r, err);
					if (tsi_sidecar_is_final(r))
						sp->v[i].done = 1;
				}
			if (tsi_sidecar_is_final(r))
				break;
		} else {
			for (i = 0; i < sp->n; i++)
				c->want[i] = !sp->v[i].done;
			fetch_batch(c, c->want);
			for (i = 0; i < sp->n; i++) {
				struct tsi_sidecar_secret *sec = &sp->v[i];
				if (!c->want[i])
					continue;
				r = c->res[i];
				set_reason(sec, r, c->why[i]);
				if (stop_flag && r != TSI_OK)
					continue; /* interrupted, not refused */
				if (r == TSI_OK || tsi_sidecar_is_final(r))
					sec->done = 1;
			}
		}
		for (pending = 0, i = 0; i < sp->n; i++)
			pending += !sp->v[i].done;
		if (pending == 0)
			break;
		if (stop_flag) {
			interrupted = 1;
			break;
		}
		if (attempt + 1 >= c->st->retry_max)
			break;
		{
			long d = tsi_sidecar_backoff_ms((unsigned)attempt,
			    c->st->retry_base_ms, c->st->retry_cap_ms, rnd32());
			tsi_log(TSI_LOG_WARN, "fetch.retry",
			    TSI_LI("attempt", attempt + 1),
			    TSI_LI("of", c->st->retry_max),
			    TSI_LI("pending", pending), TSI_LI("delay_ms", d));
			if (sleep_or_stop(d)) {
				interrupted = 1;
				break;
			}
		}
	}
	for (i = 0; i < sp->n; i++) {
		struct tsi_sidecar_secret *sec = &sp->v[i];
		if (sec->last_err == TSI_OK && sec->done) {
			written++;
			continue;
		}
		failed++;
		tsi_log(TSI_LOG_ERROR, "secret.failed",
		    TSI_LS("name", sec->name), TSI_LS("path", sec->path),
		    TSI_LS("dest", sec->dest),
		    TSI_LS("error", tsi_strerror(sec->last_err)),
		    TSI_LS("final",
		        !sec->done ? (interrupted ? "interrupted"
		                                  : "gave up after retries")
		            : (sec->last_err == TSI_ERR_DENIED ||
		                  sec->last_err == TSI_ERR_NOT_FOUND ||
		                  sec->last_err == TSI_ERR_UNIDENTIFIED)
		            ? "refused"
		            : "failed, not retried"),
		    TSI_LI("attempts", attempts),
		    TSI_LS("reason", sec->reason));
	}
	tsi_log(failed ? TSI_LOG_ERROR : TSI_LOG_INFO, "sidecar.done",
	    TSI_LS("mode", "once"), TSI_LI("written", written),
	    TSI_LI("failed", failed),
	    TSI_LI("ms_to_last_file",
	        written ? c->last_write_ms - c->start_ms : -1),
	    TSI_LI("ms_exec_to_last_file",
	        written && c->exec_ms >= 0
	            ? c->last_write_ms - c->start_ms + c->exec_ms
	            : -1),
	    TSI_LI("ms_total", now_ms() - c->start_ms),
	    TSI_LI("us_main", main_us >= 0 ? now_us() - main_us : -1),
	    TSI_LI("us_setup", c->us_setup), TSI_LI("us_issuer", c->us_issuer),
	    TSI_LI("us_login", c->us_login), TSI_LI("us_reads", c->us_reads),
	    TSI_LI("us_files", c->us_files));
	return failed ? 1 : 0;
}

static void
remove_secret(struct ctx *c, struct tsi_sidecar_secret *sec, const char *why)
{
	char err[256];

	if (!sec->on_disk)
		return;
	if (tsi_sidecar_remove_file(c->dirfd, sec->dest, err, sizeof(err)) !=
	    TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "secret.remove_failed",
		    TSI_LS("name", sec->name), TSI_LS("reason", err));
		return;
	}
	sec->on_disk = 0;
	memset(sec->digest, 0, sizeof(sec->digest));
	tsi_log(TSI_LOG_WARN, "secret.removed", TSI_LS("name", sec->name),
	    TSI_LS("dest", sec->dest), TSI_LS("reason", why));
}

static int
run_refresh(struct ctx *c)
{
	struct tsi_sidecar_spec *sp = c->st->spec;
	char err[512];
	unsigned backoff = 0;
	size_t i, ok;
	int r, transient, fresh, ready = 0;
	long d;

	while (!stop_flag) {
		transient = 0;
		fresh = 0;
		err[0] = '\0';
		if (c->ctoken == NULL || now_ms() >= c->renew_at_ms) {
			if ((r = do_login(c, err, sizeof(err))) != TSI_OK) {
				if (stop_flag)
					break;
				if (r == TSI_ERR_DENIED ||
				    r == TSI_ERR_UNIDENTIFIED) {
					/* Nothing is released any more. */
					tsi_log(TSI_LOG_ERROR, "login.refused",
					    TSI_LS("reason", err));
					for (i = 0; i < sp->n; i++)
						remove_secret(c, &sp->v[i],
						    err);
					d = tsi_sidecar_jitter_ms(
					    c->st->refresh_ms, rnd32());
				} else {
					/* Unreachable, or broken in a way an
					 * operator must fix (certificate):
					 * keep the files, keep trying. */
					tsi_log(tsi_sidecar_is_final(r)
					        ? TSI_LOG_ERROR
					        : TSI_LOG_WARN,
					    "login.retry",
					    TSI_LS("reason", err));
					d = tsi_sidecar_backoff_ms(backoff++,
					    c->st->retry_base_ms,
					    c->st->retry_cap_ms, rnd32());
				}
				sleep_or_stop(d);
				continue;
			}
			fresh = 1;
		}
		memset(c->want, 1, sp->n);
		fetch_batch(c, c->want);
		for (ok = 0, i = 0; i < sp->n && !stop_flag; i++) {
			struct tsi_sidecar_secret *sec = &sp->v[i];
			r = c->res[i];
			(void)snprintf(err, sizeof(err), "%s", c->why[i]);
			if (r == TSI_ERR_DENIED && !fresh) {
				/* Maybe our token expired early (server
				 * restart): one fresh login decides. */
				if ((r = do_login(c, err, sizeof(err))) ==
				    TSI_OK) {
					fresh = 1;
					r = fetch_one(c, i, err, sizeof(err));
				}
			}
			if (r == TSI_OK) {
				ok++;
				continue;
			}
			if (stop_flag)
				break;
			if (r == TSI_ERR_DENIED || r == TSI_ERR_NOT_FOUND ||
			    r == TSI_ERR_UNIDENTIFIED) {
				tsi_log(TSI_LOG_WARN, "secret.not_released",
				    TSI_LS("name", sec->name),
				    TSI_LS("reason", err));
				remove_secret(c, sec, err);
			} else if (tsi_sidecar_is_final(r)) {
				tsi_log(TSI_LOG_ERROR, "secret.failed",
				    TSI_LS("name", sec->name),
				    TSI_LS("error", tsi_strerror(r)),
				    TSI_LS("reason", err));
			} else {
				transient = 1;
				tsi_log(TSI_LOG_WARN, "secret.retry",
				    TSI_LS("name", sec->name),
				    TSI_LS("reason", err));
			}
		}
		if (stop_flag)
			break;
		if (!ready && ok == sp->n) {
			ready = 1;
			tsi_log(TSI_LOG_INFO, "sidecar.ready",
			    TSI_LS("mode", "refresh"), TSI_LI("written", ok),
			    TSI_LI("ms_to_last_file",
			        c->last_write_ms - c->start_ms),
			    TSI_LI("ms_exec_to_last_file",
			        c->exec_ms >= 0 ? c->last_write_ms -
			                c->start_ms + c->exec_ms
			                        : -1));
		}
		if (transient) {
			d = tsi_sidecar_backoff_ms(backoff++,
			    c->st->retry_base_ms, c->st->retry_cap_ms, rnd32());
		} else {
			backoff = 0;
			d = tsi_sidecar_jitter_ms(c->st->refresh_ms, rnd32());
		}
		sleep_or_stop(d);
	}
	tsi_log(TSI_LOG_INFO, "sidecar.stopped", TSI_LS("mode", "refresh"));
	return 0;
}

int
tsi_sidecar_run(struct tsi_sidecar_settings *st)
{
	struct ctx c;
	char err[512];
	size_t i;
	int rc = 1, staged_ready = 0;

	memset(&c, 0, sizeof(c));
	c.st = st;
	c.dirfd = -1;
	c.start_ms = now_ms();
	c.exec_ms = ms_since_exec();
	if (install_signals() != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "sidecar.signals",
		    TSI_LS("reason", strerror(errno)));
		goto out;
	}
	if (tsi_sidecar_dir_open(st->dest_dir, &c.dirfd, err, sizeof(err)) !=
	    TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "sidecar.dest_dir",
		    TSI_LS("reason", err));
		goto out;
	}
	if ((c.reqs = calloc(st->spec->n, sizeof(*c.reqs))) == NULL ||
	    (c.res = calloc(st->spec->n, sizeof(*c.res))) == NULL ||
	    (c.why = calloc(st->spec->n, sizeof(*c.why))) == NULL ||
	    (c.want = calloc(st->spec->n, 1)) == NULL ||
	    (c.map = calloc(st->spec->n, sizeof(*c.map))) == NULL ||
	    (c.answered = calloc(st->spec->n, sizeof(*c.answered))) == NULL ||
	    (c.staged = calloc(st->spec->n, sizeof(*c.staged))) == NULL ||
	    (c.digest = calloc(st->spec->n, sizeof(*c.digest))) == NULL ||
	    (c.version = calloc(st->spec->n, sizeof(*c.version))) == NULL) {
		tsi_log(TSI_LOG_ERROR, "sidecar.alloc",
		    TSI_LS("reason", "out of memory"));
		goto out;
	}
	for (i = 0; i < st->spec->n; i++) {
		c.staged[i].fd = -1;
		c.staged[i].parent = -1;
	}
	staged_ready = 1;
	if (tsi_sidecar_http_new(st, &stop_flag, &c.http) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "sidecar.http",
		    TSI_LS("reason", "cannot initialise libcurl"));
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "sidecar.start",
	    TSI_LS("mode", st->once ? "once" : "refresh"),
	    TSI_LS("role", st->role), TSI_LS("vault_addr", st->vault_addr),
	    TSI_LS("issuer_socket", st->issuer_socket),
	    TSI_LS("dest_dir", st->dest_dir), TSI_LI("count", st->spec->n));
	c.us_setup = main_us >= 0 ? now_us() - main_us : -1;
	rc = st->once ? run_once(&c) : run_refresh(&c);
out:
	drop_token(&c);
	tsi_sidecar_http_free(c.http);
	free(c.reqs);
	free(c.res);
	if (c.why != NULL)
		explicit_bzero(c.why, st->spec->n * sizeof(*c.why));
	free(c.why);
	free(c.want);
	free(c.map);
	free(c.answered);
	for (i = 0; staged_ready && i < st->spec->n; i++)
		tsi_sidecar_stage_drop(&c.staged[i]);
	free(c.staged);
	if (c.digest != NULL)
		explicit_bzero(c.digest, st->spec->n * sizeof(*c.digest));
	free(c.digest);
	free(c.version);
	if (c.dirfd >= 0)
		close(c.dirfd);
	return rc;
}
