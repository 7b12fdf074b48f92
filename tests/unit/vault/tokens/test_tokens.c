/*
 * tsi-vault's token table (vault-plugin/tokens.c): create and look up,
 * expiry, the size bound with sweeping, fixed (root) tokens, and threads
 * creating and looking up at once across the lock shards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "vault.h"
#include "tokens.h"
#include "tsi/buf.h"
#include "tsi/err.h"

static char *
create(struct vault_tokens *t, const char *role, long ttl, int want)
{
	char acc[VAULT_ACCESSOR_LEN + 1], *tok = NULL;
	json_t *claims = json_pack("{s:s}", "region", "eu-de");
	json_t *pol = json_pack("[s]", "rule-a");

	assert_int_equal(vault_tokens_create(t, NULL, role, claims, pol, ttl, 0,
	                     &tok, acc),
	    want);
	json_decref(claims);
	json_decref(pol);
	if (want == TSI_OK) {
		assert_non_null(tok);
		assert_int_equal(strncmp(tok, "hvs.", 4), 0);
		assert_true(strlen(acc) > 0);
	}
	return tok;
}

static void
expect_lookup(struct vault_tokens *t, const char *tok, const char *role,
    int want)
{
	struct vault_token vt;

	assert_int_equal(vault_tokens_lookup(t, tok, &vt), want);
	if (want == TSI_OK) {
		assert_string_equal(vt.role, role);
		assert_string_equal(json_string_value(
		                        json_object_get(vt.claims, "region")),
		    "eu-de");
		assert_int_equal(json_array_size(vt.policies), 1);
	}
	vault_token_clear(&vt);
}

static void
test_create_lookup(void **state)
{
	struct vault_tokens *t = NULL;
	char *a, *b;

	(void)state;
	assert_int_equal(vault_tokens_new(0, &t), TSI_OK);
	a = create(t, "role-a", 600, TSI_OK);
	b = create(t, "role-b", 0, TSI_OK);
	assert_string_not_equal(a, b);
	expect_lookup(t, a, "role-a", TSI_OK);
	expect_lookup(t, b, "role-b", TSI_OK);
	expect_lookup(t, "hvs.unknown", NULL, TSI_ERR_NOT_FOUND);
	expect_lookup(t, "", NULL, TSI_ERR_NOT_FOUND);
	assert_int_equal(vault_tokens_count(t), 2);
	tsi_strfree(a);
	tsi_strfree(b);
	vault_tokens_free(t);
}

static void
test_fixed_token(void **state)
{
	struct vault_tokens *t = NULL;
	struct vault_token vt;
	char acc[VAULT_ACCESSOR_LEN + 1], *tok = NULL;

	(void)state;
	assert_int_equal(vault_tokens_new(4, &t), TSI_OK);
	assert_int_equal(vault_tokens_create(t, "s.root-token", "root", NULL,
	                     NULL, 0, 1, &tok, acc),
	    TSI_OK);
	assert_string_equal(tok, "s.root-token");
	assert_int_equal(vault_tokens_lookup(t, "s.root-token", &vt), TSI_OK);
	assert_int_equal(vt.root, 1);
	assert_int_equal(vt.expires, 0);
	vault_token_clear(&vt);
	assert_int_equal(vault_tokens_create(t, "", "root", NULL, NULL, 0, 1,
	                     &tok, acc),
	    TSI_ERR_INVALID_ARG);
	tsi_strfree(tok);
	vault_tokens_free(t);
}

/* Full: refused with STORE_FULL; expired entries make room again. */
static void
test_bound_and_expiry(void **state)
{
	struct vault_tokens *t = NULL;
	char *toks[8], *more[8], *x;
	time_t end;
	int i;

	(void)state;
	assert_int_equal(vault_tokens_new(8, &t), TSI_OK);
	for (i = 0; i < 8; i++)
		toks[i] = create(t, "short", 1, TSI_OK);
	x = create(t, "extra", 600, TSI_ERR_STORE_FULL);
	assert_null(x);
	assert_int_equal(vault_tokens_count(t), 8);
	for (i = 0; i < 8; i++)
		expect_lookup(t, toks[i], "short", TSI_OK);
	end = time(NULL) + 2;
	while (time(NULL) < end)
		usleep(50 * 1000);
	for (i = 0; i < 8; i++)
		expect_lookup(t, toks[i], NULL, TSI_ERR_EXPIRED);
	for (i = 0; i < 8; i++)
		more[i] = create(t, "long", 600, TSI_OK);
	assert_int_equal(vault_tokens_count(t), 8);
	for (i = 0; i < 8; i++) {
		expect_lookup(t, toks[i], NULL, TSI_ERR_NOT_FOUND);
		expect_lookup(t, more[i], "long", TSI_OK);
	}
	x = create(t, "extra", 600, TSI_ERR_STORE_FULL);
	for (i = 0; i < 8; i++) {
		tsi_strfree(toks[i]);
		tsi_strfree(more[i]);
	}
	vault_tokens_free(t);
}

struct worker {
	struct vault_tokens *t;
	int wrong;
};

static void *
worker(void *arg)
{
	struct worker *w = arg;
	char acc[VAULT_ACCESSOR_LEN + 1], *tok, name[32];
	struct vault_token vt;
	int i;

	for (i = 0; i < 400; i++) {
		tok = NULL;
		snprintf(name, sizeof(name), "r%d", i);
		if (vault_tokens_create(w->t, NULL, name, NULL, NULL, 600, 0,
		        &tok, acc) != TSI_OK) {
			w->wrong++;
			continue;
		}
		if (vault_tokens_lookup(w->t, tok, &vt) != TSI_OK ||
		    strcmp(vt.role, name) != 0 || strcmp(vt.accessor, acc) != 0)
			w->wrong++;
		vault_token_clear(&vt);
		tok[5] ^= 1; /* another token: unknown */
		if (vault_tokens_lookup(w->t, tok, &vt) != TSI_ERR_NOT_FOUND)
			w->wrong++;
		vault_token_clear(&vt);
		tsi_strfree(tok);
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct vault_tokens *t = NULL;
	struct worker w[4];
	pthread_t th[4];
	int i;

	(void)state;
	assert_int_equal(vault_tokens_new(0, &t), TSI_OK);
	for (i = 0; i < 4; i++) {
		w[i].t = t;
		w[i].wrong = 0;
		assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]),
		    0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		assert_int_equal(w[i].wrong, 0);
	assert_int_equal(vault_tokens_count(t), 1600);
	vault_tokens_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_lookup),
		cmocka_unit_test(test_fixed_token),
		cmocka_unit_test(test_bound_and_expiry),
		cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
