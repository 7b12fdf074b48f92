/*
 * What Vault clients probe and how they spell things, against the real
 * server over TLS: ?list= read like Go's ParseBool (400 for any other
 * spelling), sys/internal/ui/mounts/<path> saying secret/ is KV version 2
 * (403 "preflight capability check" elsewhere and without a token),
 * sys/mounts and sys/auth for root only, sys/seal-status, sys/init,
 * sys/leader in Vault's shapes, sys/health's query parameters, and unknown
 * routes answering a message in "errors", never an empty list.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

struct st {
	struct vfx f;
	struct vfx_node node;
	char img[72];
	char *tok; /* the demo workload's token */
};

static const char policy_fmt[] =
    "roles = ( { name = \"demo\"; rules = [ \"medical\" ]; token_ttl = 300; } "
    ");\n"
    "rules = ( { name = \"medical\"; paths = [ \"secret/data/medical/*\" ];\n"
    "    capabilities = [ \"read\" ]; match = { images = [ \"%s\" ]; }; } );\n";

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	char policy[1024];
	long status = 0;

	assert_non_null(s);
	vfx_image("image-x", s->img);
	snprintf(policy, sizeof(policy), policy_fmt, s->img);
	assert_int_equal(vfx_init(&s->f, policy, NULL), 0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->node),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "medical/r1",
	                     "{\"data\":{\"patient\":\"one\"}}"),
	    200);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "medical/r2",
	                     "{\"data\":{\"patient\":\"two\"}}"),
	    200);
	s->tok = vfx_login_as(&s->f, &s->node, s->img, "prod", "demo", &status);
	assert_non_null(s->tok);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	assert_int_equal(vfx_stop(&s->f), 0);
	free(s->tok);
	vfx_node_free(&s->node);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

/* One request; the answer stays in *r (vresp_clear). */
static void
req(struct st *s, const char *method, const char *path, const char *token,
    struct vresp *r)
{
	assert_int_equal(vfx_http(&s->f, NULL, method, path, token, NULL, r),
	    0);
}

/* errors[0] of the answer, or "" when absent (an empty list included). */
static const char *
first_error(const struct vresp *r)
{
	const char *e = json_string_value(
	    json_array_get(json_object_get(r->json, "errors"), 0));

	return e != NULL ? e : "";
}

static void
test_list_parsebool(void **state)
{
	static const char *const yes[] = { "true", "True", "TRUE", "1", "t",
		"T" };
	static const char *const no[] = { "false", "False", "0", "f", "F" };
	static const char *const bad[] = { "yes", "on", "tRUE", "2", "truee" };
	struct st *s = *state;
	struct vresp r;
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(path, sizeof(path),
		    "/v1/secret/metadata/medical?list=%s", yes[i]);
		req(s, "GET", path, s->f.root, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(json_array_size(
		                     json_object_get(json_object_get(r.json,
		                                         "data"),
		                         "keys")),
		    2);
		vresp_clear(&r);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		/* Not a list: the metadata read of the folder, which holds no
		 * secret of its own. */
		snprintf(path, sizeof(path),
		    "/v1/secret/metadata/medical/r1?list=%s", no[i]);
		req(s, "GET", path, s->f.root, &r);
		assert_int_equal(r.status, 200);
		assert_null(
		    json_object_get(json_object_get(r.json, "data"), "keys"));
		vresp_clear(&r);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path),
		    "/v1/secret/metadata/medical?list=%s", bad[i]);
		req(s, "GET", path, s->f.root, &r);
		assert_int_equal(r.status, 400);
		assert_true(strlen(first_error(&r)) > 0);
		vresp_clear(&r);
	}
	/* LIST unchanged. */
	req(s, "LIST", "/v1/secret/metadata/medical", s->f.root, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(
	                     json_object_get(json_object_get(r.json, "data"),
	                         "keys")),
	    2);
	vresp_clear(&r);
	/* A list of the data path is Vault's unsupported operation, not a
	 * read that ignores the request. */
	req(s, "GET", "/v1/secret/data/medical/r1?list=true", s->f.root, &r);
	assert_int_equal(r.status, 405);
	vresp_clear(&r);
}

static void
test_ui_mounts(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *d;

	req(s, "GET", "/v1/sys/internal/ui/mounts/secret/medical/r1", s->tok,
	    &r);
	assert_int_equal(r.status, 200);
	d = json_object_get(r.json, "data");
	assert_string_equal(json_string_value(json_object_get(d, "path")),
	    "secret/");
	assert_string_equal(json_string_value(json_object_get(d, "type")),
	    "kv");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d, "options"),
	                            "version")),
	    "2");
	assert_non_null(json_object_get(r.json, "request_id"));
	vresp_clear(&r);

	req(s, "GET", "/v1/sys/internal/ui/mounts/secret", s->f.root, &r);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);

	req(s, "GET", "/v1/sys/internal/ui/mounts/kv/foo", s->tok, &r);
	assert_int_equal(r.status, 403);
	assert_string_equal(first_error(&r),
	    "preflight capability check "
	    "returned 403, please ensure client's policies grant access to "
	    "path \"kv/foo/\"");
	vresp_clear(&r);
	/* Without a token nothing is told. */
	req(s, "GET", "/v1/sys/internal/ui/mounts/secret/x", NULL, &r);
	assert_int_equal(r.status, 403);
	vresp_clear(&r);
}

static void
test_mounts(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *d;

	req(s, "GET", "/v1/sys/mounts", s->f.root, &r);
	assert_int_equal(r.status, 200);
	d = json_object_get(r.json, "data");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d, "secret/"),
	                            "type")),
	    "kv");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(d, "secret/"),
	                            "options"),
	                        "version")),
	    "2");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d, "sys/"),
	                            "type")),
	    "system");
	/* Vault repeats the table at the top level. */
	assert_non_null(json_object_get(r.json, "secret/"));
	vresp_clear(&r);

	req(s, "GET", "/v1/sys/auth", s->f.root, &r);
	assert_int_equal(r.status, 200);
	d = json_object_get(r.json, "data");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d,
	                                            "trusted-identity/"),
	                            "type")),
	    "jwt");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d, "token/"),
	                            "type")),
	    "token");
	vresp_clear(&r);

	req(s, "GET", "/v1/sys/mounts", s->tok, &r);
	assert_int_equal(r.status, 403);
	assert_string_equal(first_error(&r), "permission denied");
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/mounts", NULL, &r);
	assert_int_equal(r.status, 403);
	vresp_clear(&r);
}

static void
test_seal_init_leader(void **state)
{
	struct st *s = *state;
	struct vresp r;

	req(s, "GET", "/v1/sys/seal-status", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_false(json_object_get(r.json, "sealed")));
	assert_true(json_is_true(json_object_get(r.json, "initialized")));
	assert_true(
	    json_is_false(json_object_get(r.json, "removed_from_cluster")));
	assert_string_equal(json_string_value(json_object_get(r.json, "type")),
	    "shamir");
	assert_int_equal(json_integer_value(json_object_get(r.json, "t")), 1);
	assert_int_equal(json_integer_value(
	                     json_object_get(r.json, "progress")),
	    0);
	assert_non_null(
	    json_string_value(json_object_get(r.json, "cluster_id")));
	vresp_clear(&r);

	req(s, "GET", "/v1/sys/init", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.json, "initialized")));
	vresp_clear(&r);

	req(s, "GET", "/v1/sys/leader", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_false(json_object_get(r.json, "ha_enabled")));
	assert_string_equal(json_string_value(
	                        json_object_get(r.json, "leader_address")),
	    "");
	vresp_clear(&r);

	req(s, "POST", "/v1/sys/seal-status", NULL, &r);
	assert_int_equal(r.status, 405);
	vresp_clear(&r);
}

static void
test_health_params(void **state)
{
	struct st *s = *state;
	struct vresp r;

	req(s, "GET", "/v1/sys/health?activecode=299", NULL, &r);
	assert_int_equal(r.status, 299);
	assert_true(json_is_false(json_object_get(r.json, "sealed")));
	vresp_clear(&r);
	req(s, "HEAD", "/v1/sys/health?activecode=204&standbyok=true", NULL,
	    &r);
	assert_int_equal(r.status, 204);
	vresp_clear(&r);
	/* Codes for states this server is never in change nothing. */
	req(s, "GET",
	    "/v1/sys/health?standbycode=200&sealedcode=200&"
	    "uninitcode=200&drsecondarycode=200&performancestandbycode=200&"
	    "haunhealthycode=200&removedcode=200&perfstandbyok=1&standbyok=F",
	    NULL, &r);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/health?activecode=abc", NULL, &r);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/health?sealedcode=20x", NULL, &r);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/health?removedcode=", NULL, &r);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/health?standbyok=yes", NULL, &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(first_error(&r),
	    "bad value for standbyok parameter");
	vresp_clear(&r);
}

/* Every way the router says no carries a message. */
static void
test_unknown_routes(void **state)
{
	static const char *const paths[] = { "/v1/secret/foo", "/v1/sys/nope",
		"/v1/auth/token/lookup-nothing", "/v1/kv/data/x", "/v1/",
		"/v1/auth/trusted-identity/role/demo" };
	struct st *s = *state;
	struct vresp r;
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		req(s, "GET", paths[i], s->f.root, &r);
		assert_int_equal(r.status, 404);
		assert_non_null(
		    strstr(first_error(&r), "no handler for route"));
		vresp_clear(&r);
	}
	/* A path that is not UTF-8 cannot be quoted: still a message. */
	req(s, "GET", "/v1/no/%ff%fe", s->f.root, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(first_error(&r), "route entry not found");
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/internal/ui/mounts/x%ff", s->tok, &r);
	assert_int_equal(r.status, 403);
	assert_string_equal(first_error(&r), "permission denied");
	vresp_clear(&r);
	req(s, "GET", "/v1/secret/foo", s->f.root, &r);
	assert_string_equal(first_error(&r),
	    "no handler for route "
	    "\"secret/foo\". route entry not found.");
	vresp_clear(&r);
	/* 405s say so too. */
	req(s, "PUT", "/v1/sys/health", NULL, &r);
	assert_int_equal(r.status, 405);
	assert_true(strlen(first_error(&r)) > 0);
	vresp_clear(&r);
	req(s, "PATCH", "/v1/sys/mounts", s->f.root, &r);
	assert_int_equal(r.status, 405);
	assert_true(strlen(first_error(&r)) > 0);
	vresp_clear(&r);
	/* KV v2 operations not offered, as docs/vault.md lists them
	 * (secret/delete|undelete|destroy, POST|PATCH|DELETE
	 * secret/metadata and POST secret/config are,
	 * test_vault_kv2.c):
	 * a message every time, never an empty list. */
	req(s, "DELETE", "/v1/secret/config", s->f.root, &r);
	assert_int_equal(r.status, 405);
	assert_true(strlen(first_error(&r)) > 0);
	vresp_clear(&r);
	req(s, "GET", "/v1/sys/mounts/secret/tune", s->f.root, &r);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(first_error(&r), "no handler for route"));
	vresp_clear(&r);
	/* PATCH is offered, as a merge patch only (test_vault_kv2.c). */
	req(s, "PATCH", "/v1/secret/data/medical/r1", s->f.root, &r);
	assert_int_equal(r.status, 415);
	assert_true(strlen(first_error(&r)) > 0);
	vresp_clear(&r);
	/* A missing secret stays Vault's empty list. */
	req(s, "GET", "/v1/secret/data/medical/none", s->f.root, &r);
	assert_int_equal(r.status, 404);
	assert_int_equal(json_array_size(json_object_get(r.json, "errors")), 0);
	vresp_clear(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_parsebool),
		cmocka_unit_test(test_ui_mounts),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_seal_init_leader),
		cmocka_unit_test(test_health_params),
		cmocka_unit_test(test_unknown_routes),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
