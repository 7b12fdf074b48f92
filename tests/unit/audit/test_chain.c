/* Audit chain: canonical hashes recomputed independently, concurrency,
 * and tampering (edit, delete, swap) caught by verify and `tsi audit verify`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "audit_test.h"
#include "tsi/log.h"

static void
hexs(const unsigned char *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static void
fill(struct tsi_audit *a, int n)
{
	static const char *const paths[] = { "secret/data/b", "secret/data/a" };

	test_fill(a, n, paths, 2, 3);
}

/* hash = SHA-256(prev_bytes || canonical record without "hash") */
static void
test_canonical_chain(void **state)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	unsigned char prev[32] = { 0 }, md[32];
	char hex[65], prevhex[65];
	unsigned int mdlen;
	json_t *rec, *copy;
	char *canon, *full;
	uint64_t seq;

	(void)state;
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	fill(a, 20);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	for (seq = 1; seq <= 20; seq++) {
		assert_int_equal(tsi_audit_get(r, seq, &rec), TSI_OK);
		hexs(prev, 32, prevhex);
		assert_string_equal(json_string_value(
		                        json_object_get(rec, "prev")),
		    prevhex);
		copy = json_deep_copy(rec);
		json_object_del(copy, "hash");
		canon = json_dumps(copy, JSON_SORT_KEYS | JSON_COMPACT);
		{
			EVP_MD_CTX *c = EVP_MD_CTX_new();

			EVP_DigestInit_ex(c, EVP_sha256(), NULL);
			EVP_DigestUpdate(c, prev, 32);
			EVP_DigestUpdate(c, canon, strlen(canon));
			EVP_DigestFinal_ex(c, md, &mdlen);
			EVP_MD_CTX_free(c);
		}
		hexs(md, 32, hex);
		assert_string_equal(json_string_value(
		                        json_object_get(rec, "hash")),
		    hex);
		/* keys sorted, compact: the stored form is canonical */
		full = json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT);
		assert_non_null(
		    strstr(full, "\"accessor\":\"acc-1234\",\"claims\":{"));
		memcpy(prev, md, 32);
		free(canon);
		free(full);
		json_decref(copy);
		json_decref(rec);
	}
	tsi_audit_reader_close(r);
	tsi_audit_close(a);
	test_rmrf(dir);
	free(dir);
}

struct thr {
	struct tsi_audit *a;
	uint64_t seqs[200];
	int n;
};

static void *
appender(void *arg)
{
	struct thr *t = arg;
	json_t *rec;
	int i;

	for (i = 0; i < 200; i++) {
		rec = test_rec("read", "secret/data/c", "allow", "fra02", "c2",
		    "ns", "sha256:bb");
		if (tsi_audit_append(t->a, rec, &t->seqs[t->n]) == TSI_OK)
			t->n++;
		json_decref(rec);
	}
	return NULL;
}

static void
test_concurrent_appends(void **state)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;
	struct tsi_audit_status st;
	struct thr th[8];
	pthread_t tid[8];
	unsigned char *seen;
	int i, j;

	(void)state;
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	memset(th, 0, sizeof(th));
	for (i = 0; i < 8; i++) {
		th[i].a = a;
		assert_int_equal(pthread_create(&tid[i], NULL, appender,
		                     &th[i]),
		    0);
	}
	for (i = 0; i < 8; i++)
		pthread_join(tid[i], NULL);
	seen = calloc(1601, 1);
	for (i = 0; i < 8; i++) {
		assert_int_equal(th[i].n, 200);
		for (j = 0; j < th[i].n; j++) {
			/* each caller sees its own seqs strictly increasing */
			if (j > 0)
				assert_true(th[i].seqs[j] > th[i].seqs[j - 1]);
			assert_true(
			    th[i].seqs[j] >= 1 && th[i].seqs[j] <= 1600);
			assert_int_equal(seen[th[i].seqs[j]], 0);
			seen[th[i].seqs[j]] = 1;
		}
	}
	free(seen);
	tsi_audit_status(a, &st);
	assert_int_equal(st.committed, 1600);
	assert_int_equal(st.last_seq, 1600);
	assert_int_equal(st.failed, 0);
	tsi_audit_close(a); /* durable: read after the writer is gone */
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(vr.records, 1600);
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
}

/* Direct LMDB access to the records database, as an attacker would have. */
static void
with_records(const char *dir, void (*fn)(MDB_txn *, MDB_dbi))
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "records", 0, &dbi), 0);
	fn(txn, dbi);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void
key(uint64_t seq, unsigned char kb[8], MDB_val *k)
{
	int i;

	for (i = 7; i >= 0; i--) {
		kb[i] = seq & 0xff;
		seq >>= 8;
	}
	k->mv_size = 8;
	k->mv_data = kb;
}

static void
edit_7(MDB_txn *txn, MDB_dbi dbi)
{
	unsigned char kb[8];
	MDB_val k, v, nv;
	char *copy, *p;

	key(7, kb, &k);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	copy = malloc(v.mv_size);
	memcpy(copy, v.mv_data, v.mv_size);
	/* "deny" -> "allo"... no: flip the path's last letter, still valid JSON */
	p = strstr(copy, "secret/data/");
	assert_non_null(p);
	p[12] = p[12] == 'a' ? 'b' : 'a';
	nv.mv_size = v.mv_size;
	nv.mv_data = copy;
	assert_int_equal(mdb_put(txn, dbi, &k, &nv, 0), 0);
	free(copy);
}

static void
delete_12(MDB_txn *txn, MDB_dbi dbi)
{
	unsigned char kb[8];
	MDB_val k;

	key(12, kb, &k);
	assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
}

static void
delete_last(MDB_txn *txn, MDB_dbi dbi)
{
	unsigned char kb[8];
	MDB_val k;

	key(30, kb, &k);
	assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);
}

static void
swap_15_16(MDB_txn *txn, MDB_dbi dbi)
{
	unsigned char ka[8], kb[8];
	MDB_val k1, k2, v1, v2;
	char *c1, *c2;

	key(15, ka, &k1);
	key(16, kb, &k2);
	assert_int_equal(mdb_get(txn, dbi, &k1, &v1), 0);
	c1 = malloc(v1.mv_size);
	memcpy(c1, v1.mv_data, v1.mv_size);
	v1.mv_data = c1;
	assert_int_equal(mdb_get(txn, dbi, &k2, &v2), 0);
	c2 = malloc(v2.mv_size);
	memcpy(c2, v2.mv_data, v2.mv_size);
	v2.mv_data = c2;
	assert_int_equal(mdb_put(txn, dbi, &k1, &v2, 0), 0);
	assert_int_equal(mdb_put(txn, dbi, &k2, &v1, 0), 0);
	free(c1);
	free(c2);
}

/* Runs `tsi audit verify --data-dir dir`; returns its exit code, out gets
 * its stdout. */
static int
cli_verify(const char *dir, char *out, size_t outlen)
{
	const char *bin = getenv("TSI_BIN_DIR");
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	if (bin == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "'%s/tsi' audit verify --data-dir '%s' 2>&1",
	    bin, dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
tamper_case(void (*fn)(MDB_txn *, MDB_dbi), uint64_t want_seq, const char *word)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;
	char out[1024], needle[64];
	int code;

	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	fill(a, 30);
	tsi_audit_close(a);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(vr.records, 30);
	tsi_audit_reader_close(r);
	assert_int_equal(cli_verify(dir, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "intact: 30 records"));

	with_records(dir, fn);

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_ERR_DENIED);
	print_message("verify: seq %llu: %s\n",
	    (unsigned long long)vr.first_bad_seq, vr.reason);
	assert_int_equal(vr.first_bad_seq, want_seq);
	assert_non_null(strstr(vr.reason, word));
	tsi_audit_reader_close(r);
	code = cli_verify(dir, out, sizeof(out));
	assert_int_equal(code, 1);
	snprintf(needle, sizeof(needle),
	    "BROKEN at seq %llu:", (unsigned long long)want_seq);
	assert_non_null(strstr(out, needle));
	test_rmrf(dir);
	free(dir);
}

static void
test_tamper_edit(void **state)
{
	(void)state;
	tamper_case(edit_7, 7, "edited");
}

static void
test_tamper_delete(void **state)
{
	(void)state;
	tamper_case(delete_12, 12, "missing");
}

static void
test_tamper_delete_last(void **state)
{
	(void)state;
	tamper_case(delete_last, 30, "missing");
}

static void
test_tamper_swap(void **state)
{
	(void)state;
	tamper_case(swap_15_16, 15, "reordered");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_chain),
		cmocka_unit_test(test_concurrent_appends),
		cmocka_unit_test(test_tamper_edit),
		cmocka_unit_test(test_tamper_delete),
		cmocka_unit_test(test_tamper_delete_last),
		cmocka_unit_test(test_tamper_swap),
	};

	tsi_log_init("test", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
