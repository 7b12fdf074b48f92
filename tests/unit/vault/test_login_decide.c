/*
 * The login decision (auth.h) on its own: no request, no token table, no
 * audit log. The repository's example policies (policies/) and claims made
 * here; a JWT that does not verify, and no trust store at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth.h"
#include "mounts.h"
#include "tsi/err.h"

static struct tsi_policy_set *
examples(void)
{
	const char *src = getenv("TSI_SOURCE_DIR");
	struct tsi_policy_set *p = NULL;
	char dir[512], err[512] = "";

	assert_non_null(src);
	snprintf(dir, sizeof(dir), "%s/policies", src);
	if (tsi_policy_load_dir(dir, &p, err, sizeof(err)) != TSI_OK)
		fail_msg("policies: %s", err);
	return p;
}

/* The demo role's workload: hipaaCluster in dal05, exp seconds from now. */
static json_t *
demo_claims(time_t now, long exp_in, const char *cluster)
{
	json_t *c = json_pack("{sssssssssIsI}", "sub", "spiffe://x/medical",
	    "cluster-name", cluster, "datacenter", "dal05", "region", "eu-de",
	    "exp", (json_int_t)(now + exp_in), "iat", (json_int_t)now);

	assert_non_null(c);
	return c;
}

static void
test_allow_ttl_capped_by_exp(void **state)
{
	struct tsi_policy_set *p = examples();
	struct vault_login_decision d;
	time_t now = 1700000000;
	json_t *c;

	(void)state;
	/* The role's token_ttl (300) when the JWT lives longer. */
	c = demo_claims(now, 3600, "hipaaCluster");
	memset(&d, 0, sizeof(d));
	vault_login_decide_claims(p, "demo", c, now, &d);
	assert_true(d.allow);
	assert_int_equal(d.status, 200);
	assert_int_equal(d.ttl, 300);
	assert_int_equal(d.expires_at, now + 3600);
	assert_true(d.nrules >= 1);
	assert_string_equal(d.rules[0], "medical-records");
	assert_non_null(strstr(d.reason, "role 'demo'"));
	json_decref(c);
	/* Never past the JWT's exp. */
	c = demo_claims(now, 42, "hipaaCluster");
	memset(&d, 0, sizeof(d));
	vault_login_decide_claims(p, "demo", c, now, &d);
	assert_true(d.allow);
	assert_int_equal(d.ttl, 42);
	json_decref(c);
	tsi_policy_unref(p);
}

static void
test_refusals(void **state)
{
	struct tsi_policy_set *p = examples();
	struct vault_login_decision d;
	time_t now = 1700000000;
	json_t *c;

	(void)state;
	/* A bound claim that does not match. */
	c = demo_claims(now, 3600, "otherCluster");
	memset(&d, 0, sizeof(d));
	vault_login_decide_claims(p, "demo", c, now, &d);
	assert_false(d.allow);
	assert_int_equal(d.status, 403);
	assert_string_not_equal(d.rule, "");
	json_decref(c);
	/* A role nobody defined. */
	c = demo_claims(now, 3600, "hipaaCluster");
	memset(&d, 0, sizeof(d));
	vault_login_decide_claims(p, "no-such-role", c, now, &d);
	assert_false(d.allow);
	assert_int_equal(d.status, 403);
	/* No policy loaded: default deny. */
	memset(&d, 0, sizeof(d));
	vault_login_decide_claims(NULL, "demo", c, now, &d);
	assert_false(d.allow);
	assert_string_equal(d.rule, "default-deny");
	assert_non_null(strstr(d.reason, "no policy loaded"));
	json_decref(c);
	/* A JWT at its exp would give a token dead on arrival. */
	c = demo_claims(now, 0, "hipaaCluster");
	memset(&d, 0, sizeof(d));
	vault_login_decide_claims(p, "demo", c, now, &d);
	assert_false(d.allow);
	assert_string_equal(d.rule, "jwt");
	assert_non_null(strstr(d.reason, "expires before"));
	json_decref(c);
	tsi_policy_unref(p);
}

static void
test_jwt_refused(void **state)
{
	struct tsi_policy_set *p = examples();
	struct vault_login_decision d;
	struct tsi_trust *t = NULL;
	/* {"alg":"ES256"}.{"sub":"x","cluster-name":"c"}.sig: never verifies */
	const char *jwt = "eyJhbGciOiJFUzI1NiJ9."
	                  "eyJzdWIiOiJ4IiwiY2x1c3Rlci1uYW1lIjoiYyJ9.c2ln";

	(void)state;
	/* No CA configured: every JWT refused, nothing trusted. */
	vault_login_decide(NULL, NULL, p, "demo", jwt, time(NULL), &d);
	assert_false(d.allow);
	assert_int_equal(d.status, 403);
	assert_string_equal(d.rule, "jwt");
	assert_non_null(strstr(d.reason, "no trusted CA configured"));
	assert_null(d.claims);
	/* What it claims is kept apart, for the record only. */
	assert_non_null(d.unverified);
	assert_string_equal(json_string_value(
	                        json_object_get(d.unverified, "cluster-name")),
	    "c");
	vault_login_decision_clear(&d);
	assert_null(d.unverified);

	/* A trust store with no CA in it: the signature path fails. */
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	vault_login_decide(t, NULL, p, "demo", jwt, time(NULL), &d);
	assert_false(d.allow);
	assert_string_equal(d.rule, "jwt");
	assert_non_null(strstr(d.reason, "jwt refused: "));
	assert_null(d.claims);
	vault_login_decision_clear(&d);
	tsi_trust_free(t);
	tsi_policy_unref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allow_ttl_capped_by_exp),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_jwt_refused),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
