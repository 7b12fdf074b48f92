/* The audit log's backend-neutral suite: written against include/tsi/audit.h
 * only, with the log named by URL, and run for every row of backends[]
 * (a second backend adds one line there). Append and read back, chain
 * verification, the writer owning its own fields, index queries, retention, reopen
 * (the chain continues), the durable callback, and a full store refusing
 * records with TSI_ERR_AUDIT. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "audit_test.h"
#include "tsi/log.h"

/* Each backend: its scheme, and how a test makes a fresh log's URL from
 * a fresh directory. */
static const char *const backends[] = {
	"lmdb",
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

struct log {
	char *dir;
	char url[600];
};

static void
log_new(struct log *l, const char *scheme)
{
	assert_non_null(l->dir = test_tmpdir());
	assert_true(snprintf(l->url, sizeof(l->url), "%s://%s", scheme,
	                l->dir) < (int)sizeof(l->url));
}

static void
log_free(struct log *l)
{
	test_rmrf(l->dir);
	free(l->dir);
}

static json_t *
rec_n(int i)
{
	return test_rec(i % 3 ? "read" : "write",
	    i % 2 ? "secret/data/odd/x" : "secret/data/even",
	    i % 4 ? "allow" : "deny", i % 2 ? "dal05" : "fra02", "c1",
	    i < 5 ? "ns-a" : "ns-b", i == 7 ? "sha256:bb" : "sha256:aa");
}

static void
append_n(struct tsi_audit *a, int from, int n)
{
	json_t *rec;
	uint64_t seq;
	int i;

	for (i = from; i < from + n; i++) {
		rec = rec_n(i);
		assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
		assert_int_equal(seq, (uint64_t)i + 1);
		json_decref(rec);
	}
}

static void
expect_verified(const char *url, uint64_t records)
{
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result res;

	assert_int_equal(tsi_audit_reader_open_url(url, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &res), TSI_OK);
	assert_int_equal(res.records, records);
	tsi_audit_reader_close(r);
}

static void
append_read_verify(const char *scheme)
{
	struct log l;
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_info info;
	json_t *got, *want;
	uint64_t seq;

	log_new(&l, scheme);
	assert_int_equal(tsi_audit_open_url(l.url, NULL, &a), TSI_OK);
	append_n(a, 0, 10);
	assert_int_equal(tsi_audit_reader_open_url(l.url, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	assert_int_equal(info.first_seq, 1);
	assert_int_equal(info.last_seq, 10);
	for (seq = 1; seq <= 10; seq++) {
		assert_int_equal(tsi_audit_get(r, seq, &got), TSI_OK);
		want = rec_n((int)seq - 1);
		assert_int_equal(json_integer_value(
		                     json_object_get(got, "seq")),
		    seq);
		assert_true(json_equal(json_object_get(got, "claims"),
		    json_object_get(want, "claims")));
		assert_string_equal(json_string_value(
		                        json_object_get(got, "path")),
		    json_string_value(json_object_get(want, "path")));
		json_decref(want);
		json_decref(got);
	}
	assert_int_equal(tsi_audit_get(r, 11, &got), TSI_ERR_NOT_FOUND);
	tsi_audit_reader_close(r);
	expect_verified(l.url, 10);
	tsi_audit_close(a);
	log_free(&l);
}

static int
count_cb(const json_t *rec, void *arg)
{
	(void)rec;
	(*(int *)arg)++;
	return 0;
}

static void
index_queries(const char *scheme)
{
	struct log l;
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_query q;
	uint64_t next;
	int count;

	log_new(&l, scheme);
	assert_int_equal(tsi_audit_open_url(l.url, NULL, &a), TSI_OK);
	append_n(a, 0, 12);
	assert_int_equal(tsi_audit_reader_open_url(l.url, &r), TSI_OK);
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
	COUNT(decision, "deny", 3);
	COUNT(path_prefix, "secret/data/odd/", 6);
	COUNT(path_prefix, "secret/", 12);
	COUNT(datacenter, "fra02", 6);
	COUNT(namespace_, "ns-a", 5);
	COUNT(image, "sha256:bb", 1);
	COUNT(cluster_name, "c1", 12);
	COUNT(op, "write", 4);
#undef COUNT
	/* paging */
	memset(&q, 0, sizeof(q));
	q.limit = 5;
	count = 0;
	assert_int_equal(tsi_audit_query(r, &q, count_cb, &count, &next),
	    TSI_OK);
	assert_int_equal(count, 5);
	assert_int_equal(next, 5);
	tsi_audit_reader_close(r);
	tsi_audit_close(a);
	log_free(&l);
}

static void
retention_and_reopen(const char *scheme)
{
	struct log l;
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_info info;
	struct tsi_audit_opts o;
	size_t pruned = 0;

	log_new(&l, scheme);
	assert_int_equal(tsi_audit_open_url(l.url, NULL, &a), TSI_OK);
	append_n(a, 0, 40);
	tsi_audit_close(a);
	/* reopened, the chain continues where it ended */
	a = NULL;
	assert_int_equal(tsi_audit_open_url(l.url, NULL, &a), TSI_OK);
	append_n(a, 40, 10);
	expect_verified(l.url, 50);
	/* pruning by size keeps a verifiable tail */
	assert_int_equal(tsi_audit_reader_open_url(l.url, &r), TSI_OK);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	tsi_audit_set_retention(a, 0, info.live_bytes / 2);
	assert_int_equal(tsi_audit_prune(a, &pruned), TSI_OK);
	assert_true(pruned > 0 && pruned < 50);
	assert_int_equal(tsi_audit_reader_info(r, &info), TSI_OK);
	assert_int_equal(info.first_seq, pruned + 1);
	assert_int_equal(info.records, 50 - pruned);
	tsi_audit_reader_close(r);
	expect_verified(l.url, 50 - pruned);
	tsi_audit_close(a);
	/* and after a reopen of the pruned log too */
	memset(&o, 0, sizeof(o));
	a = NULL;
	assert_int_equal(tsi_audit_open_url(l.url, &o, &a), TSI_OK);
	append_n(a, 50, 1);
	expect_verified(l.url, 51 - pruned);
	tsi_audit_close(a);
	log_free(&l);
}

struct durable {
	pthread_mutex_t mu;
	uint64_t seq;
	int calls;
};

static void
on_durable(void *arg, uint64_t seq)
{
	struct durable *d = arg;

	pthread_mutex_lock(&d->mu);
	if (seq > d->seq)
		d->seq = seq;
	d->calls++;
	pthread_mutex_unlock(&d->mu);
}

static void
durable_callback(const char *scheme)
{
	struct log l;
	struct tsi_audit *a = NULL;
	struct durable d = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	json_t *rec;
	uint64_t seq;

	log_new(&l, scheme);
	assert_int_equal(tsi_audit_open_url(l.url, NULL, &a), TSI_OK);
	tsi_audit_set_durable_cb(a, on_durable, &d);
	rec = rec_n(1);
	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	/* append returns after its commit, and the callback ran before the
	 * record's own callback (the one append waits for) */
	pthread_mutex_lock(&d.mu);
	assert_int_equal(d.seq, seq);
	assert_int_equal(d.calls, 1);
	pthread_mutex_unlock(&d.mu);
	tsi_audit_set_durable_cb(a, NULL, NULL);
	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	pthread_mutex_lock(&d.mu);
	assert_int_equal(d.calls, 1);
	pthread_mutex_unlock(&d.mu);
	json_decref(rec);
	tsi_audit_close(a);
	log_free(&l);
}

static void
writer_fields_owned(const char *scheme)
{
	struct log l;
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result res;
	json_t *rec;
	uint64_t seq;

	/* the suite cannot edit a store through the interface (the
	 * LMDB tampering tests are test_chain.c and test_format.c): here
	 * the caller's copies of the writer's fields are replaced */
	log_new(&l, scheme);
	assert_int_equal(tsi_audit_open_url(l.url, NULL, &a), TSI_OK);
	rec = rec_n(0);
	json_object_set_new(rec, "hash", json_string("forged"));
	json_object_set_new(rec, "seq", json_integer(99));
	json_object_set_new(rec, "format", json_integer(1));
	assert_int_equal(tsi_audit_append(a, rec, &seq), TSI_OK);
	assert_int_equal(seq, 1);
	json_decref(rec);
	assert_int_equal(tsi_audit_reader_open_url(l.url, &r), TSI_OK);
	assert_int_equal(tsi_audit_get(r, 1, &rec), TSI_OK);
	assert_int_equal(json_integer_value(json_object_get(rec, "seq")), 1);
	assert_int_equal(json_integer_value(json_object_get(rec, "format")), 2);
	assert_string_not_equal(json_string_value(json_object_get(rec, "hash")),
	    "forged");
	json_decref(rec);
	assert_int_equal(tsi_audit_verify(r, &res), TSI_OK);
	assert_int_equal(res.first_bad_seq, 0);
	tsi_audit_reader_close(r);
	tsi_audit_close(a);
	log_free(&l);
}

static void
storage_full(const char *scheme)
{
	struct log l;
	struct tsi_audit *a = NULL;
	struct tsi_audit_opts o;
	struct tsi_audit_status st;
	json_t *rec;
	uint64_t seq = 0, last_ok = 0;
	int i, rc = TSI_OK;

	log_new(&l, scheme);
	memset(&o, 0, sizeof(o));
	o.map_size = 1 << 20; /* a small store that may not grow */
	assert_int_equal(tsi_audit_open_url(l.url, &o, &a), TSI_OK);
	for (i = 0; i < 20000 && rc == TSI_OK; i++) {
		rec = rec_n(i);
		if ((rc = tsi_audit_append(a, rec, &seq)) == TSI_OK)
			last_ok = seq;
		json_decref(rec);
	}
	assert_int_equal(rc, TSI_ERR_AUDIT);
	assert_true(last_ok > 100);
	tsi_audit_status(a, &st);
	assert_int_equal(st.healthy, 0);
	assert_int_equal(st.last_seq, last_ok);
	tsi_audit_close(a);
	/* what was acknowledged is all there, and verifies */
	expect_verified(l.url, last_ok);
	log_free(&l);
}

static void
bad_urls(void **state)
{
	struct tsi_audit *a = NULL;
	struct tsi_audit_reader *r = NULL;

	(void)state;
	assert_int_equal(tsi_audit_open_url("nosuch:///tmp/x", NULL, &a),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_audit_open_url("lmdb://host/tmp/x", NULL, &a),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_audit_open_url("lmdb:relative", NULL, &a),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_audit_reader_open_url("/tmp/no-scheme", &r),
	    TSI_ERR_INVALID_ARG);
	assert_null(a);
	assert_null(r);
}

#define SUITE(fn) \
	static void fn##_all(void **state) \
	{ \
		size_t i; \
		(void)state; \
		for (i = 0; i < NBACKENDS; i++) \
			fn(backends[i]); \
	}
SUITE(append_read_verify)
SUITE(index_queries)
SUITE(retention_and_reopen)
SUITE(durable_callback)
SUITE(writer_fields_owned)
SUITE(storage_full)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(append_read_verify_all),
		cmocka_unit_test(index_queries_all),
		cmocka_unit_test(retention_and_reopen_all),
		cmocka_unit_test(durable_callback_all),
		cmocka_unit_test(writer_fields_owned_all),
		cmocka_unit_test(storage_full_all),
		cmocka_unit_test(bad_urls),
	};

	tsi_log_init("test_backend", TSI_LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
