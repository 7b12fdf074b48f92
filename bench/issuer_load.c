/*
 * issuer_load.c - load generator for tsi-issuer's Unix-socket HTTP API.
 *
 * N caller threads, each with its own keep-alive connection, send
 * "GET <path>" back to back for the given time and count the answers that are
 * 200 and contain the expected text (a token). A connection the server closes
 * is reopened and counted.
 *
 *   issuer_load --socket PATH [--path /v1/token?aud=tsi-vault]
 *               [--callers 32] [--seconds 5] [--expect "\"token\""]
 *               [--header "Name: value"]
 *
 * Prints one JSON object: {"ok", "errors", "reconnects", "seconds",
 * "per_sec", "p50_ms", "p99_ms", "callers"}. Exit 0 when at least one answer
 * was good and none was bad, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 65536
#define HIST_BUCKETS 100000 /* 10 us each: up to 1 s */
#define HIST_US 10

struct caller {
	pthread_t th;
	const char *sock_path;
	const char *req;
	size_t req_len;
	const char *expect;
	double deadline;
	unsigned long long ok, errors, reconnects;
	uint32_t *hist;
	char last_error[160];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
dial(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Case-insensitive search for a header line "name: value" in hdr (length n);
 * returns the value's start or NULL. */
static const char *
find_header(const char *hdr, size_t n, const char *name)
{
	size_t nl = strlen(name), i;

	for (i = 0; i + nl + 1 < n; i++) {
		if ((i == 0 || hdr[i - 1] == '\n') &&
		    strncasecmp(hdr + i, name, nl) == 0 && hdr[i + nl] == ':') {
			const char *v = hdr + i + nl + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	}
	return NULL;
}

/* Reads one response. Returns the status, or -1 on error / closed.
 * *close_after set when the server will close the connection. */
static int
read_response(int fd, char *buf, size_t cap, const char **body,
    size_t *body_len, int *close_after, char *err, size_t errlen)
{
	size_t have = 0, hdr_len = 0, clen = 0;
	const char *end = NULL, *v;
	int status;

	*close_after = 0;
	for (;;) {
		ssize_t r;

		if (end == NULL) {
			buf[have] = '\0';
			if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
				hdr_len = (size_t)(end - buf) + 4;
				if (sscanf(buf, "HTTP/1.%*d %d", &status) !=
				    1) {
					snprintf(err, errlen,
					    "bad status line");
					return -1;
				}
				if (find_header(buf, hdr_len,
				        "Transfer-Encoding") != NULL) {
					snprintf(err, errlen,
					    "chunked responses not supported");
					return -1;
				}
				if ((v = find_header(buf, hdr_len,
				         "Content-Length")) == NULL) {
					snprintf(err, errlen,
					    "no Content-Length");
					return -1;
				}
				clen = strtoul(v, NULL, 10);
				if (clen > cap - 1 - hdr_len) {
					snprintf(err, errlen,
					    "response too large");
					return -1;
				}
				v = find_header(buf, hdr_len, "Connection");
				if (v != NULL &&
				    strncasecmp(v, "close", 5) == 0)
					*close_after = 1;
			}
		}
		if (end != NULL && have >= hdr_len + clen)
			break;
		if (have >= cap - 1) {
			snprintf(err, errlen, "response header too large");
			return -1;
		}
		r = recv(fd, buf + have, cap - 1 - have, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "connection closed by server");
			return -1;
		}
		have += (size_t)r;
	}
	if (have != hdr_len + clen) {
		snprintf(err, errlen, "pipelined bytes after the response");
		return -1;
	}
	buf[have] = '\0';
	*body = buf + hdr_len;
	*body_len = clen;
	return status;
}

static void *
run_caller(void *arg)
{
	struct caller *c = arg;
	char *buf = malloc(RESP_MAX);
	int fd = -1;

	if (buf == NULL) {
		snprintf(c->last_error, sizeof(c->last_error), "out of memory");
		c->errors++;
		return NULL;
	}
	while (now_s() < c->deadline) {
		const char *body;
		size_t body_len;
		int status, close_after;
		double t0;
		size_t us;

		if (fd < 0) {
			if ((fd = dial(c->sock_path)) < 0) {
				snprintf(c->last_error, sizeof(c->last_error),
				    "connect %s: %s", c->sock_path,
				    strerror(errno));
				c->errors++;
				usleep(10000);
				continue;
			}
			c->reconnects++;
		}
		t0 = now_s();
		if (send_all(fd, c->req, c->req_len) != 0) {
			snprintf(c->last_error, sizeof(c->last_error),
			    "send failed");
			c->errors++;
			close(fd);
			fd = -1;
			continue;
		}
		status = read_response(fd, buf, RESP_MAX, &body, &body_len,
		    &close_after, c->last_error, sizeof(c->last_error));
		us = (size_t)((now_s() - t0) * 1e6);
		if (status == 200 &&
		    (c->expect == NULL ||
		        memmem(body, body_len, c->expect, strlen(c->expect)) !=
		            NULL)) {
			c->ok++;
			c->hist[us / HIST_US < HIST_BUCKETS
			        ? us / HIST_US
			        : HIST_BUCKETS - 1]++;
		} else {
			if (status >= 0)
				snprintf(c->last_error, sizeof(c->last_error),
				    "status %d: %.100s", status, body);
			c->errors++;
		}
		if (status < 0 || close_after) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static double
percentile(const uint64_t *hist, unsigned long long total, double p)
{
	unsigned long long want = (unsigned long long)(p * (double)total),
	                   seen = 0;
	size_t i;

	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > want)
			return (double)((i + 1) * HIST_US) / 1000.0;
	}
	return (double)(HIST_BUCKETS * HIST_US) / 1000.0;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: issuer_load --socket PATH [--path P] "
	    "[--callers N] [--seconds S] [--expect TEXT] [--header H]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL, *path = "/v1/token?aud=tsi-vault";
	const char *expect = "\"token\"", *header = NULL;
	long callers = 32;
	double seconds = 5, t0, t1;
	struct caller *cs = NULL;
	uint64_t *hist = NULL;
	unsigned long long ok = 0, errors = 0, reconnects = 0;
	char req[1024];
	int i, n, ret = 1;
	long k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--callers") == 0 && i + 1 < argc)
			callers = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc)
			header = argv[++i];
		else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			expect = argv[++i][0] != '\0' ? argv[i] : NULL;
		else
			return usage();
	}
	if (sock == NULL || callers < 1 || callers > 1024 || seconds <= 0)
		return usage();
	n = snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	    "Accept: application/json\r\n%s%s\r\n",
	    path, header != NULL ? header : "", header != NULL ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return usage();

	cs = calloc((size_t)callers, sizeof(*cs));
	hist = calloc(HIST_BUCKETS, sizeof(*hist));
	if (cs == NULL || hist == NULL)
		goto out;
	t0 = now_s();
	for (k = 0; k < callers; k++) {
		cs[k].sock_path = sock;
		cs[k].req = req;
		cs[k].req_len = (size_t)n;
		cs[k].expect = expect;
		cs[k].deadline = t0 + seconds;
		if ((cs[k].hist = calloc(HIST_BUCKETS, sizeof(uint32_t))) ==
		        NULL ||
		    pthread_create(&cs[k].th, NULL, run_caller, &cs[k]) != 0) {
			fprintf(stderr,
			    "issuer_load: cannot start caller %ld\n", k);
			callers = k;
			free(cs[k].hist);
			cs[k].hist = NULL;
			break;
		}
	}
	for (k = 0; k < callers; k++) {
		size_t b;

		pthread_join(cs[k].th, NULL);
		ok += cs[k].ok;
		errors += cs[k].errors;
		reconnects += cs[k].reconnects;
		for (b = 0; b < HIST_BUCKETS; b++)
			hist[b] += cs[k].hist[b];
		if (cs[k].last_error[0] != '\0')
			fprintf(stderr, "issuer_load: caller %ld: %s\n", k,
			    cs[k].last_error);
	}
	t1 = now_s();
	printf("{\"ok\": %llu, \"errors\": %llu, \"reconnects\": %llu, "
	       "\"seconds\": %.3f, \"per_sec\": %.1f, ",
	    ok, errors, reconnects, t1 - t0, (double)ok / (t1 - t0));
	if (ok > 0)
		printf("\"p50_ms\": %.3f, \"p99_ms\": %.3f, ",
		    percentile(hist, ok, 0.50), percentile(hist, ok, 0.99));
	else
		printf("\"p50_ms\": null, \"p99_ms\": null, ");
	printf("\"callers\": %ld}\n", callers);
	ret = ok > 0 && errors == 0 ? 0 : 1;
out:
	if (cs != NULL)
		for (k = 0; k < callers; k++)
			free(cs[k].hist);
	free(cs);
	free(hist);
	return ret;
}
