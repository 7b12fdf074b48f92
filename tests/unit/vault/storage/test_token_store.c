/*
 * The backend-neutral token store suite: every token backend passes it,
 * written only against token_store.h (open by URL, then each operation and
 * its errors). A new backend adds one row to `backends` below
 * (docs/internals/add-a-storage-backend.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "token_store.h"
#include "tsi/err.h"

/* One row per backend: the URL of a new, empty store. */
struct backend {
	const char *name;
	const char *url;
};

static const struct backend backends[] = {
	{ "memory", "memory://" },
};

#define MAX 16

static const struct backend *current;

static int
setup(void **state)
{
	struct token_store_opts o = { MAX };
	struct token_store *s = NULL;

	if (token_store_open(current->url, &o, &s) != TSI_OK)
		return -1;
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct token_store *s = *state;

	s->ops->close(s);
	return 0;
}

#define NOW ((time_t)1764000000)

/* A record whose hash and accessor derive from i; chain of n certs whose
 * serials are "<i>-<k>". References: json_decref by token_rec_clear. */
static void
rec_make(struct token_rec *r, unsigned i, time_t expires, size_t n,
    struct tsi_chain_cert *chain)
{
	size_t k;

	memset(r, 0, sizeof(*r));
	memset(r->hash, 0, sizeof(r->hash));
	/* Spread over the first bytes, as a SHA-256 would be. */
	r->hash[0] = (unsigned char)(i * 37);
	r->hash[1] = (unsigned char)(i * 101);
	r->hash[2] = (unsigned char)i;
	r->hash[31] = (unsigned char)(i >> 8);
	snprintf(r->t.accessor, sizeof(r->t.accessor), "acc%021u", i);
	snprintf(r->t.role, sizeof(r->t.role), "role-%u", i);
	snprintf(r->t.display_name, sizeof(r->t.display_name), "dn-%u", i);
	assert_non_null(r->t.claims = json_pack("{ss}", "sub", "spiffe://x"));
	assert_non_null(r->t.policies = json_pack("[s]", "rule"));
	r->t.issued = NOW - 10;
	r->t.expires = expires;
	for (k = 0; k < n; k++) {
		memset(&chain[k], 0, sizeof(chain[k]));
		chain[k].sha256[0] = (unsigned char)k;
		snprintf(chain[k].serial, sizeof(chain[k].serial), "%u-%zu", i,
		    k);
		chain[k].trusted = k + 1 == n;
	}
	r->chain = n > 0 ? chain : NULL;
	r->nchain = n;
}

/* Inserts record i and drops the test's own references. */
static int
insert(struct token_store *s, unsigned i, time_t expires, size_t n)
{
	struct tsi_chain_cert chain[TSI_CHAIN_MAX];
	struct token_rec r;
	int rc;

	rec_make(&r, i, expires, n, chain);
	rc = s->ops->insert(s, &r, NOW);
	r.chain = NULL; /* the test's array, not the heap */
	token_rec_clear(&r);
	return rc;
}

static int
lookup(struct token_store *s, unsigned i, time_t now, int want_chain,
    struct token_rec *out)
{
	struct tsi_chain_cert chain[TSI_CHAIN_MAX];
	struct token_rec key;
	int rc;

	rec_make(&key, i, 0, 0, chain);
	rc = s->ops->lookup(s, key.hash, now, want_chain, out);
	token_rec_clear(&key);
	return rc;
}

static void
test_open_by_url(void **state)
{
	struct token_store *s = *state, *o = NULL;

	assert_string_equal(s->ops->name, current->name);
	assert_int_equal(token_store_open("nosuch://", NULL, &o),
	    TSI_ERR_INVALID_ARG);
	assert_null(o);
	assert_int_equal(token_store_open("memory", NULL, &o),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(s->ops->count(s), 0);
}

static void
test_insert_lookup(void **state)
{
	struct token_store *s = *state;
	struct token_rec r;

	assert_int_equal(lookup(s, 1, NOW, 0, &r), TSI_ERR_NOT_FOUND);
	assert_int_equal(insert(s, 1, NOW + 60, 3), TSI_OK);
	assert_int_equal(insert(s, 2, 0, 0), TSI_OK);
	assert_int_equal(s->ops->count(s), 2);
	/* A copy with every field; the chain only when asked for. */
	assert_int_equal(lookup(s, 1, NOW, 0, &r), TSI_OK);
	assert_string_equal(r.t.role, "role-1");
	assert_string_equal(r.t.display_name, "dn-1");
	assert_string_equal(r.t.accessor, "acc000000000000000000001");
	assert_string_equal(json_string_value(
	                        json_object_get(r.t.claims, "sub")),
	    "spiffe://x");
	assert_int_equal(json_array_size(r.t.policies), 1);
	assert_int_equal(r.t.issued, NOW - 10);
	assert_int_equal(r.t.expires, NOW + 60);
	assert_null(r.chain);
	token_rec_clear(&r);
	assert_int_equal(lookup(s, 1, NOW, 1, &r), TSI_OK);
	assert_int_equal(r.nchain, 3);
	assert_string_equal(r.chain[2].serial, "1-2");
	assert_true(r.chain[2].trusted);
	token_rec_clear(&r);
	/* expires 0: never. */
	assert_int_equal(lookup(s, 2, NOW + 100000000, 1, &r), TSI_OK);
	assert_int_equal(r.nchain, 0);
	token_rec_clear(&r);
	/* The same hash twice is refused. */
	assert_int_equal(insert(s, 1, 0, 0), TSI_ERR_EXISTS);
	assert_int_equal(s->ops->count(s), 2);
}

static void
test_expiry(void **state)
{
	struct token_store *s = *state;
	struct token_rec r;

	assert_int_equal(insert(s, 1, NOW + 5, 0), TSI_OK);
	assert_int_equal(insert(s, 2, NOW + 50, 0), TSI_OK);
	assert_int_equal(lookup(s, 1, NOW + 4, 0, &r), TSI_OK);
	token_rec_clear(&r);
	assert_int_equal(lookup(s, 1, NOW + 5, 0, &r), TSI_ERR_EXPIRED);
	assert_int_equal(s->ops->lookup_accessor(s, "acc000000000000000000001",
	                     NOW + 5, &r),
	    TSI_ERR_EXPIRED);
	assert_int_equal(s->ops->expire(s, NOW + 5), 1);
	assert_int_equal(s->ops->count(s), 1);
	assert_int_equal(lookup(s, 1, NOW + 5, 0, &r), TSI_ERR_NOT_FOUND);
	assert_int_equal(lookup(s, 2, NOW + 5, 0, &r), TSI_OK);
	token_rec_clear(&r);
	assert_int_equal(s->ops->expire(s, NOW + 5), 0);
}

static void
test_accessor_and_revoke(void **state)
{
	struct token_store *s = *state;
	struct tsi_chain_cert chain[1];
	struct token_rec r, key;
	unsigned i;

	for (i = 1; i <= 5; i++)
		assert_int_equal(insert(s, i, 0, 0), TSI_OK);
	assert_int_equal(s->ops->lookup_accessor(s, "acc000000000000000000004",
	                     NOW, &r),
	    TSI_OK);
	assert_string_equal(r.t.role, "role-4");
	token_rec_clear(&r);
	assert_int_equal(s->ops->lookup_accessor(s, "acc000000000000000000009",
	                     NOW, &r),
	    TSI_ERR_NOT_FOUND);
	/* Revoke by hash. */
	rec_make(&key, 2, 0, 0, chain);
	assert_int_equal(s->ops->revoke(s, key.hash), TSI_OK);
	assert_int_equal(s->ops->revoke(s, key.hash), TSI_ERR_NOT_FOUND);
	token_rec_clear(&key);
	assert_int_equal(lookup(s, 2, NOW, 0, &r), TSI_ERR_NOT_FOUND);
	assert_int_equal(s->ops->lookup_accessor(s, "acc000000000000000000002",
	                     NOW, &r),
	    TSI_ERR_NOT_FOUND);
	/* Revoke by accessor. */
	assert_int_equal(s->ops->revoke_accessor(s, "acc000000000000000000004"),
	    TSI_OK);
	assert_int_equal(s->ops->revoke_accessor(s, "acc000000000000000000004"),
	    TSI_ERR_NOT_FOUND);
	assert_int_equal(lookup(s, 4, NOW, 0, &r), TSI_ERR_NOT_FOUND);
	assert_int_equal(s->ops->count(s), 3);
	/* The others are untouched. */
	assert_int_equal(lookup(s, 5, NOW, 0, &r), TSI_OK);
	token_rec_clear(&r);
}

/* Keeps a record unless a certificate of its chain has serial *arg. */
static int
keep_unless_serial(void *arg, const struct token_rec *rec)
{
	size_t k;

	for (k = 0; k < rec->nchain; k++)
		if (strcmp(rec->chain[k].serial, (const char *)arg) == 0)
			return 0;
	return 1;
}

static void
test_revoke_by_chain(void **state)
{
	struct token_store *s = *state;
	struct token_rec r, *ended = NULL;
	size_t n;

	assert_int_equal(insert(s, 1, 0, 2), TSI_OK); /* serials 1-0 1-1 */
	assert_int_equal(insert(s, 2, 0, 2), TSI_OK);
	assert_int_equal(insert(s, 3, 0, 0), TSI_OK); /* no chain: stays */
	n = s->ops->revoke_if(s, keep_unless_serial, "2-1", &ended);
	assert_int_equal(n, 1);
	assert_non_null(ended);
	assert_string_equal(ended[0].t.accessor, "acc000000000000000000002");
	assert_int_equal(ended[0].nchain, 2);
	token_rec_clear(&ended[0]);
	free(ended);
	assert_int_equal(lookup(s, 2, NOW, 0, &r), TSI_ERR_NOT_FOUND);
	assert_int_equal(lookup(s, 1, NOW, 0, &r), TSI_OK);
	token_rec_clear(&r);
	assert_int_equal(s->ops->count(s), 2);
	/* Without the list, and when nothing matches. */
	assert_int_equal(s->ops->revoke_if(s, keep_unless_serial, "1-0", NULL),
	    1);
	assert_int_equal(s->ops->revoke_if(s, keep_unless_serial, "9-9",
	                     &ended),
	    0);
	assert_int_equal(s->ops->count(s), 1);
}

static void
test_full(void **state)
{
	struct token_store *s = *state;
	struct token_rec r;
	unsigned i;

	for (i = 1; i <= MAX; i++)
		assert_int_equal(insert(s, i, i <= 2 ? NOW + 1 : 0, 0), TSI_OK);
	/* Full: two of them are not yet expired at insert time (NOW). */
	assert_int_equal(insert(s, 100, 0, 0), TSI_ERR_STORE_FULL);
	assert_int_equal(s->ops->count(s), MAX);
	assert_int_equal(lookup(s, 100, NOW, 0, &r), TSI_ERR_NOT_FOUND);
	/* Once expired, they make room. */
	assert_int_equal(s->ops->expire(s, NOW + 1), 2);
	assert_int_equal(insert(s, 100, 0, 0), TSI_OK);
	assert_int_equal(insert(s, 101, 0, 0), TSI_OK);
	assert_int_equal(insert(s, 102, 0, 0), TSI_ERR_STORE_FULL);
	assert_int_equal(s->ops->count(s), MAX);
}

static const struct CMUnitTest suite[] = {
	cmocka_unit_test_setup_teardown(test_open_by_url, setup, teardown),
	cmocka_unit_test_setup_teardown(test_insert_lookup, setup, teardown),
	cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
	cmocka_unit_test_setup_teardown(test_accessor_and_revoke, setup,
	    teardown),
	cmocka_unit_test_setup_teardown(test_revoke_by_chain, setup, teardown),
	cmocka_unit_test_setup_teardown(test_full, setup, teardown),
};

int
main(void)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		current = &backends[i];
		failed += _cmocka_run_group_tests(backends[i].name, suite,
		    sizeof(suite) / sizeof(suite[0]), NULL, NULL);
	}
	return failed != 0;
}
