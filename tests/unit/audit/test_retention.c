/* Audit retention by age (index entries go too, the chain stays
 * verifiable) and the signed chain head. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_int.h"
#include "tsi/log.h"
#include "tsi/signer.h"

/* One path of four segments (the idx_path counts below), every other
 * record a denial. */
static void
fill(struct tsi_audit *a, int n)
{
	static const char *const paths[] = { "secret/data/r/x" };

	test_fill(a, n, paths, 1, 2);
}

/* Entries in a named database, read straight from LMDB. */
static size_t
entries(const char *dir, const char *db)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return st.ms_entries;
}

static int
count_cb(const json_t *rec, void *arg)
{
	size_t *n = arg;

	assert_true(json_integer_value(json_object_get(rec, "seq")) > 20);
	(*n)++;
	return 0;
}

static void
test_age_retention(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;
	struct tsi_audit_query q;
	struct tsi_audit_info info;
	struct tsi_audit *a = NULL;
	char *dir = test_tmpdir();
	size_t pruned = 0, n = 0;
	json_t *rec = NULL;

	(void)state;
	o.retain_seconds = 1;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	fill(a, 20);
	usleep(1300 * 1000);
	fill(a, 5);
	/* the committer prunes about once a second; this does it now */
	assert_int_equal(tsi_audit_prune(a, &pruned), TSI_OK);
	tsi_audit_close(a);

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	assert_int_equal(info.first_seq, 21);
	assert_int_equal(info.last_seq, 25);
	assert_int_equal(info.records, 5);
	assert_int_equal(tsi_audit_get(r, 20, &rec), TSI_ERR_NOT_FOUND);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(vr.records, 5);
	memset(&q, 0, sizeof(q));
	q.datacenter = "dal05";
	q.limit = SIZE_MAX;
	assert_int_equal(tsi_audit_query(r, &q, count_cb, &n, NULL), TSI_OK);
	assert_int_equal(n, 5);
	tsi_audit_reader_close(r);
	/* the index entries of pruned records are gone too */
	assert_int_equal(entries(dir, "idx_time"), 5);
	assert_int_equal(entries(dir, "idx_dc"), 5);
	assert_int_equal(entries(dir, "idx_decision"), 5);
	assert_int_equal(entries(dir, "idx_image"), 5);
	assert_int_equal(entries(dir, "idx_path"),
	    5 * 4); /* secret/ data/ r/ x */

	/* a writer after pruning continues; removing the first retained
	 * record is still caught */
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	fill(a, 2);
	tsi_audit_close(a);
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		unsigned char kb[8] = { 0, 0, 0, 0, 0, 0, 0, 21 };
		MDB_val k = { 8, kb };

		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
		assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
		assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_ERR_DENIED);
	assert_int_equal(vr.first_bad_seq, 21);
	assert_non_null(strstr(vr.reason, "missing"));
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
}

static int
cli_verify_key(const char *dir, const char *pem)
{
	const char *bin = getenv("TSI_BIN_DIR");
	char cmd[1024];
	int st;

	if (bin == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "'%s/tsi' audit verify --data-dir '%s' "
	    "--pubkey '%s' >/dev/null 2>&1",
	    bin, dir, pem);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
write_pub(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
}

static void
test_signed_head(void **state)
{
	struct tsi_audit_opts o = { 0 };
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;
	struct tsi_audit_info info;
	struct tsi_audit *a = NULL;
	struct tsi_signer *signer = NULL;
	EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	char *dir = test_tmpdir(), kid[48] = { 0 }, pem[600], pem2[600];

	(void)state;
	assert_non_null(key);
	assert_non_null(other);
	assert_int_equal(tsi_signer_new_soft(key, &signer), TSI_OK);
	assert_int_equal(tsi_signer_kid(signer, kid), TSI_OK);
	o.head_signer = signer;
	o.head_sign_interval_s = 1;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	fill(a, 10);
	tsi_audit_close(a); /* signs the final head */

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	assert_int_equal(info.signed_seq, 10);
	assert_string_equal(info.signed_kid, kid);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(tsi_audit_verify_key(r, key, &vr), TSI_OK);
	assert_int_equal(tsi_audit_verify_key(r, other, &vr), TSI_ERR_DENIED);
	assert_non_null(strstr(vr.reason, "another key"));
	tsi_audit_reader_close(r);
	snprintf(pem, sizeof(pem), "%s/good.pem", dir);
	snprintf(pem2, sizeof(pem2), "%s/other.pem", dir);
	write_pub(key, pem);
	write_pub(other, pem2);
	assert_int_equal(cli_verify_key(dir, pem), 0);
	assert_int_equal(cli_verify_key(dir, pem2), 1);

	/* cut the tail and make the head agree: only the signature sees it */
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi recs, meta;
		unsigned char kb[8] = { 0, 0, 0, 0, 0, 0, 0, 10 };
		unsigned char k9[8] = { 0, 0, 0, 0, 0, 0, 0, 9 };
		unsigned char hv[40];
		MDB_val k = { 8, kb }, v, hk = { 4, "head" }, nv = { 40, hv };
		json_t *rec;

		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
		assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, "records", 0, &recs), 0);
		assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
		assert_int_equal(mdb_del(txn, recs, &k, NULL), 0);
		k.mv_data = k9;
		assert_int_equal(mdb_get(txn, recs, &k, &v), 0);
		rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
		assert_non_null(rec);
		memcpy(hv, k9, 8);
		assert_int_equal(audit_unhex(json_string_value(
		                                 json_object_get(rec, "hash")),
		                     hv + 8, 32),
		    TSI_OK);
		json_decref(rec);
		assert_int_equal(mdb_put(txn, meta, &hk, &nv, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_ERR_DENIED);
	print_message("verify: seq %llu: %s\n",
	    (unsigned long long)vr.first_bad_seq, vr.reason);
	assert_int_equal(vr.first_bad_seq, 10);
	assert_non_null(strstr(vr.reason, "signed head"));
	tsi_audit_reader_close(r);

	tsi_signer_free(signer);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_age_retention),
		cmocka_unit_test(test_signed_head),
	};

	tsi_log_init("test", TSI_LOG_ERROR + 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
