/* Verify checks the indexes against the records (issue 14.11): index
 * entries of one record deleted with the LMDB API hide it from filtered
 * queries, and verify says so; an entry that points at a record without
 * that value is found too; and a query whose indexes miss a whole record
 * reads the records instead of skipping it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <lmdb.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_int.h"

#define NREC 40
#define VICTIM 17

static char *
make_log(void)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	json_t *rec;
	uint64_t seq;
	char dc[16];
	int i;

	assert_non_null(dir);
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	for (i = 1; i <= NREC; i++) {
		snprintf(dc, sizeof(dc), "dc-%d", i % 3);
		rec = test_rec("read", "secret/data/app/k",
		    i % 4 ? "allow" : "deny", dc, "c1", "ns", "sha256:aa");
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		assert_int_equal(seq, (uint64_t)i);
		json_decref(rec);
	}
	tsi_audit_close(a);
	return dir;
}

/* The environment opened directly, as someone with the files would. */
struct raw {
	MDB_env *env;
	MDB_txn *txn;
};

static MDB_dbi
raw_open(struct raw *w, const char *dir, const char *db)
{
	MDB_dbi dbi;

	if (w->env == NULL) {
		assert_int_equal(mdb_env_create(&w->env), 0);
		assert_int_equal(mdb_env_set_maxdbs(w->env, 16), 0);
		assert_int_equal(mdb_env_open(w->env, dir, 0, 0600), 0);
		assert_int_equal(mdb_txn_begin(w->env, NULL, 0, &w->txn), 0);
	}
	assert_int_equal(mdb_dbi_open(w->txn, db, 0, &dbi), 0);
	return dbi;
}

static void
raw_close(struct raw *w)
{
	assert_int_equal(mdb_txn_commit(w->txn), 0);
	mdb_env_close(w->env);
}

static json_t *
get_rec(const char *dir, uint64_t seq)
{
	struct tsi_audit_reader *r = NULL;
	json_t *rec = NULL;

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_get(r, seq, &rec), TSI_OK);
	tsi_audit_reader_close(r);
	return rec;
}

static int
has_cb(const json_t *rec, void *arg)
{
	uint64_t *found = arg;

	if (json_integer_value(json_object_get(rec, "seq")) == VICTIM)
		(*found)++;
	return 0;
}

/* How many times the victim comes back from a query on its datacenter. */
static uint64_t
query_dc(const char *dir, const char *dc)
{
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_query q;
	uint64_t found = 0, next = 0;

	memset(&q, 0, sizeof(q));
	q.datacenter = dc;
	q.limit = SIZE_MAX;
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_query(r, &q, has_cb, &found, &next), TSI_OK);
	tsi_audit_reader_close(r);
	return found;
}

static int
verify(const char *dir, struct tsi_audit_verify_result *vr)
{
	struct tsi_audit_reader *r = NULL;
	int rc;

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	rc = tsi_audit_verify(r, vr);
	tsi_audit_reader_close(r);
	return rc;
}

static void
del_key(struct raw *w, MDB_dbi dbi, const char *value, long long t,
    uint64_t seq)
{
	uint8_t kb[AUDIT_KEY_MAX];
	MDB_val k;

	k.mv_size = audit_index_key(value, t, seq, kb);
	k.mv_data = kb;
	assert_int_equal(mdb_del(w->txn, dbi, &k, NULL), 0);
}

/* The datacenter entry of one record deleted: the query on that
 * datacenter no longer finds it; verify names it. */
static void
test_missing_entry(void **state)
{
	struct tsi_audit_verify_result vr;
	char *dir = make_log();
	struct raw w = { NULL, NULL };
	json_t *rec = get_rec(dir, VICTIM);
	const char *dc = audit_claim_str(rec, "datacenter");
	long long t = json_integer_value(json_object_get(rec, "time_us"));

	(void)state;
	assert_int_equal(verify(dir, &vr), TSI_OK);
	assert_int_equal(vr.records, NREC);
	assert_int_equal(query_dc(dir, dc), 1);
	del_key(&w, raw_open(&w, dir, "idx_dc"), dc, t, VICTIM);
	raw_close(&w);
	assert_int_equal(query_dc(dir, dc), 0); /* the hole */
	assert_int_equal(verify(dir, &vr), TSI_ERR_DENIED);
	assert_int_equal(vr.first_bad_seq, VICTIM);
	assert_non_null(strstr(vr.reason, "idx_dc"));
	json_decref(rec);
	test_rmrf(dir);
	free(dir);
}

/* An entry moved to another value: the record is missing under its own
 * value, and an entry claims a value the record does not carry. Only the
 * stray alone: verify names it too. */
static void
test_stray_entry(void **state)
{
	struct tsi_audit_verify_result vr;
	char *dir = make_log();
	struct raw w = { NULL, NULL };
	json_t *rec = get_rec(dir, VICTIM);
	long long t = json_integer_value(json_object_get(rec, "time_us"));
	uint8_t kb[AUDIT_KEY_MAX];
	MDB_val k, v = { 0, NULL };
	MDB_dbi dbi;

	(void)state;
	dbi = raw_open(&w, dir, "idx_dc");
	k.mv_size = audit_index_key("dc-elsewhere", t, VICTIM, kb);
	k.mv_data = kb;
	assert_int_equal(mdb_put(w.txn, dbi, &k, &v, 0), 0);
	/* and one for a seq past the chain */
	k.mv_size = audit_index_key("dc-1", t, NREC + 5, kb);
	assert_int_equal(mdb_put(w.txn, dbi, &k, &v, 0), 0);
	raw_close(&w);
	assert_int_equal(verify(dir, &vr), TSI_ERR_DENIED);
	assert_non_null(strstr(vr.reason, "idx_dc"));
	print_message("stray: %s\n", vr.reason);
	json_decref(rec);
	test_rmrf(dir);
	free(dir);
}

static int
del_each(void *arg, enum audit_idx idx, const uint8_t *key, size_t len)
{
	struct raw *w = arg;
	static const char *const names[AUDIT_IDX_N] = { "idx_time",
		"idx_decision", "idx_path", "idx_cluster", "idx_dc",
		"idx_image", "idx_namespace" };
	MDB_dbi dbi = raw_open(w, NULL, names[idx]);
	MDB_val k = { len, (void *)key };
	int rc = mdb_del(w->txn, dbi, &k, NULL);

	assert_true(rc == 0 || rc == MDB_NOTFOUND);
	return 0;
}

/* Every index entry of one record deleted: verify says so, and a
 * filtered query still returns the record (the time index no longer
 * counts every record, so the query reads the records themselves). */
static void
test_whole_record_unindexed(void **state)
{
	struct tsi_audit_verify_result vr;
	char *dir = make_log();
	struct raw w = { NULL, NULL };
	json_t *rec = get_rec(dir, VICTIM);
	const char *dc = audit_claim_str(rec, "datacenter");

	(void)state;
	raw_open(&w, dir, "records");
	audit_index_each(rec, VICTIM,
	    json_integer_value(json_object_get(rec, "time_us")), del_each, &w);
	raw_close(&w);
	assert_int_equal(verify(dir, &vr), TSI_ERR_DENIED);
	assert_int_equal(vr.first_bad_seq, VICTIM);
	assert_int_equal(query_dc(dir, dc), 1);
	json_decref(rec);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_entry),
		cmocka_unit_test(test_stray_entry),
		cmocka_unit_test(test_whole_record_unindexed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
