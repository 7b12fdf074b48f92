/* tsi_audit_submit: one callback per accepted record, after it is durable;
 * failure callbacks within the bound while a commit hangs; close runs the
 * callbacks of everything still queued; refused records get none. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_int.h"
#include "tsi/log.h"

#define N 600

struct slot {
	int calls;
	int rc;
	uint64_t seq;
	long long at_ms;
};

struct book {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot s[N];
	int done;
};

/* One book for the running test. */
static struct book g;

static void
g_cb(void *arg, int rc, uint64_t seq)
{
	struct slot *s = arg;

	pthread_mutex_lock(&g.mu);
	s->calls++;
	s->rc = rc;
	s->seq = seq;
	s->at_ms = test_mono_ms();
	g.done++;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

static void
g_reset(void)
{
	memset(g.s, 0, sizeof(g.s));
	g.done = 0;
}

static int
g_wait(int want, int ms)
{
	long long end = test_mono_ms() + ms;
	int got;

	pthread_mutex_lock(&g.mu);
	while (g.done < want && test_mono_ms() < end) {
		pthread_mutex_unlock(&g.mu);
		usleep(2000);
		pthread_mutex_lock(&g.mu);
	}
	got = g.done;
	pthread_mutex_unlock(&g.mu);
	return got;
}

static json_t *
rec_n(int i)
{
	return test_rec("read", "secret/data/a", i % 2 ? "allow" : "deny",
	    "dal05", "c1", "ns", "sha256:aa");
}

static void
test_submit_many(void **state)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;
	json_t *rec;
	int i;

	(void)state;
	g_reset();
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	for (i = 0; i < N; i++) {
		rec = rec_n(i);
		assert_int_equal(tsi_audit_submit(a, rec, g_cb, &g.s[i]),
		    TSI_OK);
		json_decref(rec);
	}
	assert_int_equal(g_wait(N, 10000), N);
	/* each exactly once, all durable, seqs in submission order */
	for (i = 0; i < N; i++) {
		assert_int_equal(g.s[i].calls, 1);
		assert_int_equal(g.s[i].rc, TSI_OK);
		assert_int_equal(g.s[i].seq, (uint64_t)i + 1);
	}
	tsi_audit_close(a);
	for (i = 0; i < N; i++)
		assert_int_equal(g.s[i].calls, 1);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(vr.records, N);
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
}

/* A commit that hangs (the batch held in flight): the record in it and the
 * records queued behind it get their failure callbacks at their deadlines,
 * not when the commit returns; the in-flight one then lands and is
 * annotated, the queued ones are never written. */
static void
test_submit_hung_commit(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_status st;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	json_t *rec;
	long long t0;
	uint64_t seq = 0;
	int i;

	(void)state;
	g_reset();
	o.commit_timeout_ms = 200;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	audit_test_hold(a, 0, 1200);
	t0 = test_mono_ms();
	rec = rec_n(0);
	assert_int_equal(tsi_audit_submit(a, rec, g_cb, &g.s[0]), TSI_OK);
	/* Until the committer has taken the first (it is then in flight). */
	for (i = 0; i < 2500; i++) {
		tsi_audit_status(a, &st);
		if (st.queue_depth == 0)
			break;
		usleep(2000);
	}
	assert_int_equal(st.queue_depth, 0);
	for (i = 1; i < 4; i++)
		assert_int_equal(tsi_audit_submit(a, rec, g_cb, &g.s[i]),
		    TSI_OK);
	json_decref(rec);
	assert_int_equal(g_wait(4, 1000), 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(g.s[i].calls, 1);
		assert_int_equal(g.s[i].rc, TSI_ERR_AUDIT);
		assert_int_equal(g.s[i].seq, 0);
		print_message("record %d failed after %lld ms\n", i,
		    g.s[i].at_ms - t0);
		/* within the bound (plus scheduling), long before the
		 * commit returns */
		assert_true(g.s[i].at_ms - t0 >= 190);
		assert_true(g.s[i].at_ms - t0 < 700);
	}
	tsi_audit_status(a, &st);
	assert_int_equal(st.failed, 4);
	audit_test_hold(a, 0, 0);
	/* The held commit lands late and is annotated by itself. */
	assert_int_equal(test_wait_seq(a, 2, 10000), 2);
	rec = rec_n(9);
	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	json_decref(rec);
	/* 1: the late one, 2: its annotation, 3: ours; the queued three never
	 * took a seq */
	assert_int_equal(seq, 3);
	for (i = 0; i < 4; i++)
		assert_int_equal(g.s[i].calls, 1);
	tsi_audit_close(a);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_get(r, 2, &rec), TSI_OK);
	assert_string_equal(json_string_value(json_object_get(rec, "op")),
	    "audit.late_commit");
	json_decref(rec);
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
}

/* Close drains: every accepted record is committed and called back before
 * tsi_audit_close returns; afterwards nothing is accepted. */
static void
test_submit_close_drains(void **state)
{
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	json_t *rec;
	int i;

	(void)state;
	g_reset();
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	rec = rec_n(1);
	for (i = 0; i < 300; i++)
		assert_int_equal(tsi_audit_submit(a, rec, g_cb, &g.s[i]),
		    TSI_OK);
	tsi_audit_close(a);
	pthread_mutex_lock(&g.mu);
	assert_int_equal(g.done, 300);
	pthread_mutex_unlock(&g.mu);
	for (i = 0; i < 300; i++) {
		assert_int_equal(g.s[i].calls, 1);
		assert_int_equal(g.s[i].rc, TSI_OK);
	}
	json_decref(rec);
	test_rmrf(dir);
	free(dir);
}

static void
test_submit_refused(void **state)
{
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	json_t *rec;

	(void)state;
	g_reset();
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	rec = json_pack("{s:s,s:s}", "op", "read", "decision", "perhaps");
	assert_int_equal(tsi_audit_submit(a, rec, g_cb, &g.s[0]),
	    TSI_ERR_INVALID_ARG);
	json_decref(rec);
	assert_int_equal(tsi_audit_submit(a, NULL, g_cb, &g.s[0]),
	    TSI_ERR_INVALID_ARG);
	rec = rec_n(1);
	assert_int_equal(tsi_audit_submit(a, rec, NULL, NULL),
	    TSI_ERR_INVALID_ARG);
	json_decref(rec);
	tsi_audit_close(a);
	usleep(50 * 1000);
	assert_int_equal(g.done, 0);
	assert_int_equal(g.s[0].calls, 0);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_many),
		cmocka_unit_test(test_submit_hung_commit),
		cmocka_unit_test(test_submit_close_drains),
		cmocka_unit_test(test_submit_refused),
	};

	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	tsi_log_init("test", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
