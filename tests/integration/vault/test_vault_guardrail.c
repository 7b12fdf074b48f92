/*
 * Guardrails over a running tsi-vault: the root token skipped every rule,
 * so an EU geofence did not hold for it. A deny rule with guardrail = true
 * binds root too: root has no region claim, so the geofence denies it on
 * EU paths (read, write and list), names itself in the audit record, and
 * leaves root everything else; a deny rule without the flag still binds
 * role tokens only. A guardrail limited to read lets root provision a
 * secret it may not read back.
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
#include "reload_wait.h"

struct st {
	struct vfx f;
	struct vfx_node us; /* hipaaCluster / us-south / dal05 */
	struct vfx_node eu; /* hipaaCluster / eu-de / fra02 */
	char img[72];
};

static const char policy[] =
    "roles = (\n"
    "  { name = \"eu-apps\"; rules = [ \"eu-data\", \"tmp-rw\" ];\n"
    "    match = { region = [ \"eu-*\" ]; }; },\n"
    "  { name = \"us-apps\"; rules = [ \"eu-data\", \"tmp-rw\", \"vault-rw\" "
    "]; }\n"
    ");\n"
    "rules = (\n"
    "  { name = \"never-outside-eu\"; effect = \"deny\"; guardrail = true;\n"
    "    paths = [ \"secret/data/eu/*\", \"secret/metadata/eu/*\" ];\n"
    "    match = { region = [ \"!eu-*\" ]; }; },\n"
    "  { name = \"vault-read-fence\"; effect = \"deny\"; guardrail = true;\n"
    "    paths = [ \"secret/data/vault/*\" ]; capabilities = [ \"read\" ]; },\n"
    "  { name = \"no-tmp-delete\"; effect = \"deny\";\n"
    "    paths = [ \"secret/data/tmp/*\" ]; capabilities = [ \"delete\" ]; },\n"
    "  { name = \"eu-data\"; paths = [ \"secret/data/eu/*\", "
    "\"secret/metadata/eu/*\" ];\n"
    "    capabilities = [ \"create\", \"read\", \"update\", \"list\" ]; },\n"
    "  { name = \"tmp-rw\"; paths = [ \"secret/data/tmp/*\" ];\n"
    "    capabilities = [ \"create\", \"read\", \"delete\" ]; },\n"
    "  { name = \"vault-rw\"; paths = [ \"secret/data/vault/*\" ];\n"
    "    capabilities = [ \"create\", \"read\" ]; }\n"
    ");\n";

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	vfx_image("image-x", s->img);
	assert_int_equal(vfx_init(&s->f, policy, NULL), 0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->us),
	    0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "eu-de", "fra02",
	                     "node-c", &s->eu),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	vfx_node_free(&s->us);
	vfx_node_free(&s->eu);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

static char *
login(struct st *s, struct vfx_node *n, const char *role)
{
	long status;
	char *t = vfx_login_as(&s->f, n, s->img, "prod", role, &status);

	assert_int_equal(status, 200);
	assert_non_null(t);
	return t;
}

static long
req(struct st *s, const char *method, const char *tok, const char *path,
    const char *body)
{
	struct vresp r;
	long st;

	assert_int_equal(vfx_http(&s->f, NULL, method, path, tok, body, &r), 0);
	st = r.status;
	vresp_clear(&r);
	return st;
}

static void
test_root_bound_by_geofence(void **state)
{
	struct st *s = *state;
	const char *root = s->f.root;
	char *te = login(s, &s->eu, "eu-apps");
	char *tu = login(s, &s->us, "us-apps");
	struct vresp r;
	json_t *recs;
	size_t i, geofence = 0;

	/* An EU workload stores and reads EU data. */
	assert_int_equal(vfx_kv_put(&s->f, te, "eu/gdpr",
	                     "{\"data\":{\"k\":\"EU-SECRET\"}}"),
	    200);
	assert_int_equal(vfx_kv_get(&s->f, te, "eu/gdpr", NULL), 200);
	/* Root, which has no region: denied like a US workload. */
	if (vfx_kv_get(&s->f, root, "eu/gdpr", &r) != 403 ||
	    strstr(r.body ? r.body : "", "EU-SECRET") != NULL) {
		vresp_clear(&r);
		fail_msg("the root token read EU data");
	}
	vresp_clear(&r);
	assert_int_equal(vfx_kv_get(&s->f, tu, "eu/gdpr", NULL), 403);
	assert_int_equal(vfx_kv_put(&s->f, root, "eu/gdpr",
	                     "{\"data\":{\"k\":\"overwritten\"}}"),
	    403);
	assert_int_equal(req(s, "DELETE", root, "/v1/secret/data/eu/gdpr",
	                     NULL),
	    403);
	assert_int_equal(req(s, "LIST", root, "/v1/secret/metadata/eu/", NULL),
	    403);
	assert_int_equal(req(s, "GET", root, "/v1/secret/metadata/eu/gdpr",
	                     NULL),
	    403);
	/* The EU secret is untouched. */
	assert_int_equal(vfx_kv_get(&s->f, te, "eu/gdpr", &r), 200);
	assert_non_null(strstr(r.body, "EU-SECRET"));
	vresp_clear(&r);

	/* A read-only guardrail: root provisions, nobody outside reads. */
	assert_int_equal(vfx_kv_put(&s->f, root, "vault/db",
	                     "{\"data\":{\"k\":\"V\"}}"),
	    200);
	assert_int_equal(vfx_kv_get(&s->f, root, "vault/db", NULL), 403);
	assert_int_equal(vfx_kv_get(&s->f, tu, "vault/db", NULL), 403);

	/* A deny rule that is not a guardrail binds roles, not root. */
	assert_int_equal(vfx_kv_put(&s->f, root, "tmp/x",
	                     "{\"data\":{\"k\":\"T\"}}"),
	    200);
	assert_int_equal(req(s, "DELETE", tu, "/v1/secret/data/tmp/x", NULL),
	    403);
	assert_int_equal(req(s, "DELETE", root, "/v1/secret/data/tmp/x", NULL),
	    204);
	/* Everything else stays open to root. */
	assert_int_equal(vfx_kv_put(&s->f, root, "ops/x",
	                     "{\"data\":{\"k\":\"O\"}}"),
	    200);
	assert_int_equal(vfx_kv_get(&s->f, root, "ops/x", NULL), 200);

	/* The audit trail names the guardrail that denied root. */
	assert_int_equal(vfx_http(&s->f, NULL, "GET",
	                     "/v1/sys/audit/releases?decision=deny&path=secret/"
	                     "data/eu/&limit=50",
	                     root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	recs = json_object_get(json_object_get(r.json, "data"), "records");
	for (i = 0; i < json_array_size(recs); i++) {
		const char *rule = json_string_value(
		    json_object_get(json_array_get(recs, i), "rule"));

		if (rule != NULL && strcmp(rule, "never-outside-eu") == 0)
			geofence++;
	}
	/* Root's read, write and delete, and the US workload's read. */
	assert_true(geofence >= 4);
	vresp_clear(&r);
	free(te);
	free(tu);
}

static void
test_guardrail_in_reloaded_set(void **state)
{
	struct st *s = *state;
	char text[4096];

	/* Dropping the flag by reload gives root the path back; putting it
	 * back takes it away again. */
	/* Missing or not, the same 403. */
	assert_int_equal(vfx_kv_get(&s->f, s->f.root, "vault/db", NULL), 403);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "vault/db",
	                     "{\"data\":{\"k\":\"V\"}}"),
	    200);
	assert_int_equal(vfx_kv_get(&s->f, s->f.root, "vault/db", NULL), 403);
	snprintf(text, sizeof(text), "%s", policy);
	{
		char *g = strstr(text,
		    "guardrail = true;\n    paths = [ "
		    "\"secret/data/vault/*\" ]");

		assert_non_null(g);
		memcpy(g, "guardrail =false;", strlen("guardrail =false;"));
	}
	assert_int_equal(vfx_write_policy(&s->f, "test.conf", text), 0);
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(rw_metric(&s->f, "tsi_vault_policy_stale", 0), 0);
	assert_int_equal(vfx_kv_get(&s->f, s->f.root, "vault/db", NULL), 200);
	assert_int_equal(vfx_write_policy(&s->f, "test.conf", policy), 0);
	assert_int_equal(rw_reload(&s->f), 0);
	assert_int_equal(vfx_kv_get(&s->f, s->f.root, "vault/db", NULL), 403);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_bound_by_geofence,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_guardrail_in_reloaded_set,
		    setup, teardown),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
