/*
 * Policy evaluation cases as data: the JSON files of tests/data/policy/cases run against
 * the policy set in tests/data/policy/. Each file holds base claims and a
 * list of cases; a case may override claims ("claims"), remove some
 * ("unset"), and names the expected decision, deciding rule and optionally a
 * reason substring and the login ttl. Cases with "login": true check
 * tsi_policy_login, the others tsi_policy_eval.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsi/err.h"
#include "tsi/policy.h"
#include "vault-plugin/mounts.h"

static char polDir[4096], caseDir[4096];

static int
setup(void **state)
{
	const char *src = getenv("TSI_SOURCE_DIR");
	struct tsi_policy_set *p = NULL;
	char err[1024];

	if (src == NULL)
		src = ".";
	snprintf(polDir, sizeof(polDir), "%s/tests/data/policy", src);
	snprintf(caseDir, sizeof(caseDir), "%s/tests/data/policy/cases", src);
	if (tsi_policy_load_dir(polDir, &p, err, sizeof(err)) != TSI_OK) {
		print_error("loading %s: %s\n", polDir, err);
		return -1;
	}
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	tsi_policy_unref(*state);
	return 0;
}

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Runs one case; returns 0 when it passed, prints why and returns 1 not. */
static int
run_case(const struct tsi_policy_set *p, const char *file, const json_t *base,
    const json_t *c)
{
	const char *name = jstr(c, "name"), *path = jstr(c, "path");
	const char *role = jstr(c, "role"), *expect = jstr(c, "expect");
	const char *rule = jstr(c, "rule"), *reason = jstr(c, "reason");
	const char *capname = jstr(c, "capability");
	json_t *claims = json_deep_copy(base), *v;
	struct tsi_decision d;
	size_t i;
	int fail = 0, r;
	long ttl = -1;

	if (claims == NULL || name == NULL || expect == NULL || rule == NULL) {
		print_error("%s: malformed case %s\n", file, name ? name : "?");
		json_decref(claims);
		return 1;
	}
	if ((v = json_object_get(c, "claims")) != NULL)
		json_object_update(claims, v);
	json_array_foreach (json_object_get(c, "unset"), i, v)
		json_object_del(claims, json_string_value(v));
	memset(&d, 0, sizeof(d));
	if (json_is_true(json_object_get(c, "login"))) {
		r = tsi_policy_login(p, role, claims, &ttl, &d);
		if ((r == TSI_OK) != d.allowed)
			fail = 1;
		if ((v = json_object_get(c, "ttl")) != NULL &&
		    json_integer_value(v) != ttl) {
			print_error("%s: %s: ttl %ld\n", file, name, ttl);
			fail = 1;
		}
	} else {
		int cap = tsi_cap_from_name(capname ? capname : "read");

		r = tsi_policy_eval(p, role, claims, path, cap, &d);
		if ((r == TSI_OK) != d.allowed)
			fail = 1;
	}
	if (strcmp(expect, d.allowed ? "allow" : "deny") != 0 ||
	    strcmp(rule, d.rule) != 0 ||
	    (reason != NULL && strstr(d.reason, reason) == NULL))
		fail = 1;
	if (fail)
		print_error("%s: case '%s': want %s by %s%s%s, got %s by %s "
		            "(%s)\n",
		    file, name, expect, rule, reason ? " with " : "",
		    reason ? reason : "", d.allowed ? "allow" : "deny", d.rule,
		    d.reason);
	json_decref(claims);
	return fail;
}

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_cases(void **state)
{
	const struct tsi_policy_set *p = *state;
	DIR *d = opendir(caseDir);
	struct dirent *de;
	char *names[64];
	size_t n = 0, i;
	int total = 0, failed = 0, allows = 0, denies = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < 64) {
		size_t l = strlen(de->d_name);

		if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);
	assert_true(n >= 1);
	for (i = 0; i < n; i++) {
		char path[8192];
		json_error_t jerr;
		json_t *doc, *c;
		size_t j;

		snprintf(path, sizeof(path), "%s/%s", caseDir, names[i]);
		doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (doc == NULL)
			fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
		json_array_foreach (json_object_get(doc, "cases"), j, c) {
			total++;
			failed += run_case(p, names[i],
			    json_object_get(doc, "claims"), c);
			if (strcmp(jstr(c, "expect"), "allow") == 0)
				allows++;
			else
				denies++;
		}
		json_decref(doc);
		free(names[i]);
	}
	print_message("policy cases: %d run, %d failed (%d allow, %d deny)\n",
	    total, failed, allows, denies);
	assert_int_equal(failed, 0);
	assert_true(total >= 40);
	assert_true(allows >= 10 && denies >= 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
	};

	vault_policy_mounts_register();
	return cmocka_run_group_tests(tests, setup, teardown);
}
