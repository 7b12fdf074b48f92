/* audit_test.h - helpers shared by the audit tests (header-only; include
 * it after cmocka.h). */
#ifndef TSI_AUDIT_TEST_H
#define TSI_AUDIT_TEST_H

#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "tsi/audit.h"
#include "tsi/err.h"

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void
test_rmrf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under TMPDIR; the caller removes it with test_rmrf. */
static inline char *
test_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char tmpl[512];
	char *d;

	snprintf(tmpl, sizeof(tmpl), "%s/tsi-audit-XXXXXX", t ? t : "/tmp");
	d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static inline long long
test_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for records submitted with tsi_audit_submit: test_sub_init(s, n),
 * n submits with test_sub_done as the callback and s as its argument, then
 * test_sub_wait(s). failed counts callbacks with an error; first_done_ms is
 * when the first callback came (test_mono_ms). */
struct test_sub {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int left, failed;
	long long first_done_ms;
};

static inline void
test_sub_init(struct test_sub *s, int n)
{
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->left = n;
	s->failed = 0;
	s->first_done_ms = 0;
}

static inline void
test_sub_done(void *arg, int rc, uint64_t seq)
{
	struct test_sub *s = arg;

	(void)seq;
	pthread_mutex_lock(&s->mu);
	if (rc != TSI_OK)
		s->failed++;
	if (s->first_done_ms == 0)
		s->first_done_ms = test_mono_ms();
	s->left--;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static inline void
test_sub_wait(struct test_sub *s)
{
	pthread_mutex_lock(&s->mu);
	while (s->left > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

/* A record as tsi-vault would write it. */
static inline json_t *
test_rec(const char *op, const char *path, const char *decision, const char *dc,
    const char *cluster, const char *ns, const char *image)
{
	json_t *claims = json_pack("{s:s,s:s,s:s,s:[s],s:s}", "datacenter", dc,
	    "cluster-name", cluster, "namespace", ns, "images", image, "sub",
	    "spiffe://tsi.example/ns/x/sa/y");

	return json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:i}", "op",
	    op, "path", path, "version", 1, "decision", decision, "rule",
	    "medical-records", "reason", "matched", "claims", claims,
	    "accessor", "acc-1234", "remote", "127.0.0.1", "request_id",
	    "req-1", "status", 200);
}

/* Appends n "read" records to a: record i has path paths[i % npaths] and
 * decision "deny" when i % deny_every == 0, else "allow". */
static inline void
test_fill(struct tsi_audit *a, int n, const char *const *paths, size_t npaths,
    int deny_every)
{
	json_t *rec;
	uint64_t seq;
	int i;

	for (i = 0; i < n; i++) {
		rec = test_rec("read", paths[(size_t)i % npaths],
		    i % deny_every ? "allow" : "deny", "dal05", "c1", "ns",
		    "sha256:aa");
		assert_non_null(rec);
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		json_decref(rec);
	}
}

/* Waits until the log's last committed seq reaches want (a commit the
 * test cannot wait for otherwise: one whose caller already gave up).
 * Returns the last seq seen; bounded by ms. */
static inline uint64_t
test_wait_seq(struct tsi_audit *a, uint64_t want, int ms)
{
	long long end = test_mono_ms() + ms;
	struct tsi_audit_status st;

	for (;;) {
		tsi_audit_status(a, &st);
		if (st.last_seq >= want || test_mono_ms() >= end)
			return st.last_seq;
		usleep(2000);
	}
}

#endif /* TSI_AUDIT_TEST_H */
