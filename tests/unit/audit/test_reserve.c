/* The log under hostile load (issue 15.1): pruning by size stops at
 * allowed decisions younger than keep_allow_s, and the room kept by
 * reserve_bytes is refused to unauthenticated records while authenticated
 * ones still commit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <cmocka.h>

#include "audit_test.h"

#define ALLOWS 20

/* n records submitted at once (group commit), all committed. */
static void
append_n(struct tsi_audit *a, const char *decision, int n, unsigned flags)
{
	struct test_sub sub;
	json_t *rec;
	int i;

	test_sub_init(&sub, n);
	for (i = 0; i < n; i++) {
		rec =
		    test_rec(strcmp(decision, "allow") == 0 ? "read" : "login",
		        "secret/data/app/db", decision, "dal05", "c1", "ns",
		        "sha256:aa");
		assert_int_equal(tsi_audit_submit_flags(a, rec, NULL, flags,
		                     test_sub_done, &sub),
		    TSI_OK);
		json_decref(rec);
	}
	test_sub_wait(&sub);
	assert_int_equal(sub.failed, 0);
}

/* How many of seqs 1..ALLOWS are still in the log. */
static int
kept_allows(const char *dir)
{
	struct tsi_audit_reader *r = NULL;
	json_t *rec;
	uint64_t s;
	int n = 0;

	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	for (s = 1; s <= ALLOWS; s++)
		if (tsi_audit_get(r, s, &rec) == TSI_OK) {
			n++;
			json_decref(rec);
		}
	tsi_audit_reader_close(r);
	return n;
}

static int
prune_run(long long keep_allow_s, int *held)
{
	char *dir = test_tmpdir();
	struct tsi_audit_opts o;
	struct tsi_audit *a = NULL;
	struct tsi_audit_status st;
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_verify_result vr;
	size_t pruned = 0;
	int n;

	memset(&o, 0, sizeof(o));
	o.retain_bytes = 64 * 1024;
	o.keep_allow_s = keep_allow_s;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	append_n(a, "allow", ALLOWS, 0);
	append_n(a, "deny", 600, TSI_AUDIT_UNAUTH);
	assert_int_equal(tsi_audit_prune(a, &pruned), TSI_OK);
	tsi_audit_status(a, &st);
	*held = st.retention_held;
	tsi_audit_close(a);
	n = kept_allows(dir);
	assert_int_equal(tsi_audit_reader_open(dir, &r), TSI_OK);
	assert_int_equal(tsi_audit_verify(r, &vr), TSI_OK);
	tsi_audit_reader_close(r);
	test_rmrf(dir);
	free(dir);
	return n;
}

static void
test_young_allows_not_pruned(void **state)
{
	int held = 0;

	(void)state;
	/* Without the floor, pruning by size takes the oldest: the allows. */
	assert_int_equal(prune_run(0, &held), 0);
	assert_int_equal(held, 0);
	/* With it, every one stays, and the status says pruning is held. */
	assert_int_equal(prune_run(3600, &held), ALLOWS);
	assert_int_equal(held, 1);
}

static void
test_reserve_for_authenticated(void **state)
{
	char *dir = test_tmpdir();
	struct tsi_audit_opts o;
	struct tsi_audit *a = NULL;
	struct tsi_audit_status st;
	json_t *rec;
	uint64_t seq;
	int i, refused = 0, rc;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.map_size = 1 << 20;
	o.reserve_bytes = 512 * 1024;
	assert_int_equal(tsi_audit_open(dir, &o, &a), TSI_OK);
	/* Unauthenticated records until the reserve is reached (bounded:
	 * 1 MiB holds well under 5,000 records). */
	for (i = 0; i < 5000 && !refused; i++) {
		rec = test_rec("login", "auth/trusted-identity/login", "deny",
		    "dal05", "c1", "ns", "sha256:aa");
		rc = tsi_audit_append_flags(a, rec, TSI_AUDIT_UNAUTH, &seq);
		json_decref(rec);
		if (rc != TSI_OK) {
			assert_int_equal(rc, TSI_ERR_AUDIT);
			refused = 1;
		}
	}
	assert_true(refused);
	tsi_audit_status(a, &st);
	assert_true(st.reserve_in_use);
	assert_true(st.reserve_refused >= 1);
	assert_true(st.free_bytes < o.reserve_bytes);
	assert_true(st.healthy);
	/* Authenticated records still commit, in the reserve. */
	append_n(a, "allow", 100, 0);
	tsi_audit_status(a, &st);
	assert_true(st.healthy);
	tsi_audit_close(a);
	test_rmrf(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_young_allows_not_pruned),
		cmocka_unit_test(test_reserve_for_authenticated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
