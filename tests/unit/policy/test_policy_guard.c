/*
 * Guardrails: deny rules with `guardrail = true;` bind the root token too
 * (tsi_policy_eval_root). Root has no claims, so a guardrail that depends on
 * a claim denies root on its paths (fail closed); deny rules without the
 * flag, and every allow rule, leave root alone; the flag is refused on allow
 * rules and as anything but a boolean.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "policy_dir.h"
#include "tsi/err.h"
#include "tsi/policy.h"
#include "vault-plugin/mounts.h"

static char dir[256];

static const char set_text[] =
    "rules = (\n"
    "  { name = \"never-outside-eu\"; effect = \"deny\"; guardrail = true;\n"
    "    paths = [ \"secret/data/eu/*\", \"secret/metadata/eu/*\" ];\n"
    "    match = { region = [ \"!eu-*\" ]; }; },\n"
    "  { name = \"read-fence\"; effect = \"deny\"; guardrail = true;\n"
    "    paths = [ \"secret/data/fenced/*\" ]; capabilities = [ \"read\" ]; "
    "},\n"
    "  { name = \"own-ns-only\"; effect = \"deny\"; guardrail = true;\n"
    "    paths = [ \"secret/data/ns/{namespace}/private/*\" ]; },\n"
    "  { name = \"no-tmp\"; effect = \"deny\"; guardrail = false;\n"
    "    paths = [ \"secret/data/tmp/*\" ]; },\n"
    "  { name = \"plain-deny\"; effect = \"deny\";\n"
    "    paths = [ \"secret/data/plain/*\" ]; },\n"
    "  { name = \"eu-read\"; paths = [ \"secret/data/eu/*\" ];\n"
    "    capabilities = [ \"read\" ]; }\n"
    ");\n"
    "roles = ( { name = \"eu\"; rules = [ \"eu-read\" ]; } );\n";

static struct tsi_policy_set *
load(const char *text, char *err, size_t errlen, int *rc)
{
	struct tsi_policy_set *p = NULL;

	assert_int_equal(pd_make(dir, sizeof(dir)), 0);
	assert_int_equal(pd_write(dir, "a.conf", text), 0);
	*rc = tsi_policy_load_dir(dir, &p, err, errlen);
	pd_rm(dir);
	return p;
}

static void
expect_root(const struct tsi_policy_set *p, const json_t *claims,
    const char *path, int cap, int allowed, const char *rule)
{
	struct tsi_decision d;
	int rc = tsi_policy_eval_root(p, claims, path, cap, &d);

	if (d.allowed != allowed || strcmp(d.rule, rule) != 0)
		fail_msg("%s %s: want %s by %s, got %s by %s (%s)", path,
		    tsi_cap_name(cap), allowed ? "allow" : "deny", rule,
		    d.allowed ? "allow" : "deny", d.rule, d.reason);
	assert_int_equal(rc, allowed ? TSI_OK : TSI_ERR_DENIED);
}

static void
test_root_bound_by_guardrails(void **state)
{
	struct tsi_policy_set *p;
	json_t *empty = json_object();
	char err[512];
	int rc;

	(void)state;
	p = load(set_text, err, sizeof(err), &rc);
	assert_int_equal(rc, TSI_OK);
	assert_int_equal(tsi_policy_guardrails(p), 3);
	/* Root has no region: the geofence denies it, read and write alike,
	 * whether its claims are NULL or an empty object. */
	expect_root(p, NULL, "secret/data/eu/gdpr", TSI_CAP_READ, 0,
	    "never-outside-eu");
	expect_root(p, empty, "secret/data/eu/gdpr", TSI_CAP_READ, 0,
	    "never-outside-eu");
	expect_root(p, empty, "secret/data/eu/gdpr", TSI_CAP_CREATE, 0,
	    "never-outside-eu");
	expect_root(p, empty, "secret/metadata/eu/", TSI_CAP_LIST, 0,
	    "never-outside-eu");
	/* A guardrail limited to read leaves root its other capabilities. */
	expect_root(p, empty, "secret/data/fenced/k", TSI_CAP_READ, 0,
	    "read-fence");
	expect_root(p, empty, "secret/data/fenced/k", TSI_CAP_CREATE, 1,
	    "root");
	/* A {claim} root cannot fill matches any segment (fail closed). */
	expect_root(p, empty, "secret/data/ns/prod/private/k", TSI_CAP_READ, 0,
	    "own-ns-only");
	/* Deny rules that are not guardrails do not bind root. */
	expect_root(p, empty, "secret/data/tmp/x", TSI_CAP_READ, 1, "root");
	expect_root(p, empty, "secret/data/plain/x", TSI_CAP_DELETE, 1, "root");
	expect_root(p, empty, "secret/data/other", TSI_CAP_READ, 1, "root");
	expect_root(p, empty, "sys/audit/releases", TSI_CAP_AUDIT, 1, "root");
	/* Root with an EU region claim (a named admin token, say) is inside
	 * the fence. */
	{
		json_t *eu = json_pack("{ss}", "region", "eu-de");

		expect_root(p, eu, "secret/data/eu/gdpr", TSI_CAP_READ, 1,
		    "root");
		json_decref(eu);
	}
	/* Paths that could slip past a pattern are refused, not allowed. */
	expect_root(p, empty, "secret/data/x/../eu/gdpr", TSI_CAP_READ, 0,
	    "default-deny");
	expect_root(p, empty, "secret/data//eu/gdpr", TSI_CAP_READ, 0,
	    "default-deny");
	expect_root(p, empty, "secret/data/eu/gdpr", TSI_CAP_LIST, 0,
	    "default-deny");
	/* Role tokens: every deny rule applies, guardrail or not. */
	{
		json_t *us = json_pack("{ss}", "region", "us-south");
		struct tsi_decision d;

		assert_int_equal(tsi_policy_eval(p, "eu", us,
		                     "secret/data/eu/x", TSI_CAP_READ, &d),
		    TSI_ERR_DENIED);
		assert_string_equal(d.rule, "never-outside-eu");
		assert_int_equal(tsi_policy_eval(p, NULL, us,
		                     "secret/data/tmp/x", TSI_CAP_READ, &d),
		    TSI_ERR_DENIED);
		assert_string_equal(d.rule, "no-tmp");
		json_decref(us);
	}
	/* No set: no guardrails. */
	expect_root(NULL, empty, "secret/data/eu/gdpr", TSI_CAP_READ, 1,
	    "root");
	json_decref(empty);
	tsi_policy_unref(p);
}

static void
test_guardrail_errors(void **state)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "rules = ( { name = \"a\"; guardrail = true;\n"
		  "  paths = [ \"secret/data/x\" ]; capabilities = [ \"read\" "
		  "]; } );\n",
		    "a.conf:1: rule 'a': 'guardrail' is for deny rules only" },
		{ "rules = ( { name = \"b\"; effect = \"deny\";\n"
		  "  paths = [ \"secret/data/x\" ];\n  guardrail = \"yes\"; } "
		  ");\n",
		    "a.conf:3: rule 'b': 'guardrail' must be true or false" },
		{ "rules = ( { name = \"c\"; effect = \"deny\";\n"
		  "  paths = [ \"secret/data/x\" ]; guardrail = 1; } );\n",
		    "a.conf:2: rule 'c': 'guardrail' must be true or false" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512];
		int rc;
		struct tsi_policy_set *p =
		    load(cases[i].text, err, sizeof(err), &rc);

		assert_null(p);
		assert_int_equal(rc, TSI_ERR_CONFIG);
		if (strstr(err, cases[i].err) == NULL)
			fail_msg("want '%s', got '%s'", cases[i].err, err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_bound_by_guardrails),
		cmocka_unit_test(test_guardrail_errors),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
