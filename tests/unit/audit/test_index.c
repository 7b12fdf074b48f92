/* The committer's index entries, written through cursors kept for a whole
 * batch (the time index appended), are exactly the entries the reference
 * path (audit_index_update, used by retention to delete them) derives from
 * each stored record; and the committer's cached time formatting gives the
 * bytes gmtime_r + strftime give. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <lmdb.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_int.h"
#include "tsi/log.h"

#define NREC 700

/* Records whose index values vary the way a vault's do, plus the odd ones:
 * empty values (no entry), values longer than an index key keeps, a path
 * deeper than AUDIT_PATH_DEPTH_MAX, several images, images-names. */
static json_t *
make_rec(int i)
{
	static const char *const dec[] = { "allow", "deny", "error" };
	char path[512], dc[32], ns[300], img[48], name[32];
	json_t *claims, *images, *rec;
	size_t n;
	int j;

	switch (i % 5) {
	case 0:
		snprintf(path, sizeof(path), "secret/data/app%d/key%d", i % 7,
		    i % 13);
		break;
	case 1: snprintf(path, sizeof(path), "secret/metadata/k%d", i); break;
	case 2: snprintf(path, sizeof(path), "auth/jwt/login"); break;
	case 3:
		/* 20 levels: only the first 16 prefixes are indexed */
		n = 0;
		for (j = 0; j < 20; j++)
			n += (size_t)snprintf(path + n, sizeof(path) - n,
			    "d%d/", (i + j) % 3);
		snprintf(path + n, sizeof(path) - n, "leaf%d", i);
		break;
	default:
		/* longer than AUDIT_IDX_VALUE_MAX: the key keeps 256 bytes */
		memset(path, 'p', 300);
		path[5] = '/';
		path[300] = '\0';
		break;
	}
	snprintf(dc, sizeof(dc), "dc-%d", i % 4);
	if (i % 11 == 0) {
		memset(ns, 'n', 290);
		ns[290] = '\0';
	} else {
		snprintf(ns, sizeof(ns), "%s", i % 6 == 0 ? "" : "team-a");
	}
	images = json_array();
	for (j = 0; j < i % 4; j++) {
		snprintf(img, sizeof(img), "sha256:%02x%d", (i * 7 + j) % 256,
		    j);
		json_array_append_new(images, json_string(img));
	}
	snprintf(name, sizeof(name), "img-%d", i % 9);
	claims = json_pack("{s:s,s:s,s:s,s:o,s:s}", "datacenter", dc,
	    "cluster-name", i % 3 ? "c1" : "c2", "namespace", ns, "images",
	    images, "images-names", name);
	rec = json_pack("{s:s,s:s,s:s,s:o,s:s,s:i}", "op", "read", "path", path,
	    "decision", dec[i % 3], "claims", claims, "request_id", "r",
	    "status", 200);
	assert_non_null(rec);
	return rec;
}

/* Every key of one database, in order, as one byte string per key. */
static json_t *
keys_of(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_cursor *c;
	MDB_val k, v;
	json_t *out = json_array();
	int rc;

	assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		assert_int_equal(v.mv_size, 0);
		json_array_append_new(out,
		    json_stringn_nocheck(k.mv_data, k.mv_size));
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(c);
	return out;
}

static void
test_batch_index_matches_reference(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit *a = NULL;
	struct audit_env *e1 = NULL, *e2 = NULL;
	struct test_sub s;
	MDB_txn *t1 = NULL, *t2 = NULL;
	MDB_cursor *c;
	MDB_val k, v;
	json_t *rec, *k1, *k2;
	char *dir = test_tmpdir(), *ref = test_tmpdir();
	size_t total = 0, nrec = 0;
	int i, rc;

	(void)state;
	assert_non_null(dir);
	assert_non_null(ref);
	test_sub_init(&s, NREC);
	/* batches of up to 256: submitted without waiting while the
	 * committer is held, so that they queue */
	o.batch_max = 256;
	o.commit_timeout_ms = 20000;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	audit_test_hold(a, 30, 0);
	for (i = 0; i < NREC; i++) {
		rec = make_rec(i);
		assert_int_equal(tsi_audit_submit(a, rec, test_sub_done, &s),
		    TSI_OK);
		json_decref(rec);
	}
	test_sub_wait(&s);
	assert_int_equal(s.failed, 0);
	tsi_audit_close(a);

	/* the reference: audit_index_update over every stored record, into
	 * a second store */
	assert_int_equal(audit_env_acquire(dir, 0, 0, &e1), TSI_OK);
	assert_int_equal(audit_env_acquire(ref, 1, (size_t)64 << 20, &e2),
	    TSI_OK);
	assert_int_equal(mdb_txn_begin(e1->env, NULL, MDB_RDONLY, &t1), 0);
	assert_int_equal(mdb_txn_begin(e2->env, NULL, 0, &t2), 0);
	assert_int_equal(mdb_cursor_open(t1, e1->records, &c), 0);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		assert_int_equal(audit_record_load(&v, &rec), TSI_OK);
		assert_int_equal(audit_index_update(e2, t2, rec,
		                     audit_be64_get(k.mv_data),
		                     json_integer_value(
		                         json_object_get(rec, "time_us")),
		                     0),
		    0);
		json_decref(rec);
		nrec++;
	}
	assert_int_equal(rc, MDB_NOTFOUND);
	mdb_cursor_close(c);
	assert_int_equal(nrec, NREC);
	for (i = 0; i < AUDIT_IDX_N; i++) {
		k1 = keys_of(t1, e1->idx[i]);
		k2 = keys_of(t2, e2->idx[i]);
		assert_true(json_array_size(k2) > 0);
		assert_int_equal(json_array_size(k1), json_array_size(k2));
		assert_true(json_equal(k1, k2));
		total += json_array_size(k1);
		json_decref(k1);
		json_decref(k2);
	}
	/* time 700, decision 700, cluster 700, dc 700, at least one path
	 * entry each, namespaces on 5 records in 6, images */
	assert_true(total > 5 * NREC);
	mdb_txn_abort(t2);
	mdb_txn_abort(t1);
	audit_env_release(e2, 1);
	audit_env_release(e1, 0);
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
	test_rmrf(dir);
	test_rmrf(ref);
	free(dir);
	free(ref);
}

static void
ref_time(long long us, char *out, size_t n)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	char day[32];
	int r;

	gmtime_r(&secs, &tm);
	assert_true(strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) > 0);
	r = snprintf(out, n, "%s.%06lldZ", day, us % 1000000);
	assert_true(r > 0 && (size_t)r < n);
}

static void
test_format_time_cached(void **state)
{
	static const long long base[] = {
		0LL,
		1LL,
		999999LL,
		1000000LL,
		1795000000000000LL,
		1795000000999999LL,
		1795000001000000LL,
		1798761599999999LL,
		1798761600000000LL,
		253402300799999999LL,
	};
	char got[40], want[40];
	size_t i;
	long long t;

	(void)state;
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		/* the same second twice (cached), then forward and back */
		for (t = base[i]; t < base[i] + 3; t++) {
			audit_format_time(t, got, sizeof(got));
			ref_time(t, want, sizeof(want));
			assert_string_equal(got, want);
		}
		audit_format_time(base[i] + 10, got, sizeof(got));
		ref_time(base[i] + 10, want, sizeof(want));
		assert_string_equal(got, want);
		if (base[i] >= 1000000) {
			audit_format_time(base[i] - 1000000, got, sizeof(got));
			ref_time(base[i] - 1000000, want, sizeof(want));
			assert_string_equal(got, want);
		}
	}
	/* a buffer too small for the cached copy takes the snprintf path */
	audit_format_time(1795000000000005LL, got, sizeof(got));
	audit_format_time(1795000000000006LL, got, 20);
	assert_int_equal(strlen(got), 19);
	assert_int_equal(strncmp(got, "2026-11-18T", 11), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_index_matches_reference),
		cmocka_unit_test(test_format_time_cached),
	};

	tsi_log_init("test", TSI_LOG_ERROR + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
