/* The group-commit hold (opts.commit_delay_us): after a batch of two or
 * more, a burst that starts on the idle log shares one synced commit; the
 * hold is bounded while records keep coming; a caller alone never waits;
 * a record after a batch waits one slice at most when nothing follows it;
 * close does not wait for it. Slices are tens or hundreds of milliseconds
 * here so that a loaded machine does not change the outcome; the product
 * uses hundreds of microseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_int.h"
#include "tsi/log.h"

static void
submit_one(struct tsi_audit *a, struct test_sub *s, int i)
{
	char path[64];
	json_t *rec;

	snprintf(path, sizeof(path), "secret/data/hold/%d", i);
	rec = test_rec("read", path, "allow", "dc1", "c1", "ns", "sha256:aa");
	assert_int_equal(tsi_audit_submit(a, rec, test_sub_done, s), TSI_OK);
	json_decref(rec);
}

static struct tsi_audit *
open_log(const char *dir, int delay_us)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit *a = NULL;

	o.commit_delay_us = delay_us;
	o.commit_timeout_ms = 30000;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	return a;
}

/* Three records committed in one batch (the committer held while they
 * queue): the sign of concurrency the hold looks for. */
static void
batch_of_three(struct tsi_audit *a)
{
	struct test_sub s;

	test_sub_init(&s, 3);
	audit_test_hold(a, 100, 0);
	submit_one(a, &s, 100);
	submit_one(a, &s, 101);
	submit_one(a, &s, 102);
	test_sub_wait(&s);
	audit_test_hold(a, 0, 0);
	assert_int_equal(s.failed, 0);
}

/* Until the committer waits for work: a burst then starts from idle. */
static void
wait_idle(struct tsi_audit *a)
{
	int i;

	for (i = 0; i < 5000 && !audit_test_idle(a); i++)
		usleep(1000);
	assert_true(audit_test_idle(a));
}

static uint64_t
commits(struct tsi_audit *a)
{
	struct tsi_audit_status st;

	tsi_audit_status(a, &st);
	return st.commits;
}

/* After a batch, five records 3 ms apart on the idle log, 200 ms slices:
 * one more commit. Without the hold the first of them is committed at
 * once. */
static void
test_burst_shares_commit(void **state)
{
	struct tsi_audit *a;
	struct test_sub s;
	char *dir = test_tmpdir();
	uint64_t c0;
	int i;

	(void)state;
	a = open_log(dir, 200000);
	batch_of_three(a);
	c0 = commits(a);
	assert_true(c0 >= 1);
	wait_idle(a);
	test_sub_init(&s, 5);
	for (i = 0; i < 5; i++) {
		submit_one(a, &s, i);
		usleep(3000);
	}
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	assert_int_equal(commits(a), c0 + 1);
	tsi_audit_close(a);
	test_rmrf(dir);

	a = open_log(dir, 0);
	batch_of_three(a);
	c0 = commits(a);
	/* One record, committed, then another: two commits. */
	test_sub_init(&s, 1);
	submit_one(a, &s, 0);
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	test_sub_init(&s, 1);
	submit_one(a, &s, 1);
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	assert_int_equal(commits(a), c0 + 2);
	tsi_audit_close(a);
	test_rmrf(dir);
	free(dir);
}

/* Records that keep coming (every 5 ms for 1 s) do not hold the commit
 * beyond AUDIT_HOLD_SLICES slices of 20 ms. */
static void
test_hold_is_bounded(void **state)
{
	struct tsi_audit *a;
	struct test_sub s;
	char *dir = test_tmpdir();
	long long end_ms;
	int i;

	(void)state;
	a = open_log(dir, 20000);
	batch_of_three(a);
	test_sub_init(&s, 200);
	for (i = 0; i < 200; i++) {
		submit_one(a, &s, i);
		usleep(5000);
	}
	end_ms = test_mono_ms();
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	/* the first commit landed while records were still being submitted */
	assert_true(s.first_done_ms < end_ms);
	assert_true(commits(a) >= 2);
	tsi_audit_close(a);
	test_rmrf(dir);
	free(dir);
}

/* A caller alone (one record per batch) never waits for the hold; a
 * record right after a batch of three waits one slice (nothing else
 * came), then commits. */
static void
test_lone_records(void **state)
{
	struct tsi_audit *a;
	struct test_sub s;
	char *dir = test_tmpdir();
	long long t0;
	int i;

	(void)state;
	a = open_log(dir, 1000000); /* 1 s slices */
	for (i = 0; i < 3; i++) {
		test_sub_init(&s, 1);
		t0 = test_mono_ms();
		submit_one(a, &s, i);
		test_sub_wait(&s);
		assert_int_equal(s.failed, 0);
		assert_true(s.first_done_ms - t0 < 900);
	}
	assert_int_equal(commits(a), 3);
	batch_of_three(a);
	wait_idle(a);
	test_sub_init(&s, 1);
	t0 = test_mono_ms();
	submit_one(a, &s, 9);
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	assert_true(s.first_done_ms - t0 >= 1000);
	tsi_audit_close(a);
	test_rmrf(dir);
	free(dir);
}

/* Close during a hold: the record is still committed, and close does not
 * sit out the remaining slices. */
static void
test_close_during_hold(void **state)
{
	struct tsi_audit *a;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_info info;
	struct test_sub s;
	char *dir = test_tmpdir();
	long long t0;

	(void)state;
	a = open_log(dir, 5000000); /* 5 s slices */
	batch_of_three(a);
	test_sub_init(&s, 3);
	submit_one(a, &s, 0);
	submit_one(a, &s, 1);
	submit_one(a, &s, 2);
	usleep(50 * 1000);
	t0 = test_mono_ms();
	tsi_audit_close(a);
	assert_true(test_mono_ms() - t0 < 4000);
	assert_int_equal(s.left, 0);
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	assert_int_equal(info.records, 6);
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_shares_commit),
		cmocka_unit_test(test_hold_is_bounded),
		cmocka_unit_test(test_lone_records),
		cmocka_unit_test(test_close_during_hold),
	};

	tsi_log_init("test", TSI_LOG_ERROR + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
