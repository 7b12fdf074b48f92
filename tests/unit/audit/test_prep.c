/* Caller-side serialisation: audit_prep_seal must give byte for byte the
 * canonical form (audit_canon_dumps, docs/audit-format.md) of the stored
 * record, what verify checks, for odd keys and values, keys sorting around
 * the writer's keys, and nested claims; records written through it
 * verify. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit_test.h"
#include "lib/audit/audit_canon.h"
#include "lib/audit/audit_int.h"
#include "tsi/log.h"

static uint32_t rng_state = 12345;

static uint32_t
rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Pieces that keys and strings are made of: around the writer's keys,
 * escapes, control bytes, multi-byte UTF-8 (é, U+2028, an emoji), and a
 * NUL inside a key. */
static const char *const pieces[] = {
	"h",
	"has",
	"hash",
	"hash_",
	"p",
	"pre",
	"prev",
	"prev0",
	"s",
	"se",
	"seq",
	"seq_",
	"t",
	"tim",
	"time",
	"time_",
	"time_u",
	"time_us",
	"f",
	"form",
	"format",
	"format0",
	"\xef\xac\x81",
	"\xef\xbf\xbd",
	"time_us0",
	"timf",
	"i",
	"a",
	"z",
	"A",
	"_",
	"\"",
	"\\",
	"/",
	"\n",
	"\t",
	"\x01",
	"\x1f",
	"\x7f",
	"\xc3\xa9",
	"\xe2\x80\xa8",
	"\xf0\x9f\x94\x91",
	" ",
	":",
	",",
	"{",
	"}",
};
#define NPIECES (sizeof(pieces) / sizeof(pieces[0]))

static size_t
rnd_text(char *out, size_t cap, int allow_nul)
{
	size_t n = 0, k, i, parts = rnd() % 4;

	for (i = 0; i < parts; i++) {
		const char *p = pieces[rnd() % NPIECES];

		k = strlen(p);
		if (n + k + 1 >= cap)
			break;
		memcpy(out + n, p, k);
		n += k;
		if (allow_nul && rnd() % 16 == 0 && n + 2 < cap)
			out[n++] = '\0';
	}
	out[n] = '\0';
	return n;
}

static json_t *rnd_value(int depth);

static json_t *
rnd_object(int depth, int top)
{
	json_t *o = json_object();
	char k[64];
	size_t kl, i, n = 1 + rnd() % (top ? 12 : 4);

	for (i = 0; i < n; i++) {
		kl = rnd_text(k, sizeof(k), 1);
		json_object_setn_new_nocheck(o, k, kl, rnd_value(depth + 1));
	}
	return o;
}

static json_t *
rnd_value(int depth)
{
	char s[64];
	size_t n;
	json_t *a;

	switch (rnd() % (depth > 3 ? 6 : 8)) {
	case 0: return json_integer((json_int_t)(rnd() % 2000) - 1000);
	case 1:
		return json_integer(
		    rnd() % 2 ? AUDIT_CANON_INT_MAX : -AUDIT_CANON_INT_MAX);
	case 2: return json_integer((json_int_t)(int32_t)rnd() * 1021);
	case 3:
		return rnd() % 2 ? json_true()
		    : rnd() % 2  ? json_false()
		                 : json_null();
	case 4:
	case 5: n = rnd_text(s, sizeof(s), 0); return json_stringn(s, n);
	case 6:
		a = json_array();
		for (n = rnd() % 4; n > 0; n--)
			json_array_append_new(a, rnd_value(depth + 1));
		return a;
	default: return rnd_object(depth, 0);
	}
}

/* The old way: a prepared json copy with the writer's fields set, dumped. */
static void
check_same(const json_t *rec, uint64_t seq, long long t)
{
	struct audit_prep *p = NULL;
	json_t *c, *back;
	uint8_t prev[AUDIT_HASH_LEN], h1[AUDIT_HASH_LEN], h2[AUDIT_HASH_LEN],
	    h3[AUDIT_HASH_LEN];
	char *b1 = NULL, *b2 = NULL, *b3;
	size_t l1 = 0, l2 = 0, i;
	int err;
	MDB_val v;

	for (i = 0; i < sizeof(prev); i++)
		prev[i] = (uint8_t)rnd();
	c = audit_record_prepare(rec, &err);
	assert_non_null(c);
	assert_int_equal(audit_record_seal(c, seq, t, prev, h1, &b1, &l1),
	    TSI_OK);
	assert_int_equal(audit_canon_check(b1, l1, NULL, NULL), TSI_OK);
	assert_int_equal(audit_prep_make(rec, &p), TSI_OK);
	assert_int_equal(audit_prep_seal(p, seq, t, prev, h2, &b2, &l2),
	    TSI_OK);
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		fail_msg("differs:\n old %.*s\n new %.*s", (int)l1, b1, (int)l2,
		    b2);
	assert_memory_equal(h1, h2, AUDIT_HASH_LEN);
	/* and what verify does with the stored bytes agrees */
	v.mv_data = b2;
	v.mv_size = l2;
	assert_int_equal(audit_record_load(&v, &back), TSI_OK);
	assert_int_equal(audit_record_hash(back, prev, h3), TSI_OK);
	assert_memory_equal(h2, h3, AUDIT_HASH_LEN);
	b3 = audit_canon_dumps(back, AUDIT_FORMAT_V2, AUDIT_RECORD_MAX, &l1,
	    &err);
	assert_non_null(b3);
	assert_int_equal(l1, l2);
	assert_memory_equal(b3, b2, l2);
	free(b3);
	json_decref(back);
	json_decref(c);
	free(b1);
	free(b2);
	audit_prep_free(p);
}

static void
test_prep_fixed(void **state)
{
	json_t *rec;

	(void)state;
	/* the usual shape */
	rec = test_rec("read", "secret/data/a", "allow", "dal05", "c1", "ns",
	    "sha256:aa");
	check_same(rec, 1, 1700000000123456LL);
	check_same(rec, UINT64_C(9007199254740991), 0);
	/* keys right around the writer's, unicode, escapes, nested claims */
	json_object_set_new(rec, "hasg", json_string("x"));
	json_object_set_new(rec, "hash0", json_string("\xe2\x80\xa8\"\\\n"));
	json_object_set_new(rec, "pre", json_integer(-1));
	json_object_set_new(rec, "prev_", json_integer(-9007199254740991LL));
	json_object_set_new(rec, "formas", json_integer(0));
	json_object_set_new(rec, "format_", json_string("\x7f"));
	json_object_set_new(rec, "seq ", json_null());
	json_object_set_new(rec, "time_", json_true());
	json_object_set_new(rec, "time_us\xc3\xa9", json_false());
	json_object_set_new(rec, "Time", json_string("\xf0\x9f\x94\x91"));
	json_object_set_new(rec, "\xc3\xa9t\xc3\xa9", json_string("\x01\x1f/"));
	json_object_set_new(rec, "", json_string("empty key"));
	json_object_set_new(json_object_get(rec, "claims"), "z\"q",
	    json_pack("{s:[i,{s:s,s:s}],s:{}}", "b", 1, "y", "2", "x", "1",
	        "a"));
	/* the writer's own fields are replaced, secrets dropped */
	json_object_set_new(rec, "seq", json_integer(77));
	json_object_set_new(rec, "hash", json_string("forged"));
	json_object_set_new(rec, "token", json_string("s.secret"));
	check_same(rec, 42, 1700000000000001LL);

	/* many keys in one object, and nesting as deep as the form allows
	 * (the record is the outermost container, claims the second) */
	{
		json_t *wide = json_object(), *deep = json_string("leaf");
		char k[16];
		int j;

		for (j = 0; j < 70; j++) {
			snprintf(k, sizeof(k), "k%02d", (j * 37) % 70);
			json_object_set_new(wide, k,
			    j % 2 ? json_integer(j)
			          : json_pack("[s,b,n,i]", "v", 1, -5));
		}
		for (j = 0; j < AUDIT_CANON_DEPTH_MAX - 2; j++)
			deep = j % 2 ? json_pack("[o]", deep)
			             : json_pack("{s:o}", "d", deep);
		json_object_set_new(json_object_get(rec, "claims"), "wide",
		    wide);
		json_object_set_new(json_object_get(rec, "claims"), "deep",
		    deep);
		check_same(rec, 43, 1700000000000002LL);
		/* one container more has no canonical form */
		json_object_set_new(json_object_get(rec, "claims"), "deep",
		    json_pack("[O]", deep));
		{
			struct audit_prep *p = NULL;

			assert_int_equal(audit_prep_make(rec, &p),
			    TSI_ERR_INVALID_ARG);
			assert_null(p);
		}
	}
	json_decref(rec);

	/* only the mandatory fields: stretches left empty */
	rec = json_pack("{s:s,s:s}", "op", "x", "decision", "deny");
	check_same(rec, 3, 5);
	json_object_set_new(rec, "zzz", json_string("last"));
	check_same(rec, 4, 6);
	json_object_set_new(rec, "aaa", json_string("first"));
	check_same(rec, 5, 7);
	json_decref(rec);
}

static void
test_prep_random(void **state)
{
	json_t *rec;
	int i;

	(void)state;
	for (i = 0; i < 3000; i++) {
		rec = rnd_object(0, 1);
		json_object_set_new(rec, "op", json_string("read"));
		json_object_set_new(rec, "decision",
		    json_string(i % 3 ? "allow" : "error"));
		if (i % 2)
			json_object_set_new(rec, "claims", rnd_object(1, 0));
		check_same(rec, (uint64_t)i + 1, 1700000000000000LL + i);
		json_decref(rec);
	}
}

static void
test_prep_refuses(void **state)
{
	struct audit_prep *p = NULL;
	json_t *rec;
	char *big;

	(void)state;
	rec = json_pack("{s:s}", "op", "x");
	assert_int_equal(audit_prep_make(rec, &p), TSI_ERR_INVALID_ARG);
	assert_null(p);
	json_object_set_new(rec, "decision", json_string("maybe"));
	assert_int_equal(audit_prep_make(rec, &p), TSI_ERR_INVALID_ARG);
	json_object_set_new(rec, "decision", json_string("deny"));
	json_object_set_new(rec, "claims", json_string("not an object"));
	assert_int_equal(audit_prep_make(rec, &p), TSI_ERR_INVALID_ARG);
	json_object_del(rec, "claims");
	/* values format 2 has no form for: reals, integers past 2^53 - 1,
	 * at the top level and inside claims made once */
	{
		json_t *bad[4];
		struct tsi_audit_claims *cl = NULL;
		int i;

		bad[0] = json_real(0.5);
		bad[1] = json_real(3.0);
		bad[2] = json_integer(AUDIT_CANON_INT_MAX + 1);
		bad[3] = json_integer(-AUDIT_CANON_INT_MAX - 1);
		for (i = 0; i < 4; i++) {
			json_object_set(rec, "ratio", bad[i]);
			assert_int_equal(audit_prep_make(rec, &p),
			    TSI_ERR_INVALID_ARG);
			assert_null(p);
			json_object_del(rec, "ratio");
			json_object_set_new(rec, "claims",
			    json_pack("{s:O}", "n", bad[i]));
			assert_int_equal(audit_prep_make(rec, &p),
			    TSI_ERR_INVALID_ARG);
			assert_int_equal(
			    tsi_audit_claims_new(json_object_get(rec, "claims"),
			        &cl),
			    TSI_ERR_INVALID_ARG);
			assert_null(cl);
			json_object_del(rec, "claims");
			json_decref(bad[i]);
		}
	}
	big = calloc(1, AUDIT_RECORD_MAX);
	assert_non_null(big);
	memset(big, 'x', AUDIT_RECORD_MAX - 600);
	json_object_set_new(rec, "reason", json_string(big));
	assert_int_equal(audit_prep_make(rec, &p), TSI_OK);
	audit_prep_free(p);
	p = NULL;
	memset(big, 'x', AUDIT_RECORD_MAX - 400);
	json_object_set_new(rec, "reason", json_string(big));
	assert_int_equal(audit_prep_make(rec, &p), TSI_ERR_TOO_LARGE);
	assert_null(p);
	free(big);
	json_decref(rec);
}

static int
count_cb(const json_t *rec, void *arg)
{
	(void)rec;
	(*(int *)arg)++;
	return 0;
}

/* Index values taken in the caller: queries by every indexed field find
 * the records, and the chain verifies. */
static void
test_prep_indexed(void **state)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_query q;
	struct tsi_audit_verify_result vr;
	json_t *rec;
	uint64_t seq, next;
	int i, count;

	(void)state;
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	for (i = 0; i < 10; i++) {
		rec = test_rec("read",
		    i % 2 ? "secret/data/odd/x" : "secret/data/even",
		    i % 2 ? "allow" : "deny", i < 5 ? "dal05" : "fra02", "c1",
		    i < 3 ? "ns-a" : "ns-b",
		    i == 7 ? "sha256:bb" : "sha256:aa");
		json_array_append_new(json_object_get(json_object_get(rec,
		                                          "claims"),
		                          "images"),
		    json_string("img-extra"));
		json_object_set_new(json_object_get(rec, "claims"),
		    "images-names", json_string(i == 2 ? "name-2" : "name"));
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		assert_int_equal(seq, (uint64_t)i + 1);
		json_decref(rec);
	}
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
#define COUNT(field, val, want) \
	do { \
		memset(&q, 0, sizeof(q)); \
		q.field = val; \
		q.limit = SIZE_MAX; \
		count = 0; \
		assert_int_equal(tsi_audit_query(r, &q, count_cb, &count, \
		                     &next), \
		    TSI_OK); \
		assert_int_equal(count, want); \
	} while (0)
	COUNT(decision, "deny", 5);
	COUNT(path_prefix, "secret/data/odd/", 5);
	COUNT(path_prefix, "secret/", 10);
	COUNT(datacenter, "fra02", 5);
	COUNT(namespace_, "ns-a", 3);
	COUNT(image, "sha256:bb", 1);
	COUNT(image, "img-extra", 10);
	COUNT(image, "name-2", 1);
	COUNT(cluster_name, "c1", 10);
#undef COUNT
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(vr.records, 10);
	tsi_audit_reader_close(r);
	tsi_audit_close(a);
	test_rmrf(dir);
	free(dir);
}

/* audit_prep_make_claims with claims made once gives what audit_prep_make
 * gives for the whole record: the same body, stretches and index values. */
static void
check_claims_same(const json_t *rec)
{
	struct tsi_audit_claims *cl = NULL;
	struct audit_prep *p1 = NULL, *p2 = NULL;
	json_t *rest;
	size_t i;

	assert_int_equal(tsi_audit_claims_new(json_object_get(rec, "claims"),
	                     &cl),
	    TSI_OK);
	assert_non_null(rest = json_copy((json_t *)rec));
	json_object_del(rest, "claims");
	assert_int_equal(audit_prep_make(rec, &p1), TSI_OK);
	assert_int_equal(audit_prep_make_claims(rest, cl, &p2), TSI_OK);
	for (i = 0; i <= AUDIT_PREP_SEGS; i++)
		assert_int_equal(p1->seg[i], p2->seg[i]);
	if (memcmp(p1->body, p2->body, audit_prep_size(p1)) != 0)
		fail_msg("differs:\n whole  %.*s\n claims %.*s",
		    (int)audit_prep_size(p1), p1->body,
		    (int)audit_prep_size(p2), p2->body);
	assert_int_equal(p1->idx_len, p2->idx_len);
	assert_memory_equal(p1->idx, p2->idx, p1->idx_len);
	/* a record that still has claims is refused */
	audit_prep_free(p2);
	p2 = NULL;
	assert_int_equal(audit_prep_make_claims(rec, cl, &p2),
	    TSI_ERR_INVALID_ARG);
	assert_null(p2);
	audit_prep_free(p1);
	json_decref(rest);
	tsi_audit_claims_unref(tsi_audit_claims_ref(cl));
	tsi_audit_claims_unref(cl);
}

static void
test_prep_claims_once(void **state)
{
	static const char *const around[] = { "cl", "claim", "claims0",
		"claimr", "claimt", "clainz", "c", "d" };
	struct tsi_audit_claims *cl = NULL;
	json_t *rec, *claims;
	int i;

	(void)state;
	rec = test_rec("read", "secret/data/a", "allow", "dal05", "c1", "ns",
	    "sha256:aa");
	check_claims_same(rec);
	/* secrets and a JWT in the claims are stripped the same way */
	claims = json_object_get(rec, "claims");
	json_object_set_new(claims, "token", json_string("s.secret"));
	json_object_set_new(claims, "Password", json_string("hunter2"));
	json_object_set_new(claims, "nested",
	    json_pack("{s:s,s:[s,i]}", "id_token", "x", "list",
	        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", 1));
	json_object_set_new(claims, "images-names",
	    json_pack("[s,s]", "n1", "n2"));
	check_claims_same(rec);
	/* keys that sort next to "claims" */
	for (i = 0; i < (int)(sizeof(around) / sizeof(around[0])); i++) {
		json_object_set_new(rec, around[i], json_integer(i));
		check_claims_same(rec);
	}
	json_decref(rec);
	for (i = 0; i < 1000; i++) {
		rec = rnd_object(0, 1);
		json_object_set_new(rec, "op", json_string("read"));
		json_object_set_new(rec, "decision", json_string("deny"));
		claims = rnd_object(1, 0);
		if (i % 3 == 0)
			json_object_set_new(claims, "datacenter",
			    json_string("dc"));
		if (i % 5 == 0)
			json_object_set_new(claims, "secret", json_string("x"));
		json_object_set_new(rec, "claims", claims);
		check_claims_same(rec);
		json_decref(rec);
	}
	/* not an object */
	claims = json_string("x");
	assert_int_equal(tsi_audit_claims_new(claims, &cl),
	    TSI_ERR_INVALID_ARG);
	assert_null(cl);
	json_decref(claims);
	tsi_audit_claims_unref(NULL);
}

struct wait1 {
	int done, rc;
	uint64_t seq;
};

static void
wait1_cb(void *arg, int rc, uint64_t seq)
{
	struct wait1 *w = arg;

	w->rc = rc;
	w->seq = seq;
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
}

/* Records submitted with claims made once are stored, indexed and chained
 * as the others, in between them. */
static void
test_submit_claims(void **state)
{
	char *dir = test_tmpdir();
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_claims *cl = NULL;
	struct tsi_audit_query q;
	struct tsi_audit_verify_result vr;
	struct wait1 w;
	json_t *rec, *rest, *got = NULL;
	uint64_t seq, next;
	int i, count;

	(void)state;
	assert_int_equal(tsi_audit_open(dir, NULL, &a), TSI_OK);
	rec = test_rec("read", "secret/data/x", "allow", "fra02", "c9", "ns-q",
	    "sha256:cc");
	assert_int_equal(tsi_audit_claims_new(json_object_get(rec, "claims"),
	                     &cl),
	    TSI_OK);
	rest = json_copy(rec);
	json_object_del(rest, "claims");
	assert_int_equal(tsi_audit_submit_claims(a, rec, cl, wait1_cb, &w),
	    TSI_ERR_INVALID_ARG);
	for (i = 0; i < 6; i++) {
		if (i % 2) {
			assert_int_equal(tsi_audit_append(a, rec, &seq),
			    TSI_OK);
			continue;
		}
		memset(&w, 0, sizeof(w));
		assert_int_equal(tsi_audit_submit_claims(a, rest, cl, wait1_cb,
		                     &w),
		    TSI_OK);
		while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE))
			usleep(1000);
		assert_int_equal(w.rc, TSI_OK);
		assert_int_equal(w.seq, (uint64_t)i + 1);
	}
	tsi_audit_claims_unref(cl);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	memset(&q, 0, sizeof(q));
	q.datacenter = "fra02";
	q.limit = SIZE_MAX;
	count = 0;
	assert_int_equal(tsi_audit_query(r, &q, count_cb, &count, &next),
	    TSI_OK);
	assert_int_equal(count, 6);
	assert_int_equal(tsi_audit_get(r, 1, &got), TSI_OK);
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(got, "claims"),
	                            "namespace")),
	    "ns-q");
	json_decref(got);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	assert_int_equal(vr.records, 6);
	tsi_audit_reader_close(r);
	tsi_audit_close(a);
	json_decref(rest);
	json_decref(rec);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prep_fixed),
		cmocka_unit_test(test_prep_random),
		cmocka_unit_test(test_prep_refuses),
		cmocka_unit_test(test_prep_indexed),
		cmocka_unit_test(test_prep_claims_once),
		cmocka_unit_test(test_submit_claims),
	};

	tsi_log_init("test", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
