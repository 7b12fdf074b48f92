/* Audit failure behaviour: bounded appends, a full map, a full disk, and
 * records whose callers timed out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mount.h>
#include <fcntl.h>
#include <pthread.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_int.h"
#include "tsi/log.h"

static char pad[1501];

/* about 2 KiB: the small maps fill in a few hundred appends */
static json_t *
rec_n(int i)
{
	json_t *r;

	if (pad[0] == '\0')
		memset(pad, 'p', sizeof(pad) - 1);
	r = test_rec("read",
	    i % 2 ? "secret/data/medical/a" : "secret/data/x/y",
	    i % 3 ? "allow" : "deny", "dal05", "hipaaCluster", "medical",
	    "sha256:"
	    "4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a");
	json_object_set_new(r, "reason", json_string(pad));
	return r;
}

static int
append_one(struct tsi_audit *a, int i, uint64_t *seq, long long *ms)
{
	json_t *rec = rec_n(i);
	long long t0 = test_mono_ms();
	int rc = tsi_audit_append(a, rec, seq);

	*ms = test_mono_ms() - t0;
	json_decref(rec);
	return rc;
}

static void
assert_intact(const char *dir, uint64_t want_records)
{
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	if (tsi_audit_verify(r, &vr) != TSI_OK)
		fail_msg("verify: seq %llu: %s",
		    (unsigned long long)vr.first_bad_seq, vr.reason);
	if (want_records)
		assert_int_equal(vr.records, want_records);
	tsi_audit_reader_close(r);
}

struct filler {
	struct tsi_audit *a;
	pthread_mutex_t mu;
	int stop, ok, failed;
	long long max_fail_ms;
	long quota; /* appends in all (0: until the first failure) */
	long taken;
};

static void *
fill_thread(void *arg)
{
	struct filler *f = arg;
	uint64_t seq;
	long long ms;
	int rc, i;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		if (f->stop || (f->quota && f->taken == f->quota)) {
			pthread_mutex_unlock(&f->mu);
			return NULL;
		}
		i = (int)f->taken++;
		pthread_mutex_unlock(&f->mu);
		rc = append_one(f->a, i, &seq, &ms);
		pthread_mutex_lock(&f->mu);
		if (rc == TSI_OK) {
			f->ok++;
		} else {
			if (rc != TSI_ERR_AUDIT)
				f->failed = -1000000;
			f->failed++;
			if (ms > f->max_fail_ms)
				f->max_fail_ms = ms;
			if (!f->quota)
				f->stop = 1;
		}
		pthread_mutex_unlock(&f->mu);
	}
}

/* Appends from 8 threads (group commit keeps this fast): quota records, or
 * until the first failure when quota is 0. Returns the successes. */
static int
fill(struct tsi_audit *a, long quota, int timeout_ms)
{
	struct filler f;
	pthread_t th[8];
	int i;

	memset(&f, 0, sizeof(f));
	f.a = a;
	f.quota = quota;
	pthread_mutex_init(&f.mu, NULL);
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fill_thread, &f),
		    0);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&f.mu);
	if (quota) {
		assert_int_equal(f.failed, 0);
		assert_int_equal(f.ok, quota);
	} else {
		assert_true(f.failed >= 1); /* only TSI_ERR_AUDIT failures */
		print_message("full after %d records, slowest failure %lld "
		              "ms\n",
		    f.ok, f.max_fail_ms);
		assert_true(f.max_fail_ms <= timeout_ms + 250);
	}
	return f.ok;
}

/* Fills until full, then appends one at a time until one fails (a batch
 * can fail where a single record still fits): the log is then unhealthy and
 * failed appends did not move the head. */
static int
fill_until_full(struct tsi_audit *a, int timeout_ms, uint64_t base)
{
	struct tsi_audit_status st;
	uint64_t seq;
	long long ms;
	int n = fill(a, 0, timeout_ms), i, rc = TSI_OK;

	for (i = 0; i < 500 && rc == TSI_OK; i++) {
		rc = append_one(a, i, &seq, &ms);
		if (rc == TSI_OK)
			n++;
	}
	assert_int_equal(rc, TSI_ERR_AUDIT);
	assert_true(ms <= timeout_ms + 250);
	tsi_audit_status(a, &st);
	assert_int_equal(st.healthy, 0);
	assert_int_equal(st.last_seq, base + (uint64_t)n);
	return n;
}

static void
test_map_full_then_retention(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_status st;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	uint64_t seq = 0, before;
	long long ms;
	size_t pruned = 0;
	int n, i;

	(void)state;
	o.map_size = 1 << 20;
	o.commit_timeout_ms = 500;
	o.batch_max = 64;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	n = fill_until_full(a, o.commit_timeout_ms, 0);
	assert_true(n > 50);
	tsi_audit_status(a, &st);
	assert_int_equal(st.healthy, 0);
	assert_non_null(strstr(st.last_error, "MDB_MAP_FULL"));
	assert_true(st.failed >= 1);
	before = st.last_seq;
	assert_int_equal(before, (uint64_t)n);

	/* the operator bounds the log by size: pruning frees the map */
	tsi_audit_set_retention(a, 0, 256 * 1024);
	assert_int_equal(tsi_audit_prune(a, &pruned), TSI_OK);
	print_message("pruned %zu records\n", pruned);
	assert_true(pruned > 0);
	for (i = 0; i < 50; i++) {
		assert_int_equal(append_one(a, i, &seq, &ms), TSI_OK);
		assert_int_equal(seq, before + 1 + (uint64_t)i);
	}
	tsi_audit_status(a, &st);
	assert_int_equal(st.healthy, 1);
	assert_string_equal(st.last_error, "");
	tsi_audit_close(a);
	assert_intact(dir, 0);
	test_rmrf(dir);
	free(dir);
}

static void
test_map_grows(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_info info;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	long long ms;
	uint64_t seq;
	int n;

	(void)state;
	o.map_size = 1 << 20;
	o.map_max = 4 << 20;
	o.commit_timeout_ms = 500;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	/* past what 1 MiB holds, then up to 4 MiB, then full */
	fill(a, 500, o.commit_timeout_ms);
	n = fill_until_full(a, o.commit_timeout_ms, 500);
	assert_true(n > 200);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	assert_int_equal(info.map_size, (size_t)4 << 20);
	assert_int_equal(info.last_seq, 500 + (uint64_t)n);
	tsi_audit_reader_close(r);
	tsi_audit_close(a);
	assert_intact(dir, 500 + (uint64_t)n);
	/* reopened with a bigger map: appends work again */
	o.map_size = 8 << 20;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	assert_int_equal(append_one(a, 0, &seq, &ms), TSI_OK);
	assert_int_equal(seq, 501 + (uint64_t)n);
	tsi_audit_close(a);
	assert_intact(dir, 501 + (uint64_t)n);
	test_rmrf(dir);
	free(dir);
}

static void
test_size_retention_keeps_running(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_info info;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();

	(void)state;
	o.map_size = 1 << 20;
	o.retain_bytes = 300 * 1024;
	/* What is tested is pruning, not the time bound: a generous bound
	 * keeps 8 writers on a loaded machine (or under ASan) from timing
	 * out. */
	o.commit_timeout_ms = 10000;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	fill(a, 1200, o.commit_timeout_ms);
	tsi_audit_close(a);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	print_message("first_seq %llu, records %llu, live %zu bytes\n",
	    (unsigned long long)info.first_seq,
	    (unsigned long long)info.records, info.live_bytes);
	assert_true(info.first_seq > 1);
	assert_int_equal(info.last_seq, 1200);
	assert_int_equal(info.records, 1200 - info.first_seq + 1);
	tsi_audit_reader_close(r);
	assert_intact(dir, 1200 - info.first_seq + 1);
	test_rmrf(dir);
	free(dir);
}

static void
test_timeout_while_queued_is_dropped(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_status st;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	uint64_t seq = 0;
	long long ms;
	int i, rc = TSI_ERR_AUDIT;

	(void)state;
	o.commit_timeout_ms = 150;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	assert_int_equal(append_one(a, 0, &seq, &ms), TSI_OK);
	assert_int_equal(seq, 1);
	audit_test_hold(a, 700, 0);
	/* the hold starts with the next batch */
	assert_int_equal(append_one(a, 1, &seq, &ms), TSI_ERR_AUDIT);
	print_message("timed out in %lld ms\n", ms);
	assert_true(ms >= 140 && ms < 600);
	tsi_audit_status(a, &st);
	assert_int_equal(st.failed, 1);
	audit_test_hold(a, 0, 0);
	/* The committer sleeps out the hold it began (up to 700 ms): until
	 * then an append times out too, and takes no seq either. */
	for (i = 0; i < 40; i++)
		if ((rc = append_one(a, 2, &seq, &ms)) == TSI_OK)
			break;
	assert_int_equal(rc, TSI_OK);
	/* the dropped records never took a seq */
	assert_int_equal(seq, 2);
	tsi_audit_close(a);
	assert_intact(dir, 2);
	test_rmrf(dir);
	free(dir);
}

static void
test_timeout_in_flight_is_marked(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	json_t *rec = NULL;
	uint64_t seq = 0;
	long long ms;

	(void)state;
	o.commit_timeout_ms = 150;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	audit_test_hold(a, 0, 600);
	assert_int_equal(append_one(a, 1, &seq, &ms), TSI_ERR_AUDIT);
	assert_true(ms >= 140 && ms < 500);
	audit_test_hold(a, 0, 0);
	/* The held commit lands late and is annotated by itself. */
	assert_int_equal(test_wait_seq(a, 2, 10000), 2);
	assert_int_equal(append_one(a, 2, &seq, &ms), TSI_OK);
	/* 1: the late record, 2: the note that it was not acknowledged, 3: ours */
	assert_int_equal(seq, 3);
	tsi_audit_close(a);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_get(r, 2, &rec), TSI_OK);
	assert_string_equal(json_string_value(json_object_get(rec, "op")),
	    "audit.late_commit");
	assert_int_equal(json_integer_value(json_object_get(rec, "ref_seq")),
	    1);
	assert_string_equal(json_string_value(json_object_get(rec, "decision")),
	    "error");
	json_decref(rec);
	tsi_audit_reader_close(r);
	assert_intact(dir, 3);
	test_rmrf(dir);
	free(dir);
}

/* ENOSPC from a real file system: a 2 MiB tmpfs. */
static void
test_disk_full(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_status st;
	struct tsi_audit *a = NULL;
	char *mnt = test_tmpdir(), dir[600], filler[600];
	char block[65536];
	uint64_t seq = 0, before;
	long long ms;
	int fd, n, i;

	(void)state;
	if (mount("tsi-audit-test", mnt, "tmpfs", 0, "size=2m") != 0) {
		test_rmrf(mnt);
		free(mnt);
		skip(); /* not permitted here (needs root / CAP_SYS_ADMIN) */
	}
	snprintf(dir, sizeof(dir), "%s/audit", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	/* leave about 600 KiB for the log */
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	memset(block, 0x5a, sizeof(block));
	for (i = 0; i < 22; i++)
		assert_int_equal(write(fd, block, sizeof(block)),
		    sizeof(block));
	close(fd);
	o.map_size = 64 << 20; /* the map is not the limit: the disk is */
	o.commit_timeout_ms = 500;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	n = fill_until_full(a, o.commit_timeout_ms, 0);
	assert_true(n > 20);
	tsi_audit_status(a, &st);
	print_message("last error: %s\n", st.last_error);
	assert_int_equal(st.healthy, 0);
	/* LMDB reports a short write as EIO, a failed one as ENOSPC */
	assert_true(strstr(st.last_error, "No space") != NULL ||
	    strstr(st.last_error, "Input/output") != NULL);
	before = st.last_seq;
	assert_int_equal(before, (uint64_t)n);
	/* space comes back: appends succeed again and the chain goes on */
	assert_int_equal(unlink(filler), 0);
	for (i = 0; i < 20; i++) {
		assert_int_equal(append_one(a, i, &seq, &ms), TSI_OK);
		assert_int_equal(seq, before + 1 + (uint64_t)i);
	}
	tsi_audit_status(a, &st);
	assert_int_equal(st.healthy, 1);
	tsi_audit_close(a);
	assert_intact(dir, before + 20);
	assert_int_equal(umount(mnt), 0);
	test_rmrf(mnt);
	free(mnt);
}

static long long t_start;

static int
t_setup(void **state)
{
	(void)state;
	t_start = test_mono_ms();
	return 0;
}

static int
t_teardown(void **state)
{
	(void)state;
	print_message("(%lld ms)\n", test_mono_ms() - t_start);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_map_full_then_retention,
		    t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_map_grows, t_setup,
		    t_teardown),
		cmocka_unit_test_setup_teardown(
		    test_size_retention_keeps_running, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    test_timeout_while_queued_is_dropped, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(
		    test_timeout_in_flight_is_marked, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, t_setup,
		    t_teardown),
	};

	tsi_log_init("test", TSI_LOG_ERROR + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
