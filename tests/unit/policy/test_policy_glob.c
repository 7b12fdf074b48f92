/* Path globs, claim value globs, pattern and path validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/policy/policy_int.h"
#include "tsi/policy.h"
#include "vault-plugin/mounts.h"

struct pm {
	const char *pat, *path;
	int want;
};

static void
test_path_globs(void **state)
{
	static const struct pm t[] = {
		{ "secret/data/a", "secret/data/a", 1 },
		{ "secret/data/a", "secret/data/a/", 0 },
		{ "secret/data/a", "secret/data/ab", 0 },
		{ "secret/data/a", "secret/data", 0 },
		{ "secret/data/a/*", "secret/data/a/", 1 },
		{ "secret/data/a/*", "secret/data/a/b/c", 1 },
		{ "secret/data/a/*", "secret/data/a", 0 },
		{ "secret/data/a/*", "secret/data/ab/c", 0 },
		{ "secret/data/a*", "secret/data/a", 1 },
		{ "secret/data/a*", "secret/data/abc/d", 1 },
		{ "secret/data/a*", "secret/data/b", 0 },
		{ "secret/data/+/x", "secret/data/one/x", 1 },
		{ "secret/data/+/x", "secret/data/one/two/x", 0 },
		{ "secret/data/+/x", "secret/data//x", 0 },
		{ "secret/data/+/x", "secret/data/one/x/y", 0 },
		{ "secret/data/+", "secret/data/one", 1 },
		{ "secret/data/+", "secret/data/one/", 0 },
		{ "secret/data/+", "secret/data/", 0 },
		{ "secret/data/+/*", "secret/data/one/", 1 },
		{ "secret/data/+/*", "secret/data/one", 0 },
		{ "secret/+/a/+/b", "secret/data/a/x/b", 1 },
		{ "secret/data/+*", "secret/data/one/two", 1 },
		{ "secret/data/+*", "secret/data/", 0 },
		{ "*", "anything/at/all", 1 },
		{ "*", "", 1 },
		{ "", "", 1 },
		{ "", "a", 0 },
		/* '?' and a '*' not at the end are literal in paths */
		{ "secret/data/a?", "secret/data/ab", 0 },
		{ "secret/data/a?", "secret/data/a?", 1 },
		/* Templates never match without claims. */
		{ "secret/data/{region}/*", "secret/data/eu/x", 0 },
		{ "secret/data/{region}/*", "secret/data/{region}/x", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (tsi_policy_path_match(t[i].pat, t[i].path) != t[i].want)
			fail_msg("'%s' vs '%s': want %d", t[i].pat, t[i].path,
			    t[i].want);
	assert_false(tsi_policy_path_match(NULL, "a"));
	assert_false(tsi_policy_path_match("a", NULL));
}

static const char *
fake_resolve(const char *name, size_t len, void *arg, char *tmp, size_t tl)
{
	const char *const *kv = arg;

	for (; kv[0] != NULL; kv += 2)
		if (strlen(kv[0]) == len && memcmp(kv[0], name, len) == 0)
			return kv[1];
	(void)tmp;
	(void)tl;
	return NULL;
}

static void
test_path_templates(void **state)
{
	static const char *const claims[] = {
		"region",
		"eu-de",
		"cluster-name",
		"c/1",
		"namespace",
		"*",
		"node",
		"+",
		NULL,
	};
	struct tsi_pol_tmpl t = { fake_resolve, (void *)claims, 0 };
	struct tsi_pol_tmpl w = { fake_resolve, (void *)claims, 1 };

	(void)state;
	assert_true(tsi_pol_path_match("secret/data/{region}/*",
	    "secret/data/eu-de/x", &t));
	assert_false(tsi_pol_path_match("secret/data/{region}/*",
	    "secret/data/eu-fr/x", &t));
	assert_true(tsi_pol_path_match("secret/data/r-{region}-x/k",
	    "secret/data/r-eu-de-x/k", &t));
	assert_true(tsi_pol_path_match("secret/data/{region}",
	    "secret/data/eu-de", &t));
	assert_false(tsi_pol_path_match("secret/data/{region}",
	    "secret/data/eu-de/x", &t));
	/* A template in the partial last segment is a prefix. */
	assert_true(tsi_pol_path_match("secret/data/{region}*",
	    "secret/data/eu-dex/y", &t));
	/* '/' in a value: never spans segments, never matches. */
	assert_false(tsi_pol_path_match("secret/data/{cluster-name}/*",
	    "secret/data/c/1/x", &t));
	assert_false(tsi_pol_path_match("secret/data/{cluster-name}/*",
	    "secret/data/c/x", &t));
	/* Glob characters in values are literal. */
	assert_false(tsi_pol_path_match("secret/data/{namespace}/x",
	    "secret/data/abc/x", &t));
	assert_true(tsi_pol_path_match("secret/data/{namespace}/x",
	    "secret/data/*/x", &t));
	assert_false(tsi_pol_path_match("secret/data/{node}/x",
	    "secret/data/abc/x", &t));
	assert_true(
	    tsi_pol_path_match("secret/data/{node}/x", "secret/data/+/x", &t));
	/* Unknown claim: no match; in deny (wild) mode: any one segment. */
	assert_false(
	    tsi_pol_path_match("secret/data/{pod}/x", "secret/data/p/x", &t));
	assert_true(
	    tsi_pol_path_match("secret/data/{pod}/x", "secret/data/p/x", &w));
	assert_false(
	    tsi_pol_path_match("secret/data/{pod}/x", "secret/data/p/q/x", &w));
	assert_true(tsi_pol_path_match("secret/data/{cluster-name}/*",
	    "secret/data/c/1/x", &w));
	assert_false(
	    tsi_pol_path_match("secret/data/{pod}/x", "secret/data//x", &w));
}

struct vg {
	const char *pat, *s;
	int want;
};

static void
test_value_globs(void **state)
{
	static const struct vg t[] = {
		{ "abc", "abc", 1 },
		{ "abc", "abd", 0 },
		{ "abc", "ab", 0 },
		{ "abc", "abcd", 0 },
		{ "*", "", 1 },
		{ "*", "x/y", 1 },
		{ "a*", "a", 1 },
		{ "a*", "abc/def", 1 },
		{ "*c", "abc", 1 },
		{ "*c", "abd", 0 },
		{ "a?c", "abc", 1 },
		{ "a?c", "ac", 0 },
		{ "a?c", "abbc", 0 },
		{ "?", "", 0 },
		{ "a*b*c", "a-b-c", 1 },
		{ "a*b*c", "a-c-b", 0 },
		{ "eu-*", "eu-de", 1 },
		{ "eu-*", "us-south", 0 },
		{ "dal0?", "dal05", 1 },
		{ "sha256:4f*", "sha256:4f5a", 1 },
		{ "[a]", "a", 0 },
		{ "[a]", "[a]", 1 },
		{ "\\*", "*", 0 },
		{ "**", "x", 1 },
		{ "a**", "a", 1 },
	};
	char big[4000], pat[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (tsi_pol_glob(t[i].pat, t[i].s) != t[i].want)
			fail_msg("glob '%s' vs '%s': want %d", t[i].pat, t[i].s,
			    t[i].want);
	/* Pathological pattern stays bounded (no exponential backtracking). */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i + 2 < sizeof(pat); i += 2) {
		pat[i] = 'a';
		pat[i + 1] = '*';
	}
	pat[i] = 'b';
	pat[i + 1] = '\0';
	assert_false(tsi_pol_glob(pat, big));
}

static void
test_value_lists(void **state)
{
	char *pos[] = { "team-*", "!team-secret" };
	char *neg[] = { "!kube-*" };
	char *two[] = { "a", "b" };

	(void)state;
	assert_true(tsi_pol_value_match(pos, 2, "team-a"));
	assert_false(tsi_pol_value_match(pos, 2, "team-secret"));
	assert_false(tsi_pol_value_match(pos, 2, "other"));
	assert_true(tsi_pol_value_match(neg, 1, "default"));
	assert_false(tsi_pol_value_match(neg, 1, "kube-system"));
	assert_true(tsi_pol_value_match(two, 2, "b"));
	assert_false(tsi_pol_value_match(two, 2, "c"));
}

struct pc {
	const char *pat;
	const char *why;
};

static void
test_pattern_check(void **state)
{
	static const struct pc t[] = {
		{ "secret/data/x", NULL },
		{ "secret/data/*", NULL },
		{ "secret/metadata/+/x/*", NULL },
		{ "secret/data/{region}/{images}/*", NULL },
		{ "secret/data/app-{namespace}/x", NULL },
		{ "secret/data/+*", NULL },
		{ "sys/audit/releases", NULL },
		{ "", "empty path" },
		{ "/secret/data/x", "must not start with '/'" },
		{ "secret/data/*/x", "'*' is only allowed at the end" },
		{ "secret/data/a+b", "'+' must be a whole segment" },
		{ "secret/data/+a", "'+' must be a whole segment" },
		{ "secret/data//x", "empty segment" },
		{ "secret/data/../x", "'.' or '..' segment" },
		{ "secret/data/{region", "'{' without '}'" },
		{ "secret/data/{reg/ion}", "'{' without '}'" },
		{ "secret/data/region}", "'}' without '{'" },
		{ "secret/data/{}", "empty {} template" },
		{ "secret/data/{re gion}", "malformed {claim} template" },
		{ "secret/data/{regoin}/*", "unknown claim '{regoin}'" },
		{ "secret/*", "not under a known mount" },
		{ "secret/+/x", "not under a known mount" },
		{ "secret/data", "not under a known mount" },
		{ "kv/data/x", "not under a known mount" },
		{ "auth/token/create", "not under a known mount" },
		{ "secret/data/a\tb", "control character" },
	};
	char why[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r;

		why[0] = '\0';
		r = tsi_pol_pattern_check(t[i].pat, why, sizeof(why));
		if (t[i].why == NULL && r != 0)
			fail_msg("'%s' refused: %s", t[i].pat, why);
		if (t[i].why != NULL &&
		    (r == 0 || strstr(why, t[i].why) == NULL))
			fail_msg("'%s': want '%s', got '%s'", t[i].pat,
			    t[i].why, r == 0 ? "(accepted)" : why);
	}
}

static void
test_path_valid(void **state)
{
	static const char *good[] = { "secret/data/x", "secret/metadata/x/",
		"sys/audit/releases", "a", "secret/data/.hidden",
		"secret/data/..x" };
	static const char *bad[] = { "", "/secret/data/x", "secret//x",
		"secret/data/./x", "secret/data/../x", "secret/data/..",
		"secret/data/x//", "secret/data/\x01", "/" };
	char huge[2000];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (tsi_pol_path_valid(good[i]) != 0)
			fail_msg("'%s' refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tsi_pol_path_valid(bad[i]) == 0)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(tsi_pol_path_valid(NULL), -1);
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(tsi_pol_path_valid(huge), -1);
}

static void
test_cap_names(void **state)
{
	static const char *names[] = { "create", "read", "update", "delete",
		"list", "audit" };
	size_t i;

	(void)state;
	for (i = 0; i < 6; i++) {
		int c = tsi_cap_from_name(names[i]);

		assert_int_equal(c, 1 << i);
		assert_string_equal(tsi_cap_name(c), names[i]);
	}
	assert_int_equal(tsi_cap_from_name("sudo"), 0);
	assert_int_equal(tsi_cap_from_name("READ"), 0);
	assert_int_equal(tsi_cap_from_name(NULL), 0);
	assert_string_equal(tsi_cap_name(TSI_CAP_READ | TSI_CAP_LIST),
	    "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_globs),
		cmocka_unit_test(test_path_templates),
		cmocka_unit_test(test_value_globs),
		cmocka_unit_test(test_value_lists),
		cmocka_unit_test(test_pattern_check),
		cmocka_unit_test(test_path_valid),
		cmocka_unit_test(test_cap_names),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
