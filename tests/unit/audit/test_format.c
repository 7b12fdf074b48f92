/* Record format versions (docs/audit-format.md): a log written by the code
 * before the format was versioned (tests/data/audit/v1, format 1) verifies;
 * records appended to it now are format 2 and the mixed log verifies;
 * changing any byte of any record, of either format, fails verify. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <lmdb.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_canon.h"
#include "tsi/log.h"

#define FIXTURE "tests/data/audit/v1/data.mdb"
#define FIXTURE_RECORDS 12

/* A copy of the format-1 fixture in a fresh directory. */
static char *
fixture_copy(void)
{
	char *dir = test_tmpdir(), path[600], buf[8192];
	FILE *in, *out;
	size_t n;

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	assert_non_null(in = fopen(FIXTURE, "rb"));
	assert_non_null(out = fopen(path, "wb"));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
	return dir;
}

static int
verify(const char *dir, struct tsi_audit_verify_result *res)
{
	struct tsi_audit_reader *r = NULL;
	int rc;

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	rc = tsi_audit_verify(r, res);
	tsi_audit_reader_close(r);
	return rc;
}

static void
test_v1_log_verifies(void **state)
{
	char *dir = fixture_copy();
	struct tsi_audit_verify_result res;
	struct tsi_audit_reader *r = NULL;
	json_t *rec;
	uint64_t seq;

	(void)state;
	assert_int_equal(verify(dir, &res), TSI_OK);
	assert_int_equal(res.records, FIXTURE_RECORDS);
	/* what makes it format 1: no "format", jansson's bytes */
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	for (seq = 1; seq <= FIXTURE_RECORDS; seq++) {
		assert_int_equal(tsi_audit_get(r, seq, &rec), TSI_OK);
		assert_null(json_object_get(rec, "format"));
		json_decref(rec);
	}
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
}

/* Records whose two forms differ: control characters, keys that sort
 * apart by bytes and by UTF-16. */
static json_t *
odd_rec(int i)
{
	json_t *rec = test_rec("read", "secret/data/a",
	    i % 2 ? "allow" : "deny", "dal05", "c1", "ns", "sha256:aa");
	json_t *claims = json_object_get(rec, "claims");

	json_object_set_new(rec, "reason", json_string("ctl \x01\x1f del\x7f"));
	json_object_set_new(claims, "\xef\xac\x81", json_string("fi"));
	json_object_set_new(claims, "\xf0\x9f\x98\x80", json_integer(-i));
	return rec;
}

/* Opens the records database of a log no handle of this process has open
 * and changes record seq's stored bytes with fn; returns the old bytes
 * (caller frees) in *old. */
static void
rewrite(const char *dir, uint64_t seq, const char *bytes, size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t key[8];
	MDB_val k = { 8, key }, v = { len, (void *)bytes };
	int i;

	for (i = 0; i < 8; i++)
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	/* no sync: the test reopens the file, it does not survive a crash */
	assert_int_equal(mdb_env_open(env, dir, MDB_NOSYNC, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static char *
stored(const char *dir, uint64_t seq, size_t *len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t key[8];
	MDB_val k = { 8, key }, v;
	char *out;
	int i;

	for (i = 0; i < 8; i++)
		key[i] = (uint8_t)(seq >> (56 - 8 * i));
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_non_null(out = malloc(v.mv_size));
	memcpy(out, v.mv_data, v.mv_size);
	*len = v.mv_size;
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return out;
}

#define NEW_RECORDS 6

static void
test_mixed_log_and_tampering(void **state)
{
	char *dir = fixture_copy(), *orig, *bad;
	struct tsi_audit_verify_result res;
	struct tsi_audit *a = NULL;
	json_t *rec;
	uint64_t seq, checked = 0;
	size_t len, i;
	int v2_seen = 0;

	(void)state;
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	for (i = 0; i < NEW_RECORDS; i++) {
		rec = odd_rec((int)i);
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		assert_int_equal(seq, FIXTURE_RECORDS + 1 + i);
		json_decref(rec);
	}
	tsi_audit_close(a);
	assert_int_equal(verify(dir, &res), TSI_OK);
	assert_int_equal(res.records, FIXTURE_RECORDS + NEW_RECORDS);

	for (seq = 1; seq <= FIXTURE_RECORDS + NEW_RECORDS; seq++) {
		orig = stored(dir, seq, &len);
		if (seq > FIXTURE_RECORDS) {
			/* format 2 as the spec writes it */
			assert_non_null(memmem(orig, len, "\"format\":2,", 11));
			assert_non_null(memmem(orig, len, "\\u001f", 6));
			assert_non_null(
			    memmem(orig, len, "\"\xf0\x9f\x98\x80\":", 6));
			assert_true(
			    (char *)memmem(orig, len, "\xf0\x9f\x98\x80", 4) <
			    (char *)memmem(orig, len, "\xef\xac\x81", 3));
			assert_int_equal(audit_canon_check(orig, len, NULL,
			                     NULL),
			    TSI_OK);
			v2_seen++;
		} else {
			assert_null(memmem(orig, len, "\"format\"", 8));
		}
		/* what `tsi audit list --format json` prints is the stored
		 * bytes, in either format */
		{
			struct tsi_audit_reader *r = NULL;
			char *text = NULL;
			size_t tl = 0;

			assert_int_equal(tsi_audit_reader_open(dir, &r),
			    TSI_OK);
			assert_int_equal(tsi_audit_get(r, seq, &rec), TSI_OK);
			assert_int_equal(tsi_audit_record_text(rec, &text, &tl),
			    TSI_OK);
			assert_int_equal(tl, len);
			assert_memory_equal(text, orig, len);
			free(text);
			json_decref(rec);
			tsi_audit_reader_close(r);
		}
		assert_non_null(bad = malloc(len));
		/* every byte of the record, changed one at a time */
		for (i = 0; i < len; i++) {
			memcpy(bad, orig, len);
			bad[i] = (char)(bad[i] ^ (i % 2 ? 0x01 : 0x20));
			rewrite(dir, seq, bad, len);
			if (verify(dir, &res) != TSI_ERR_DENIED)
				fail_msg("record %llu with byte %zu changed "
				         "verifies",
				    (unsigned long long)seq, i);
			assert_int_equal(res.first_bad_seq, seq);
			checked++;
		}
		rewrite(dir, seq, orig, len);
		free(bad);
		free(orig);
	}
	assert_int_equal(v2_seen, NEW_RECORDS);
	/* and restored, the log verifies again */
	assert_int_equal(verify(dir, &res), TSI_OK);
	assert_true(checked > 1000);
	test_rmrf(dir);
	free(dir);
}

/* A format-2 record that claims format 1 (its "format" member removed)
 * or an unknown format fails: the hash covers the member. */
static void
test_format_field_is_covered(void **state)
{
	char *dir = test_tmpdir(), *orig, *bad, *p;
	struct tsi_audit_verify_result res;
	struct tsi_audit *a = NULL;
	json_t *rec;
	uint64_t seq;
	size_t len;

	(void)state;
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	rec = odd_rec(1);
	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	json_decref(rec);
	tsi_audit_close(a);
	orig = stored(dir, 1, &len);
	assert_non_null(bad = malloc(len));
	assert_non_null(p = memmem(orig, len, "\"format\":2,", 11));
	memcpy(bad, orig, (size_t)(p - orig));
	memcpy(bad + (p - orig), p + 11, len - (size_t)(p - orig) - 11);
	rewrite(dir, 1, bad, len - 11);
	assert_int_equal(verify(dir, &res), TSI_ERR_DENIED);
	assert_int_equal(res.first_bad_seq, 1);
	memcpy(bad, orig, len);
	bad[p - orig + 9] = '3';
	rewrite(dir, 1, bad, len);
	assert_int_equal(verify(dir, &res), TSI_ERR_DENIED);
	assert_non_null(strstr(res.reason, "unknown format"));
	rewrite(dir, 1, orig, len);
	assert_int_equal(verify(dir, &res), TSI_OK);
	free(bad);
	free(orig);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_log_verifies),
		cmocka_unit_test(test_mixed_log_and_tampering),
		cmocka_unit_test(test_format_field_is_covered),
	};

	tsi_log_init("test_format", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
