/*
 * Trickling connections against a real tsi-vault over TLS (issue
 * "Hardening II" item 2; docs/vault.md, "Connections"): TLS connections
 * from several loopback addresses (127.0.0.2 to .5) each send one byte of
 * a request head a second, more of them than the server has slots. Before
 * the fix every slot stayed taken (each byte reset the inactivity
 * timeout) and legitimate reads timed out. Now:
 *  - a trickling connection is closed within request_timeout even though
 *    it keeps sending;
 *  - during the attack, KV reads on new connections from 127.0.0.1 all
 *    succeed, with their p50/p99 printed next to those without the attack.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* The server's request_timeout: its default, left out of the config so
 * that the same test runs against a server from before the fix. */
#define REQUEST_TIMEOUT 10
#define CONN_LIMIT 96
#define PER_IP 32
#define ATTACK_ADDRS 4                       /* 127.0.0.2 .. 127.0.0.5 */
#define ATTACK_CONNS (ATTACK_ADDRS * PER_IP) /* 128 > CONN_LIMIT */
#define READS 40
#define READ_TIMEOUT_MS 5000

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct slot {
	SSL *ssl;
	int fd;
	double opened, last, next_try;
	int addr; /* 2..5: 127.0.0.addr */
};

struct attack {
	int port;
	SSL_CTX *ctx;
	struct slot s[ATTACK_CONNS];
	size_t nslots;
	volatile int stop;
	double deadline; /* the attack ends by itself */
	/* Results, read after join. */
	int open_now; /* atomic: connections up */
	unsigned long closures;
	double max_life; /* longest a connection lived */
	unsigned long bytes;
};

/* A TLS connection from 127.0.0.addr to the server; 0 on success. */
static int
slot_open(struct attack *a, struct slot *sl)
{
	struct sockaddr_in src, dst;
	struct timeval tv = { 1, 0 };
	int fd;

	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl((127u << 24) | (unsigned)sl->addr);
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)a->port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
		close(fd);
		return -1;
	}
	sl->ssl = SSL_new(a->ctx);
	SSL_set_fd(sl->ssl, fd);
	if (SSL_connect(sl->ssl) != 1) {
		ERR_clear_error();
		SSL_free(sl->ssl);
		sl->ssl = NULL;
		close(fd);
		return -1;
	}
	sl->fd = fd;
	sl->opened = sl->last = now_s();
	/* The first byte of a request head that never ends. */
	if (SSL_write(sl->ssl, "G", 1) == 1)
		a->bytes++;
	return 0;
}

/* by_server: the server closed it (counted); else the attack ends. */
static void
slot_close(struct attack *a, struct slot *sl, double now, int by_server)
{
	double life = now - sl->opened;

	if (by_server) {
		if (life > a->max_life)
			a->max_life = life;
		__atomic_fetch_add(&a->closures, 1, __ATOMIC_RELAXED);
	}
	SSL_free(sl->ssl);
	close(sl->fd);
	sl->ssl = NULL;
	sl->next_try = now + 0.2;
	__atomic_fetch_sub(&a->open_now, 1, __ATOMIC_RELAXED);
}

static void *
attack_main(void *arg)
{
	struct attack *a = arg;
	static const char head[] =
	    "ET /v1/sys/health HTTP/1.1\r\nHost: x\r\n"
	    "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	size_t i;

	while (!a->stop && now_s() < a->deadline) {
		for (i = 0; i < a->nslots && !a->stop; i++) {
			struct slot *sl = &a->s[i];
			double now = now_s();
			struct pollfd p;

			if (sl->ssl == NULL) {
				if (now < sl->next_try)
					continue;
				if (slot_open(a, sl) == 0)
					__atomic_fetch_add(&a->open_now, 1,
					    __ATOMIC_RELAXED);
				else
					sl->next_try = now + 0.5;
				continue;
			}
			/* Closed by the server: end of stream or an alert. */
			p.fd = sl->fd;
			p.events = POLLIN | POLLRDHUP;
			p.revents = 0;
			if (poll(&p, 1, 0) > 0) {
				slot_close(a, sl, now, 1);
				continue;
			}
			if (now - sl->last >= 1.0) {
				size_t off = (size_t)((now - sl->opened)) %
				    (sizeof(head) - 1);
				if (SSL_write(sl->ssl, head + off, 1) != 1) {
					ERR_clear_error();
					slot_close(a, sl, now, 1);
					continue;
				}
				a->bytes++;
				sl->last = now;
			}
		}
		usleep(100 * 1000);
	}
	for (i = 0; i < a->nslots; i++)
		if (a->s[i].ssl != NULL)
			slot_close(a, &a->s[i], now_s(), 0);
	return NULL;
}

static void
attack_init(struct attack *a, int port, size_t n, double seconds)
{
	size_t i;

	memset(a, 0, sizeof(*a));
	a->port = port;
	a->nslots = n;
	a->deadline = now_s() + seconds;
	a->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(a->ctx);
	SSL_CTX_set_verify(a->ctx, SSL_VERIFY_NONE, NULL);
	for (i = 0; i < n; i++)
		a->s[i].addr = 2 + (int)(i % ATTACK_ADDRS);
}

static size_t
discard(void *p, size_t sz, size_t n, void *u)
{
	return sz * n;
}

/* One KV read on a new connection from 127.0.0.1; its latency in ms, or
 * -1 when it failed (no 200 within READ_TIMEOUT_MS). */
static double
legit_read(struct vfx *f)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[256], hdr[200];
	long status = 0;
	double t0 = now_s(), ms;
	CURLcode rc;

	snprintf(url, sizeof(url), "%s/v1/secret/data/app/config", f->addr);
	snprintf(hdr, sizeof(hdr), "X-Vault-Token: %s", f->root);
	h = curl_slist_append(h, hdr);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CAINFO, f->tls_ca);
	curl_easy_setopt(c, CURLOPT_INTERFACE, "host!127.0.0.1");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)READ_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	ms = (now_s() - t0) * 1000.0;
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK && status == 200 ? ms : -1.0;
}

static int
cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

/* READS reads, one every pace_ms at most (spread over several
 * request_timeouts when paced); failures count as READ_TIMEOUT_MS.
 * Returns the failures. */
static int
measure(struct vfx *f, const char *label, int pace_ms, double *p50, double *p99)
{
	double ms[READS];
	int i, failed = 0;

	for (i = 0; i < READS; i++) {
		if (i > 0 && pace_ms > 0)
			usleep((useconds_t)pace_ms * 1000);
		ms[i] = legit_read(f);
		if (ms[i] < 0) {
			failed++;
			ms[i] = READ_TIMEOUT_MS;
		}
	}
	qsort(ms, READS, sizeof(double), cmp_d);
	*p50 = ms[READS / 2];
	*p99 = ms[(READS * 99) / 100 < READS ? (READS * 99) / 100 : READS - 1];
	printf("# legitimate reads %s: %d/%d ok, p50 %.1f ms, p99 %.1f ms\n",
	    label, READS - failed, READS, *p50, *p99);
	return failed;
}

static int
setup(void **state)
{
	struct vfx *f = calloc(1, sizeof(*f));
	char extra[256];

	snprintf(extra, sizeof(extra),
	    "connection_limit = %d;\nper_ip_connection_limit = %d;\n"
	    "connection_timeout = 30;\n",
	    CONN_LIMIT, PER_IP);
	if (f == NULL || vfx_init(f, NULL, extra) != 0 || vfx_start(f) != 0)
		return -1;
	if (vfx_kv_put(f, f->root, "app/config",
	        "{\"data\":{\"password\":\"s3cret\"}}") != 200)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct vfx *f = *state;

	if (f == NULL)
		return 0;
	vfx_cleanup(f);
	free(f);
	return 0;
}

/* One connection that keeps sending a byte a second is closed within
 * request_timeout (plus the reaper's tick and a loaded machine's slack),
 * not kept for as long as it trickles. */
static void
test_trickler_closed(void **state)
{
	struct vfx *f = *state;
	struct attack *a = calloc(1, sizeof(*a));
	pthread_t t;

	assert_non_null(a);
	attack_init(a, f->port, 1, REQUEST_TIMEOUT + 12);
	assert_int_equal(pthread_create(&t, NULL, attack_main, a), 0);
	while (now_s() < a->deadline &&
	    __atomic_load_n(&a->closures, __ATOMIC_RELAXED) == 0)
		usleep(100 * 1000);
	a->stop = 1;
	pthread_join(t, NULL);
	printf("# one trickler: %lu bytes sent, closed after %.1f s\n",
	    a->bytes, a->max_life);
	assert_true(a->closures >= 1);
	assert_true(a->bytes >= 2); /* it did keep sending */
	assert_true(a->max_life >= REQUEST_TIMEOUT - 0.5);
	assert_true(a->max_life <= REQUEST_TIMEOUT + 6);
	SSL_CTX_free(a->ctx);
	free(a);
}

static void
test_reads_during_trickle_flood(void **state)
{
	struct vfx *f = *state;
	struct attack *a = calloc(1, sizeof(*a));
	double p50, p99, b50, b99, t0;
	pthread_t t;
	int failed;

	assert_non_null(a);
	assert_int_equal(measure(f, "without attack", 0, &b50, &b99), 0);
	attack_init(a, f->port, ATTACK_CONNS, 120);
	assert_int_equal(pthread_create(&t, NULL, attack_main, a), 0);
	/* The attack holds the server's slots: wait (bounded) until more
	 * connections are up than it has. */
	t0 = now_s();
	while (now_s() - t0 < 30 &&
	    __atomic_load_n(&a->open_now, __ATOMIC_RELAXED) < CONN_LIMIT)
		usleep(100 * 1000);
	printf("# attack: %d trickling TLS connections up from %d addresses "
	       "after %.1f s\n",
	    __atomic_load_n(&a->open_now, __ATOMIC_RELAXED), ATTACK_ADDRS,
	    now_s() - t0);
	failed = measure(f, "during attack", 400, &p50, &p99);
	a->stop = 1;
	pthread_join(t, NULL);
	printf("# attack: %lu connections closed by the server, longest "
	       "lived %.1f s\n",
	    a->closures, a->max_life);
	assert_int_equal(failed, 0);
	assert_true(p99 < 3000.0);
	/* No trickling connection outlived the deadline by much. */
	assert_true(a->max_life <= REQUEST_TIMEOUT + 6);
	SSL_CTX_free(a->ctx);
	free(a);
	/* Both rules show in the metrics (the deadline from the test before,
	 * on the same server). */
	{
		struct vresp r;
		const char *p;
		memset(&r, 0, sizeof(r));
		assert_int_equal(vfx_http(f, NULL, "GET",
		                     "/v1/sys/metrics?format=prometheus", NULL,
		                     NULL, &r),
		    0);
		assert_int_equal(r.status, 200);
		p = strstr(r.body,
		    "tsi_vault_connections_closed_total{reason="
		    "\"request_timeout\"} ");
		assert_non_null(p);
		assert_true(atol(strchr(p, ' ') + 1) >= 1);
		p = strstr(r.body,
		    "tsi_vault_connections_closed_total{reason="
		    "\"evicted\"} ");
		assert_non_null(p);
		assert_true(atol(strchr(p, ' ') + 1) >= 1);
		vresp_clear(&r);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trickler_closed),
		cmocka_unit_test(test_reads_during_trickle_flood),
	};

	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
