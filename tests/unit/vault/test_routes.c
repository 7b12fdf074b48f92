/*
 * The route table (routes.c) and the mounts policies speak of (mounts.c):
 *  - which row takes which request (first match, methods, exact, prefix
 *    and tree paths), and how the server runs it;
 *  - every policy mount is served by a row, so that a rule can never
 *    name a path no handler answers;
 *  - the policy library names no URL of its own: its sources have no
 *    "secret/" or "sys/" in them (the mounts come from the program).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>

#include "vault.h"
#include "metrics.h"
#include "routes.h"
#include "mounts.h"
#include "tsi/err.h"

static void
expect_row(const char *method, const char *path, vault_handler_fn *h,
    unsigned flags, const char *metric)
{
	const struct vault_route *rt = vault_route_find(method, path);

	if (rt == NULL)
		fail_msg("%s %s: no row", method, path);
	if (rt->handler != h)
		fail_msg("%s %s: another handler", method, path);
	assert_int_equal(rt->flags & (VAULT_ROUTE_ASYNC | VAULT_ROUTE_BLOCKING),
	    flags);
	assert_string_equal(vault_route_metric(rt), metric);
}

static void
test_rows(void **state)
{
	(void)state;
	expect_row("POST", "auth/trusted-identity/login", vault_auth_login,
	    VAULT_ROUTE_ASYNC, "login");
	expect_row("GET", "secret/data/a/b", vault_kv_handle, VAULT_ROUTE_ASYNC,
	    "kv_data");
	expect_row("GET", "secret/data", vault_kv_handle, VAULT_ROUTE_ASYNC,
	    "kv_data");
	expect_row("POST", "secret/data/a", vault_kv_handle,
	    VAULT_ROUTE_BLOCKING, "kv_data");
	expect_row("PATCH", "secret/data/a", vault_kv_handle,
	    VAULT_ROUTE_BLOCKING, "kv_data");
	expect_row("LIST", "secret/metadata/a/", vault_kv_handle,
	    VAULT_ROUTE_ASYNC, "kv_metadata");
	expect_row("DELETE", "secret/metadata/a", vault_kv_handle,
	    VAULT_ROUTE_BLOCKING, "kv_metadata");
	expect_row("LIST", "secret/data/a/", vault_kv_handle,
	    VAULT_ROUTE_BLOCKING, "kv_data");
	expect_row("POST", "secret/delete/a", vault_kv_handle,
	    VAULT_ROUTE_BLOCKING, "kv_data");
	expect_row("GET", "secret/config", vault_kv_handle, VAULT_ROUTE_ASYNC,
	    "kv_data");
	expect_row("GET", "sys/health", vault_sys_health, 0, "health");
	expect_row("HEAD", "sys/health", vault_sys_health, 0, "health");
	expect_row("GET", "sys/metrics", vault_sys_metrics, 0, "metrics");
	expect_row("GET", "sys/audit/releases", vault_audit_releases,
	    VAULT_ROUTE_BLOCKING, "audit_releases");
	expect_row("GET", "auth/token/lookup-self", vault_token_self,
	    VAULT_ROUTE_BLOCKING, "token");
	expect_row("POST", "auth/token/create", vault_token_admin,
	    VAULT_ROUTE_BLOCKING, "token");
	expect_row("GET", "sys/internal/ui/mounts/secret/x", vault_sys_info, 0,
	    "sys");
	/* A method the handler refuses still reaches it (its own 405). */
	expect_row("BREW", "sys/health", vault_sys_health, 0, "health");
}

static void
test_no_row(void **state)
{
	static const char *const paths[] = {
		"secret/datax",
		"secret/metadatax/a",
		"secret/delete",
		"secret/config/x",
		"sys/healthz",
		"sys/audit",
		"auth/token/lookupx",
		"kv/data/x",
		"",
		"auth/trusted-identity/login/x",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (vault_route_find("GET", paths[i]) != NULL)
			fail_msg("'%s' should have no row", paths[i]);
	assert_null(vault_route_find("GET", NULL));
	assert_string_equal(vault_route_metric(NULL), "other");
}

static void
test_metric_labels(void **state)
{
	const char *names[VAULT_METRIC_ROUTES];
	size_t n, i, j;

	(void)state;
	n = vault_route_metrics(names, VAULT_METRIC_ROUTES);
	assert_true(n >= 2 && n < VAULT_METRIC_ROUTES);
	assert_string_equal(names[0], "login");
	assert_string_equal(names[n - 1], "other");
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			assert_string_not_equal(names[i], names[j]);
}

/* Each mount a rule may name has a row that serves paths under it. */
static void
test_mounts_routed(void **state)
{
	const struct tsi_policy_mount *m;
	char path[128];
	size_t n, i;

	(void)state;
	m = vault_policy_mounts(&n);
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		size_t l = strlen(m[i].prefix);

		snprintf(path, sizeof(path), "%s%s", m[i].prefix,
		    m[i].prefix[l - 1] == '/' ? "releases" : "");
		if (vault_route_find("GET", path) == NULL)
			fail_msg("mount %s: no route serves %s", m[i].prefix,
			    path);
	}
}

/* Reads a file whole; caller frees. */
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long len;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	assert_true((len = ftell(fp)) >= 0);
	rewind(fp);
	assert_non_null(buf = malloc((size_t)len + 1));
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	buf[len] = '\0';
	fclose(fp);
	return buf;
}

/* A URL in the text: "secret/" or "sys/" not preceded by '<' (an
 * #include <sys/...>). */
static const char *
url_in(const char *text)
{
	static const char *const words[] = { "secret/", "sys/" };
	const char *p;
	size_t i;

	for (i = 0; i < 2; i++)
		for (p = text; (p = strstr(p, words[i])) != NULL; p++)
			if (p == text || p[-1] != '<')
				return p;
	return NULL;
}

/* Scans the policy sources in dir (those named policy_* when prefix, else
 * every .c and .h); returns how many it read. */
static size_t
scan(const char *dir, int prefix)
{
	char path[1024];
	struct dirent *de;
	size_t files = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		const char *hit;
		char *text;

		if (prefix ? strncmp(de->d_name, "policy_", 7) != 0
		           : l < 3 ||
		            (strcmp(de->d_name + l - 2, ".c") != 0 &&
		                strcmp(de->d_name + l - 2, ".h") != 0))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		text = slurp(path);
		if ((hit = url_in(text)) != NULL)
			fail_msg("%s names a URL: '%.40s'", path, hit);
		free(text);
		files++;
	}
	closedir(d);
	return files;
}

static void
test_policy_library_names_no_url(void **state)
{
	const char *src = getenv("TSI_SOURCE_DIR");
	char dir[512];
	size_t files;

	(void)state;
	assert_non_null(src);
	snprintf(dir, sizeof(dir), "%s/lib", src);
	files = scan(dir, 1);
	snprintf(dir, sizeof(dir), "%s/lib/policy", src);
	files += scan(dir, 0);
	/* policy_eval.c, policy_glob.c, policy_load.c, policy_int.h, ... */
	assert_true(files >= 4);
	/* The checker itself finds one. */
	assert_non_null(url_in("{ \"secret/data/\", 1 }"));
	assert_null(url_in("#include <sys/stat.h>"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_no_row),
		cmocka_unit_test(test_metric_labels),
		cmocka_unit_test(test_mounts_routed),
		cmocka_unit_test(test_policy_library_names_no_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
