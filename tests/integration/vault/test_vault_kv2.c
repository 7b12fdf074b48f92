/*
 * KV v2 version operations against the real server over TLS: soft delete
 * of chosen versions (POST secret/delete/P), undelete, destroy (the sealed
 * value leaves the store: checked in the LMDB file after the server
 * stops), DELETE secret/metadata/P (every version and the metadata); each
 * gated by its own capability in Vault's sense and recorded as a decision
 * then an outcome.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ftw.h>
#include <sys/stat.h>

#include "fixture.h"

struct st {
	struct vfx f;
	struct vfx_node node;
	char img[72];
	char *tok; /* the demo workload's token */
};

/* The workload may read app/, destroy under app/, nothing else: no soft
 * delete, no metadata delete. */
static const char policy_fmt[] =
    "roles = ( { name = \"demo\"; rules = [ \"app-read\", \"app-destroy\" ];"
    " token_ttl = 300; } );\n"
    "rules = ( { name = \"app-read\"; paths = [ \"secret/data/app/*\" ];\n"
    "    capabilities = [ \"read\" ]; match = { images = [ \"%s\" ]; }; },\n"
    "  { name = \"app-destroy\"; paths = [ \"secret/destroy/app/*\" ];\n"
    "    capabilities = [ \"update\" ]; match = { images = [ \"%s\" ]; }; } "
    ");\n";

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));
	char policy[2048];
	long status = 0;

	assert_non_null(s);
	vfx_image("image-kv2", s->img);
	snprintf(policy, sizeof(policy), policy_fmt, s->img, s->img);
	assert_int_equal(vfx_init(&s->f, policy, NULL), 0);
	assert_int_equal(vfx_node_new(&s->f, "c1", "us-south", "dal05",
	                     "node-a", &s->node),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	s->tok = vfx_login_as(&s->f, &s->node, s->img, "prod", "demo", &status);
	assert_non_null(s->tok);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	vfx_stop(&s->f);
	free(s->tok);
	vfx_node_free(&s->node);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

static long
call(struct st *s, const char *method, const char *path, const char *token,
    const char *body, struct vresp *r)
{
	assert_int_equal(vfx_http(&s->f, NULL, method, path, token, body, r),
	    0);
	return r->status;
}

static long
call0(struct st *s, const char *method, const char *path, const char *token,
    const char *body)
{
	struct vresp r;
	long st;

	memset(&r, 0, sizeof(r));
	st = call(s, method, path, token, body, &r);
	vresp_clear(&r);
	return st;
}

static const char *
first_error(const struct vresp *r)
{
	const char *e = json_string_value(
	    json_array_get(json_object_get(r->json, "errors"), 0));

	return e != NULL ? e : "";
}

static json_t *
read_meta(const struct vresp *r)
{
	return json_object_get(json_object_get(json_object_get(r->json, "data"),
	                           "metadata"),
	    "destroyed");
}

/* Three versions of app/p. */
static void
put3(struct st *s, const char *p)
{
	int i;

	for (i = 1; i <= 3; i++) {
		char body[64];
		snprintf(body, sizeof(body), "{\"data\":{\"v\":\"value-%d\"}}",
		    i);
		assert_int_equal(vfx_kv_put(&s->f, s->f.root, p, body), 200);
	}
}

static void
test_delete_undelete_destroy(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *vs;

	put3(s, "app/a");
	/* Soft delete of versions 1 and 2 (3 stays current and readable). */
	assert_int_equal(call0(s, "POST", "/v1/secret/delete/app/a", s->f.root,
	                     "{\"versions\":[1,2]}"),
	    204);
	memset(&r, 0, sizeof(r));
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/a?version=1",
	                     s->f.root, NULL, &r),
	    404);
	assert_true(json_is_false(read_meta(&r)));
	assert_true(
	    strlen(json_string_value(
	        json_object_get(json_object_get(json_object_get(r.json, "data"),
	                            "metadata"),
	            "deletion_time"))) > 0);
	vresp_clear(&r);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/a", s->f.root,
	                     NULL),
	    200);
	/* Undelete brings version 1 back with its value. */
	assert_int_equal(call0(s, "POST", "/v1/secret/undelete/app/a",
	                     s->f.root, "{\"versions\":[1]}"),
	    204);
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/a?version=1",
	                     s->f.root, NULL, &r),
	    200);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(r.json, "data"),
	                            "data"),
	                        "v")),
	    "value-1");
	vresp_clear(&r);
	/* Destroy version 2 (soft-deleted) and 3: 404 with destroyed=true,
	 * and undelete cannot bring them back. */
	assert_int_equal(call0(s, "POST", "/v1/secret/destroy/app/a", s->f.root,
	                     "{\"versions\":[2,3]}"),
	    204);
	assert_int_equal(call0(s, "POST", "/v1/secret/undelete/app/a",
	                     s->f.root, "{\"versions\":[2,3]}"),
	    204);
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/a?version=2",
	                     s->f.root, NULL, &r),
	    404);
	assert_true(json_is_true(read_meta(&r)));
	vresp_clear(&r);
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/a", s->f.root,
	                     NULL, &r),
	    404);
	assert_true(json_is_true(read_meta(&r)));
	assert_true(json_is_null(
	    json_object_get(json_object_get(r.json, "data"), "data")));
	vresp_clear(&r);
	/* The metadata agrees. */
	assert_int_equal(call(s, "GET", "/v1/secret/metadata/app/a", s->f.root,
	                     NULL, &r),
	    200);
	vs = json_object_get(json_object_get(r.json, "data"), "versions");
	assert_true(json_is_false(
	    json_object_get(json_object_get(vs, "1"), "destroyed")));
	assert_true(json_is_true(
	    json_object_get(json_object_get(vs, "2"), "destroyed")));
	assert_true(json_is_true(
	    json_object_get(json_object_get(vs, "3"), "destroyed")));
	vresp_clear(&r);
	/* Vault's answers for what is not there: 204; no versions: 400. */
	assert_int_equal(call0(s, "POST", "/v1/secret/destroy/app/none",
	                     s->f.root, "{\"versions\":[1]}"),
	    204);
	assert_int_equal(call0(s, "POST", "/v1/secret/delete/app/a", s->f.root,
	                     "{\"versions\":[99]}"),
	    204);
	assert_int_equal(call(s, "POST", "/v1/secret/delete/app/a", s->f.root,
	                     "{}", &r),
	    400);
	assert_string_equal(first_error(&r), "no version number provided");
	vresp_clear(&r);
	assert_int_equal(call(s, "POST", "/v1/secret/destroy/app/a", s->f.root,
	                     "{\"versions\":[]}", &r),
	    400);
	vresp_clear(&r);
	assert_int_equal(call0(s, "GET", "/v1/secret/destroy/app/a", s->f.root,
	                     NULL),
	    405);
}

static void
test_metadata_delete(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *keys;
	size_t i;

	put3(s, "app/m");
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/keep",
	                     "{\"data\":{\"k\":\"1\"}}"),
	    200);
	assert_int_equal(call0(s, "DELETE", "/v1/secret/metadata/app/m",
	                     s->f.root, NULL),
	    204);
	assert_int_equal(call0(s, "GET", "/v1/secret/metadata/app/m", s->f.root,
	                     NULL),
	    404);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/m?version=1",
	                     s->f.root, NULL),
	    404);
	memset(&r, 0, sizeof(r));
	assert_int_equal(call(s, "LIST", "/v1/secret/metadata/app", s->f.root,
	                     NULL, &r),
	    200);
	keys = json_object_get(json_object_get(r.json, "data"), "keys");
	for (i = 0; i < json_array_size(keys); i++)
		assert_string_not_equal(json_string_value(
		                            json_array_get(keys, i)),
		    "m");
	vresp_clear(&r);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/keep", s->f.root,
	                     NULL),
	    200);
	/* Again: nothing there, still 204 as Vault. */
	assert_int_equal(call0(s, "DELETE", "/v1/secret/metadata/app/m",
	                     s->f.root, NULL),
	    204);
	/* A new write starts again at version 1. */
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/m",
	                     "{\"data\":{\"k\":\"new\"}}"),
	    200);
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/m", s->f.root,
	                     NULL, &r),
	    200);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(json_object_get(r.json, "data"),
	                         "metadata"),
	                     "version")),
	    1);
	vresp_clear(&r);
}

/* Each operation is its own capability: update on secret/destroy/P lets
 * the workload destroy, not soft-delete, undelete or drop metadata. */
static void
test_capabilities(void **state)
{
	struct st *s = *state;
	struct vresp r;

	put3(s, "app/c");
	memset(&r, 0, sizeof(r));
	assert_int_equal(call(s, "POST", "/v1/secret/delete/app/c", s->tok,
	                     "{\"versions\":[1]}", &r),
	    403);
	assert_string_equal(first_error(&r), "permission denied");
	vresp_clear(&r);
	assert_int_equal(call0(s, "POST", "/v1/secret/undelete/app/c", s->tok,
	                     "{\"versions\":[1]}"),
	    403);
	assert_int_equal(call0(s, "DELETE", "/v1/secret/metadata/app/c", s->tok,
	                     NULL),
	    403);
	assert_int_equal(call0(s, "POST", "/v1/secret/destroy/other/c", s->tok,
	                     "{\"versions\":[1]}"),
	    403);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/c?version=1",
	                     s->tok, NULL),
	    200);
	assert_int_equal(call0(s, "POST", "/v1/secret/destroy/app/c", s->tok,
	                     "{\"versions\":[1]}"),
	    204);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/c?version=1",
	                     s->tok, NULL),
	    404);
}

/* The destroy and a secret/config write are in the log twice each: the
 * decision (no status) and the outcome (204) pointing back at it. */
static void
test_audited(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *recs, *e, *dec = NULL, *outc = NULL;
	size_t i;

	put3(s, "app/au");
	assert_int_equal(call0(s, "POST", "/v1/secret/destroy/app/au",
	                     s->f.root, "{\"versions\":[2]}"),
	    204);
	memset(&r, 0, sizeof(r));
	assert_int_equal(call(s, "GET",
	                     "/v1/sys/audit/releases?path=secret/destroy/app/"
	                     "au&limit=100",
	                     s->f.root, NULL, &r),
	    200);
	recs = json_object_get(json_object_get(r.json, "data"), "records");
	json_array_foreach (recs, i, e) {
		const char *ph = json_string_value(json_object_get(e, "phase"));
		if (strcmp(json_string_value(json_object_get(e, "op")),
		        "destroy") != 0 ||
		    ph == NULL)
			continue;
		if (strcmp(ph, "decision") == 0)
			dec = e;
		else if (strcmp(ph, "outcome") == 0)
			outc = e;
	}
	assert_non_null(dec);
	assert_non_null(outc);
	assert_int_equal(json_integer_value(json_object_get(outc, "status")),
	    204);
	assert_int_equal(json_integer_value(
	                     json_array_get(json_object_get(dec, "versions"),
	                         0)),
	    2);
	vresp_clear(&r);
	/* The mount's settings: the same pair, the settings in the
	 * decision. */
	assert_int_equal(call0(s, "POST", "/v1/secret/config", s->f.root,
	                     "{\"max_versions\":9}"),
	    204);
	assert_int_equal(call(s, "GET",
	                     "/v1/sys/audit/releases?path=secret/"
	                     "config&limit=100",
	                     s->f.root, NULL, &r),
	    200);
	dec = outc = NULL;
	recs = json_object_get(json_object_get(r.json, "data"), "records");
	json_array_foreach (recs, i, e) {
		const char *ph = json_string_value(json_object_get(e, "phase"));
		if (strcmp(json_string_value(json_object_get(e, "op")),
		        "write") != 0 ||
		    ph == NULL)
			continue;
		if (strcmp(ph, "decision") == 0)
			dec = e;
		else if (strcmp(ph, "outcome") == 0)
			outc = e;
	}
	assert_non_null(dec);
	assert_non_null(outc);
	assert_int_equal(json_integer_value(json_object_get(outc, "status")),
	    204);
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(dec, "settings"),
	                         "max_versions")),
	    9);
	vresp_clear(&r);
}

/* Destroy is not a mark: the sealed value of the version is gone from the
 * store's file, the others stay. */
static void
test_destroy_removes_value(void **state)
{
	struct st *s = *state;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	char dir[400];
	uint8_t key[32];
	int ver, rc;

	put3(s, "app/z");
	assert_int_equal(call0(s, "POST", "/v1/secret/destroy/app/z", s->f.root,
	                     "{\"versions\":[2]}"),
	    204);
	assert_int_equal(vfx_stop(&s->f), 0);
	snprintf(dir, sizeof(dir), "%s/kv", s->f.data_dir);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "data", 0, &dbi), 0);
	/* The store's key: path, NUL, version as 8 bytes big endian. */
	for (ver = 1; ver <= 3; ver++) {
		memset(key, 0, sizeof(key));
		memcpy(key, "app/z", 5);
		key[5 + 8] = (uint8_t)ver;
		k.mv_size = 5 + 9;
		k.mv_data = key;
		rc = mdb_get(txn, dbi, &k, &v);
		assert_int_equal(rc, ver == 2 ? MDB_NOTFOUND : 0);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* POST/PATCH secret/metadata/P: the settings shown by GET, cas_required
 * enforced on writes, max_versions of the path applied. */
static void
test_metadata_settings(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *d;

	memset(&r, 0, sizeof(r));
	assert_int_equal(
	    call0(s, "POST", "/v1/secret/metadata/app/s", s->f.root,
	        "{\"max_versions\":2,\"cas_required\":true,"
	        "\"delete_version_after\":\"1h30m\","
	        "\"custom_metadata\":{\"owner\":\"team-a\",\"tier\":\"b\"}}"),
	    204);
	assert_int_equal(call(s, "GET", "/v1/secret/metadata/app/s", s->f.root,
	                     NULL, &r),
	    200);
	d = json_object_get(r.json, "data");
	assert_int_equal(json_integer_value(json_object_get(d, "max_versions")),
	    2);
	assert_true(json_is_true(json_object_get(d, "cas_required")));
	assert_string_equal(json_string_value(
	                        json_object_get(d, "delete_version_after")),
	    "1h30m0s");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d,
	                                            "custom_metadata"),
	                            "owner")),
	    "team-a");
	assert_int_equal(json_integer_value(
	                     json_object_get(d, "current_version")),
	    0);
	vresp_clear(&r);
	/* cas_required: a write without cas is refused, as Vault. */
	assert_int_equal(call(s, "POST", "/v1/secret/data/app/s", s->f.root,
	                     "{\"data\":{\"k\":\"1\"}}", &r),
	    400);
	assert_string_equal(first_error(&r),
	    "check-and-set parameter required for this call");
	vresp_clear(&r);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/s", s->f.root,
	                     "{\"data\":{\"k\":\"1\"},\"options\":{\"cas\":0}"
	                     "}"),
	    200);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/s", s->f.root,
	                     "{\"data\":{\"k\":\"2\"},\"options\":{\"cas\":1}"
	                     "}"),
	    200);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/s", s->f.root,
	                     "{\"data\":{\"k\":\"3\"},\"options\":{\"cas\":2}"
	                     "}"),
	    200);
	/* max_versions 2: version 1 is gone. */
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/s?version=1",
	                     s->f.root, NULL),
	    404);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/s?version=2",
	                     s->f.root, NULL),
	    200);
	/* A data read carries the path's custom_metadata, as Vault. */
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/s", s->f.root,
	                     NULL, &r),
	    200);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_object_get(json_object_get(json_object_get(r.json, "data"),
	                            "metadata"),
	            "custom_metadata"),
	        "owner")),
	    "team-a");
	vresp_clear(&r);
	/* PATCH merges custom_metadata (null removes a key), keeps the rest. */
	assert_int_equal(call0(s, "PATCH", "/v1/secret/metadata/app/s",
	                     s->f.root,
	                     "{\"custom_metadata\":{\"owner\":null,"
	                     "\"zone\":\"z1\"},\"cas_required\":false}"),
	    204);
	assert_int_equal(call(s, "GET", "/v1/secret/metadata/app/s", s->f.root,
	                     NULL, &r),
	    200);
	d = json_object_get(r.json, "data");
	assert_null(
	    json_object_get(json_object_get(d, "custom_metadata"), "owner"));
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d,
	                                            "custom_metadata"),
	                            "tier")),
	    "b");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(d,
	                                            "custom_metadata"),
	                            "zone")),
	    "z1");
	assert_int_equal(json_integer_value(json_object_get(d, "max_versions")),
	    2);
	assert_true(json_is_false(json_object_get(d, "cas_required")));
	assert_int_equal(json_integer_value(
	                     json_object_get(d, "oldest_version")),
	    2);
	vresp_clear(&r);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/s", s->f.root,
	                     "{\"data\":{\"k\":\"4\"}}"),
	    200);
	/* Malformed settings: 400 naming the field. */
	assert_int_equal(call(s, "POST", "/v1/secret/metadata/app/s", s->f.root,
	                     "{\"delete_version_after\":\"3 days\"}", &r),
	    400);
	assert_non_null(strstr(first_error(&r), "delete_version_after"));
	vresp_clear(&r);
	assert_int_equal(call0(s, "POST", "/v1/secret/metadata/app/s",
	                     s->f.root, "{\"custom_metadata\":{\"k\":1}}"),
	    400);
	assert_int_equal(call0(s, "POST", "/v1/secret/metadata/app/s",
	                     s->f.root, "{\"max_versions\":-1}"),
	    400);
	/* The workload has no create/update/patch on secret/metadata/. */
	assert_int_equal(call0(s, "POST", "/v1/secret/metadata/app/s", s->tok,
	                     "{\"max_versions\":5}"),
	    403);
	assert_int_equal(call0(s, "PATCH", "/v1/secret/metadata/app/s", s->tok,
	                     "{\"max_versions\":5}"),
	    403);
}

static long
patch(struct st *s, const char *path, const char *token, const char *body,
    struct vresp *r)
{
	long st;

	s->f.content_type = "application/merge-patch+json";
	st = call(s, "PATCH", path, token, body, r);
	s->f.content_type = NULL;
	return st;
}

/* PATCH secret/data/P: RFC 7396 merge into the current version, a new
 * version; CAS honoured; 404 without a current version; 415 without the
 * merge-patch content type; patch capability. */
static void
test_patch(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *d;

	memset(&r, 0, sizeof(r));
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/p",
	                     "{\"data\":{\"a\":\"1\",\"b\":\"2\",\"o\":{\"x\":"
	                     "1,\"y\":2}}}"),
	    200);
	assert_int_equal(patch(s, "/v1/secret/data/app/p", s->f.root,
	                     "{\"data\":{\"b\":null,\"c\":\"3\",\"o\":{\"y\":"
	                     "null,\"z\":3}}}",
	                     &r),
	    200);
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(r.json, "data"),
	                         "version")),
	    2);
	vresp_clear(&r);
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/p", s->f.root,
	                     NULL, &r),
	    200);
	d = json_object_get(json_object_get(r.json, "data"), "data");
	assert_string_equal(json_string_value(json_object_get(d, "a")), "1");
	assert_null(json_object_get(d, "b"));
	assert_string_equal(json_string_value(json_object_get(d, "c")), "3");
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(d, "o"), "x")),
	    1);
	assert_null(json_object_get(json_object_get(d, "o"), "y"));
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(d, "o"), "z")),
	    3);
	vresp_clear(&r);
	/* CAS: the wrong version is refused, the right one accepted. */
	assert_int_equal(patch(s, "/v1/secret/data/app/p", s->f.root,
	                     "{\"data\":{\"a\":\"x\"},\"options\":{\"cas\":1}}",
	                     &r),
	    400);
	assert_string_equal(first_error(&r),
	    "check-and-set parameter did not match the current version");
	vresp_clear(&r);
	assert_int_equal(patch(s, "/v1/secret/data/app/p", s->f.root,
	                     "{\"data\":{\"a\":\"x\"},\"options\":{\"cas\":2}}",
	                     &r),
	    200);
	vresp_clear(&r);
	/* Plain JSON is not a merge patch. */
	assert_int_equal(call(s, "PATCH", "/v1/secret/data/app/p", s->f.root,
	                     "{\"data\":{\"a\":\"y\"}}", &r),
	    415);
	vresp_clear(&r);
	/* No current version: missing path, or the current one deleted. */
	assert_int_equal(patch(s, "/v1/secret/data/app/none", s->f.root,
	                     "{\"data\":{\"a\":\"1\"}}", &r),
	    404);
	vresp_clear(&r);
	assert_int_equal(call0(s, "DELETE", "/v1/secret/data/app/p", s->f.root,
	                     NULL),
	    204);
	assert_int_equal(patch(s, "/v1/secret/data/app/p", s->f.root,
	                     "{\"data\":{\"a\":\"1\"}}", &r),
	    404);
	vresp_clear(&r);
	/* The workload may read, not patch. */
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/p2",
	                     "{\"data\":{\"a\":\"1\"}}"),
	    200);
	assert_int_equal(patch(s, "/v1/secret/data/app/p2", s->tok,
	                     "{\"data\":{\"a\":\"2\"}}", &r),
	    403);
	vresp_clear(&r);
}

/* GET secret/subkeys/P: keys without values (depth honoured), read
 * capability on secret/subkeys/; GET secret/config: the server's
 * settings, POST refused with a message. */
static void
test_subkeys_config(void **state)
{
	struct st *s = *state;
	struct vresp r;
	json_t *d, *sk;

	memset(&r, 0, sizeof(r));
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/k",
	                     "{\"data\":{\"user\":\"u-secret\",\"db\":{"
	                     "\"host\":\"h\","
	                     "\"opts\":{\"tls\":true}},\"n\":[1]}}"),
	    200);
	assert_int_equal(call(s, "GET", "/v1/secret/subkeys/app/k", s->f.root,
	                     NULL, &r),
	    200);
	assert_null(strstr(r.body, "u-secret"));
	d = json_object_get(r.json, "data");
	sk = json_object_get(d, "subkeys");
	assert_true(json_is_null(json_object_get(sk, "user")));
	assert_true(json_is_null(json_object_get(sk, "n")));
	assert_true(json_is_null(
	    json_object_get(json_object_get(json_object_get(sk, "db"), "opts"),
	        "tls")));
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(d, "metadata"),
	                         "version")),
	    1);
	vresp_clear(&r);
	assert_int_equal(call(s, "GET", "/v1/secret/subkeys/app/k?depth=1",
	                     s->f.root, NULL, &r),
	    200);
	sk = json_object_get(json_object_get(r.json, "data"), "subkeys");
	assert_true(json_is_null(json_object_get(sk, "db")));
	vresp_clear(&r);
	assert_int_equal(call0(s, "GET", "/v1/secret/subkeys/app/none",
	                     s->f.root, NULL),
	    404);
	/* read on secret/data/ is not read on secret/subkeys/. */
	assert_int_equal(call0(s, "GET", "/v1/secret/subkeys/app/k", s->tok,
	                     NULL),
	    403);
	assert_int_equal(call(s, "GET", "/v1/secret/config", s->f.root, NULL,
	                     &r),
	    200);
	d = json_object_get(r.json, "data");
	assert_true(json_is_false(json_object_get(d, "cas_required")));
	assert_true(json_integer_value(json_object_get(d, "max_versions")) > 0);
	vresp_clear(&r);
	assert_int_equal(call0(s, "GET", "/v1/secret/config", s->tok, NULL),
	    403);
	/* POST secret/config sets the mount's defaults (update on
	 * secret/config, as Vault); settings not given keep their value. */
	assert_int_equal(call0(s, "POST", "/v1/secret/config", s->tok,
	                     "{\"max_versions\":3}"),
	    403);
	assert_int_equal(call0(s, "POST", "/v1/secret/config", s->f.root,
	                     "{\"max_versions\":2,\"cas_required\":true}"),
	    204);
	assert_int_equal(call0(s, "POST", "/v1/secret/config", s->f.root,
	                     "{\"delete_version_after\":\"1h\"}"),
	    204);
	assert_int_equal(call(s, "POST", "/v1/secret/config", s->f.root,
	                     "{\"max_versions\":\"x\"}", &r),
	    400);
	vresp_clear(&r);
	assert_int_equal(call(s, "GET", "/v1/secret/config", s->f.root, NULL,
	                     &r),
	    200);
	d = json_object_get(r.json, "data");
	assert_true(json_is_true(json_object_get(d, "cas_required")));
	assert_int_equal(json_integer_value(json_object_get(d, "max_versions")),
	    2);
	assert_string_equal(json_string_value(
	                        json_object_get(d, "delete_version_after")),
	    "1h0m0s");
	vresp_clear(&r);
	/* The mount's cas_required holds for a path without its own. */
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/m", s->f.root,
	                     "{\"data\":{\"k\":\"1\"}}"),
	    400);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/m", s->f.root,
	                     "{\"data\":{\"k\":\"1\"},\"options\":{\"cas\":0}"
	                     "}"),
	    200);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/m", s->f.root,
	                     "{\"data\":{\"k\":\"2\"},\"options\":{\"cas\":1}"
	                     "}"),
	    200);
	assert_int_equal(call0(s, "POST", "/v1/secret/data/app/m", s->f.root,
	                     "{\"data\":{\"k\":\"3\"},\"options\":{\"cas\":2}"
	                     "}"),
	    200);
	/* The mount's max_versions 2: version 1 is gone. */
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/m?version=1",
	                     s->f.root, NULL),
	    404);
	/* Its delete_version_after schedules the deletion a read shows. */
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/m", s->f.root,
	                     NULL, &r),
	    200);
	assert_string_not_equal(
	    json_string_value(
	        json_object_get(json_object_get(json_object_get(r.json, "data"),
	                            "metadata"),
	            "deletion_time")),
	    "");
	vresp_clear(&r);
}

/* A version older than delete_version_after reads as deleted (404 with
 * its deletion_time), as Vault; a path with a longer one still reads. */
static void
test_delete_version_after(void **state)
{
	struct st *s = *state;
	struct timespec t0, t1, pause = { 0, 100 * 1000000L };
	struct vresp r;
	json_t *md;
	long st = 0;

	memset(&r, 0, sizeof(r));
	assert_int_equal(call0(s, "POST", "/v1/secret/metadata/app/short",
	                     s->f.root, "{\"delete_version_after\":\"1s\"}"),
	    204);
	assert_int_equal(call0(s, "POST", "/v1/secret/metadata/app/long",
	                     s->f.root, "{\"delete_version_after\":\"1h\"}"),
	    204);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/short",
	                     "{\"data\":{\"k\":\"v\"}}"),
	    200);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/long",
	                     "{\"data\":{\"k\":\"v\"}}"),
	    200);
	/* Bounded wait for the deletion to come due (1 s after the write). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		st = call0(s, "GET", "/v1/secret/data/app/short", s->f.root,
		    NULL);
		if (st != 200)
			break;
		nanosleep(&pause, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (t1.tv_sec - t0.tv_sec < 30);
	assert_int_equal(st, 404);
	assert_int_equal(call(s, "GET", "/v1/secret/data/app/short", s->f.root,
	                     NULL, &r),
	    404);
	md = json_object_get(json_object_get(r.json, "data"), "metadata");
	assert_string_not_equal(json_string_value(
	                            json_object_get(md, "deletion_time")),
	    "");
	assert_true(json_is_false(json_object_get(md, "destroyed")));
	vresp_clear(&r);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/long", s->f.root,
	                     NULL),
	    200);
	/* Version 1 stays deleted after a new version is written. */
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "app/short",
	                     "{\"data\":{\"k\":\"w\"}}"),
	    200);
	assert_int_equal(call0(s, "GET", "/v1/secret/data/app/short?version=1",
	                     s->f.root, NULL),
	    404);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* kv_url puts the KV store where it names (not under data_dir), and a
 * restart opens it again there. */
static void
test_kv_url(void **state)
{
	struct vfx f;
	struct stat st;
	struct vresp r;
	char elsewhere[] = "/tmp/tsi-kvurl-XXXXXX", extra[256], p[512];

	(void)state;
	memset(&f, 0, sizeof(f));
	memset(&r, 0, sizeof(r));
	assert_non_null(mkdtemp(elsewhere));
	snprintf(extra, sizeof(extra), "kv_url = \"lmdb://%s/kvx\";\n",
	    elsewhere);
	assert_int_equal(vfx_init(&f, NULL, extra), 0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(vfx_kv_put(&f, f.root, "app/u",
	                     "{\"data\":{\"k\":\"at-the-url\"}}"),
	    200);
	assert_int_equal(vfx_stop(&f), 0);
	snprintf(p, sizeof(p), "%s/kvx/data.mdb", elsewhere);
	assert_int_equal(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/kv", f.data_dir);
	assert_int_not_equal(stat(p, &st), 0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(vfx_kv_get(&f, f.root, "app/u", &r), 200);
	assert_non_null(strstr(r.body, "at-the-url"));
	vresp_clear(&r);
	vfx_cleanup(&f);
	nftw(elsewhere, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delete_undelete_destroy,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata_delete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_capabilities, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata_settings, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subkeys_config, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_destroy_removes_value,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_version_after,
		    setup, teardown),
		cmocka_unit_test(test_kv_url),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
