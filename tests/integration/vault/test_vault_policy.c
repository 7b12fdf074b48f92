/*
 * Login and authorization end to end: real JWTs (tsi_jwt_mint, session keys
 * certified by node certificates from tsi_ca_sign_csr), the policy engine,
 * the audit log. The seed scenario: image X in hipaaCluster/dal05 reads
 * secret/data/medical/...; the same image in another datacenter and another
 * image in dal05 are refused. Templated paths, deny wins, a role's match,
 * token expiry, the same 403 for existing and missing paths, audit records
 * for allows and denials, the audit endpoint, SIGHUP reloads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "fixture.h"
#include "tests/support/pki.h"
#include "tsi/audit.h"
#include "tsi/err.h"
#include "tsi/x509.h"

struct st {
	struct vfx f;
	struct vfx_node dal05; /* hipaaCluster / us-south / dal05 */
	struct vfx_node wdc01; /* hipaaCluster / us-south / wdc01 */
	struct vfx_node eu;    /* hipaaCluster / eu-de / fra02 */
	char img_x[72], img_y[72];
	EVP_PKEY *head_key; /* signs the audit chain head */
};

static const char policy_fmt[] =
    "roles = (\n"
    "  { name = \"demo\"; rules = [ \"medical-records\", \"per-location\",\n"
    "      \"eu-read\", \"never-outside-eu\" ]; token_ttl = 300; },\n"
    "  { name = \"short\"; rules = [ \"medical-records\" ]; token_ttl = 2; },\n"
    "  { name = \"prod-only\"; rules = [ \"medical-records\" ];\n"
    "    match = { namespace = [ \"prod\" ]; }; },\n"
    "  { name = \"auditor\"; rules = [ \"audit-read\" ]; }%s\n"
    ");\n"
    "rules = (\n"
    "  { name = \"medical-records\"; paths = [ \"secret/data/medical/*\" ];\n"
    "    capabilities = [ \"read\" ];\n"
    "    match = { images = [ \"%s\" ]; cluster-name = [ \"hipaaCluster\" ];\n"
    "              datacenter = [ \"dal05\" ]; }; },\n"
    "  { name = \"per-location\";\n"
    "    paths = [ "
    "\"secret/data/tsi-rcn/{region}/{cluster-name}/{namespace}/*\" ];\n"
    "    capabilities = [ \"read\" ]; },\n"
    "  { name = \"eu-read\"; paths = [ \"secret/data/eu/*\" ]; capabilities = "
    "[ \"read\" ]; },\n"
    "  { name = \"never-outside-eu\"; effect = \"deny\"; paths = [ "
    "\"secret/data/eu/*\" ];\n"
    "    match = { region = [ \"!eu-*\" ]; }; },\n"
    "  { name = \"audit-read\"; paths = [ \"sys/audit/releases\" ];\n"
    "    capabilities = [ \"audit\" ]; }%s\n"
    ");\n";

static void
write_policy(struct st *s, const char *extra_role, const char *extra_rule)
{
	char text[4096];

	snprintf(text, sizeof(text), policy_fmt, extra_role, s->img_x,
	    extra_rule);
	assert_int_equal(vfx_write_policy(&s->f, "test.conf", text), 0);
}

static void
put_root(struct st *s, const char *path, const char *body)
{
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, path, body), 200);
}

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	vfx_image("image-x", s->img_x);
	vfx_image("image-y", s->img_y);
	{
		/* The audit head key lives outside the server's directory
		 * until vfx_init made it; then it goes in with mode 0600. */
		char extra[600], path[400];
		assert_int_equal(vfx_init(&s->f, NULL, NULL), 0);
		snprintf(path, sizeof(path), "%s/head.key", s->f.dir);
		s->head_key = pki_key();
		assert_non_null(s->head_key);
		assert_int_equal(pki_write_key(path, s->head_key), 0);
		assert_int_equal(chmod(path, 0600), 0);
		snprintf(extra, sizeof(extra), "audit_head_key = \"%s\";\n",
		    path);
		{
			FILE *fp = fopen(s->f.conf, "a");
			assert_non_null(fp);
			fputs(extra, fp);
			fclose(fp);
		}
	}
	write_policy(s, "", "");
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->dal05),
	    0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "wdc01", "node-b", &s->wdc01),
	    0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "eu-de", "fra02",
	                     "node-c", &s->eu),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	put_root(s, "medical/record1",
	    "{\"data\":{\"patient\":\"MEDSECRET-1\"}}");
	put_root(s, "tsi-rcn/us-south/hipaaCluster/prod/db",
	    "{\"data\":{\"password\":\"RCN-SECRET\"}}");
	put_root(s, "tsi-rcn/us-south/otherCluster/prod/db",
	    "{\"data\":{\"password\":\"OTHER-SECRET\"}}");
	put_root(s, "eu/gdpr", "{\"data\":{\"k\":\"EU-SECRET\"}}");
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	assert_int_equal(vfx_stop(&s->f), 0);
	{
		/* On shutdown the head of the chain was signed with the
		 * configured key: the whole log verifies against it, and not
		 * against another key. */
		struct tsi_audit_reader *rd = NULL;
		struct tsi_audit_verify_result vr;
		EVP_PKEY *other = pki_key();
		char dir[400];
		snprintf(dir, sizeof(dir), "%s/audit", s->f.data_dir);
		assert_int_equal(tsi_audit_reader_open(dir, &rd), TSI_OK);
		assert_int_equal(tsi_audit_verify_key(rd, s->head_key, &vr),
		    TSI_OK);
		assert_true(vr.records > 20);
		assert_int_not_equal(tsi_audit_verify_key(rd, other, &vr),
		    TSI_OK);
		tsi_audit_reader_close(rd);
		EVP_PKEY_free(other);
		EVP_PKEY_free(s->head_key);
	}
	vfx_node_free(&s->dal05);
	vfx_node_free(&s->wdc01);
	vfx_node_free(&s->eu);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

/* Logs in as image on node n (namespace ns) with role; asserts want. */
static char *
login(struct st *s, struct vfx_node *n, const char *image, const char *ns,
    const char *role, long want)
{
	long status;
	char *tok = vfx_login_as(&s->f, n, image, ns, role, &status);

	if (status != want)
		vfx_dump_log(&s->f);
	assert_int_equal(status, want);
	return tok;
}

static long
get(struct st *s, const char *tok, const char *path, struct vresp *out)
{
	return vfx_kv_get(&s->f, tok, path, out);
}

static void
test_login_shape(void **state)
{
	struct st *s = *state;
	char *jwt = vfx_jwt(&s->dal05, s->img_x, "prod", NULL, 300);
	json_t *req = json_pack("{ssss}", "role", "demo", "jwt", jwt), *auth,
	       *md;
	char *body = json_dumps(req, 0);
	struct vresp r;

	assert_int_equal(vfx_http(&s->f, NULL, "POST",
	                     "/v1/auth/trusted-identity/login", NULL, body, &r),
	    0);
	assert_int_equal(r.status, 200);
	auth = json_object_get(r.json, "auth");
	assert_non_null(auth);
	assert_true(
	    strncmp(json_string_value(json_object_get(auth, "client_token")),
	        "hvs.", 4) == 0);
	/* 256 random bits, base64url: 43 characters after the prefix. */
	assert_int_equal(strlen(json_string_value(
	                     json_object_get(auth, "client_token"))),
	    4 + 43);
	assert_int_equal(strlen(json_string_value(
	                     json_object_get(auth, "accessor"))),
	    24);
	assert_int_equal(json_array_size(json_object_get(auth, "policies")), 4);
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(auth,
	                                           "token_policies"),
	                            0)),
	    "medical-records");
	assert_true(json_is_false(json_object_get(auth, "renewable")));
	assert_true(
	    json_integer_value(json_object_get(auth, "lease_duration")) > 250);
	assert_true(
	    json_integer_value(json_object_get(auth, "lease_duration")) <= 300);
	md = json_object_get(auth, "metadata");
	assert_string_equal(json_string_value(
	                        json_object_get(md, "cluster-name")),
	    "hipaaCluster");
	assert_string_equal(json_string_value(
	                        json_object_get(md, "datacenter")),
	    "dal05");
	assert_string_equal(json_string_value(json_object_get(md, "images")),
	    s->img_x);
	assert_true(json_is_string(json_object_get(md, "exp")));
	assert_non_null(json_object_get(r.json, "request_id"));
	assert_true(json_is_null(json_object_get(r.json, "data")));
	/* The JWT is not echoed back. */
	assert_null(strstr(r.body, jwt));
	vresp_clear(&r);
	free(body);
	json_decref(req);
	free(jwt);
}

static void
test_seed_scenario(void **state)
{
	struct st *s = *state;
	struct vresp r, r2;
	char *tx_dal, *tx_wdc, *ty_dal;

	/* Image X in hipaaCluster/dal05: released. */
	tx_dal = login(s, &s->dal05, s->img_x, "prod", "demo", 200);
	assert_int_equal(get(s, tx_dal, "medical/record1", &r), 200);
	assert_non_null(strstr(r.body, "MEDSECRET-1"));
	vresp_clear(&r);
	/* Allowed reader, missing path: 404. */
	assert_int_equal(get(s, tx_dal, "medical/none", NULL), 404);
	/* Read only: no writes. */
	assert_int_equal(vfx_http(&s->f, NULL, "POST",
	                     "/v1/secret/data/medical/record1", tx_dal,
	                     "{\"data\":{\"patient\":\"overwritten\"}}", &r),
	    0);
	assert_int_equal(r.status, 403);
	vresp_clear(&r);

	/* The same image in another datacenter: refused. */
	tx_wdc = login(s, &s->wdc01, s->img_x, "prod", "demo", 200);
	assert_int_equal(get(s, tx_wdc, "medical/record1", &r), 403);
	assert_null(strstr(r.body, "MEDSECRET"));
	/* The same 403, byte for byte, for a path that does not exist. */
	assert_int_equal(get(s, tx_wdc, "medical/none", &r2), 403);
	assert_string_equal(r.body, r2.body);
	vresp_clear(&r);
	vresp_clear(&r2);

	/* Another image in dal05: refused. */
	ty_dal = login(s, &s->dal05, s->img_y, "prod", "demo", 200);
	assert_int_equal(get(s, ty_dal, "medical/record1", &r), 403);
	assert_string_equal(r.body, "{\"errors\":[\"permission denied\"]}");
	vresp_clear(&r);
	free(tx_dal);
	free(tx_wdc);
	free(ty_dal);
}

static void
test_templated_and_deny(void **state)
{
	struct st *s = *state;
	struct vresp r;
	char *t = login(s, &s->dal05, s->img_y, "prod", "demo", 200);
	char *te = login(s, &s->eu, s->img_y, "prod", "demo", 200);

	/* {region}/{cluster-name}/{namespace} are the caller's own values. */
	assert_int_equal(get(s, t, "tsi-rcn/us-south/hipaaCluster/prod/db", &r),
	    200);
	assert_non_null(strstr(r.body, "RCN-SECRET"));
	vresp_clear(&r);
	assert_int_equal(get(s, t, "tsi-rcn/us-south/otherCluster/prod/db",
	                     NULL),
	    403);
	assert_int_equal(get(s, t, "tsi-rcn/eu-de/hipaaCluster/prod/db", NULL),
	    403);
	/* Deny wins: eu-read allows, never-outside-eu denies us-south. */
	assert_int_equal(get(s, t, "eu/gdpr", NULL), 403);
	assert_int_equal(get(s, te, "eu/gdpr", &r), 200);
	assert_non_null(strstr(r.body, "EU-SECRET"));
	vresp_clear(&r);
	free(t);
	free(te);
}

static void
test_login_refusals(void **state)
{
	struct st *s = *state;
	struct vfx other;
	struct vfx_node stranger;
	struct vresp r;
	char *jwt, *tok;
	long status;
	json_t *extra;

	/* A role's match (bound claims): namespace must be prod. */
	tok = login(s, &s->dal05, s->img_x, "prod", "prod-only", 200);
	free(tok);
	assert_null(login(s, &s->dal05, s->img_x, "dev", "prod-only", 403));
	/* Unknown role. */
	assert_null(login(s, &s->dal05, s->img_x, "prod", "nope", 403));
	/* Expired JWT (beyond the 60 s skew). */
	jwt = vfx_jwt(&s->dal05, s->img_x, "prod", NULL, -120);
	assert_null(vfx_login(&s->f, "demo", jwt, &status));
	assert_int_equal(status, 403);
	free(jwt);
	/* Wrong audience. */
	extra = json_pack("{ss}", "aud", "someone-else");
	jwt = vfx_jwt(&s->dal05, s->img_x, "prod", extra, 300);
	assert_null(vfx_login(&s->f, "demo", jwt, &status));
	assert_int_equal(status, 403);
	free(jwt);
	json_decref(extra);
	/* A location claim that the node certificate does not bind. */
	extra = json_pack("{ss}", "datacenter", "dal05");
	jwt = vfx_jwt(&s->wdc01, s->img_x, "prod", extra, 300);
	assert_null(vfx_login(&s->f, "demo", jwt, &status));
	assert_int_equal(status, 403);
	free(jwt);
	json_decref(extra);
	/* A node certified by a CA this server does not trust. */
	assert_int_equal(vfx_init(&other, NULL, NULL), 0);
	assert_int_equal(vfx_node_new(&other, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &stranger),
	    0);
	jwt = vfx_jwt(&stranger, s->img_x, "prod", NULL, 300);
	assert_null(vfx_login(&s->f, "demo", jwt, &status));
	assert_int_equal(status, 403);
	free(jwt);
	vfx_node_free(&stranger);
	vfx_cleanup(&other);
	/* Garbage and malformed requests. */
	assert_null(vfx_login(&s->f, "demo", "not.a.jwt", &status));
	assert_int_equal(status, 403);
	assert_int_equal(vfx_http(&s->f, NULL, "POST",
	                     "/v1/auth/trusted-identity/login", NULL,
	                     "{\"role\":\"demo\"}", &r),
	    0);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	assert_int_equal(vfx_http(&s->f, NULL, "GET",
	                     "/v1/auth/trusted-identity/login", NULL, NULL, &r),
	    0);
	assert_int_equal(r.status, 405);
	vresp_clear(&r);
}

static void
test_token_expiry(void **state)
{
	struct st *s = *state;
	struct vresp r;
	int i;
	char *t = login(s, &s->dal05, s->img_x, "prod", "short", 200);

	assert_int_equal(get(s, t, "medical/record1", NULL), 200);
	assert_int_equal(vfx_http(&s->f, NULL, "GET",
	                     "/v1/auth/token/lookup-self", t, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_true(
	    json_integer_value(
	        json_object_get(json_object_get(r.json, "data"), "ttl")) <= 2);
	vresp_clear(&r);
	/* Served until the lease (2 s, whole seconds) is over, then refused:
	 * polled, with 5 s for a loaded runner. */
	for (i = 0; i < 50; i++) {
		if (get(s, t, "medical/record1", &r) == 403)
			break;
		assert_int_equal(r.status, 200);
		vresp_clear(&r);
		usleep(100 * 1000);
	}
	assert_int_equal(r.status, 403);
	assert_null(strstr(r.body, "MEDSECRET"));
	vresp_clear(&r);
	free(t);
}

struct scan {
	const char *token;
	int token_seen;
	int allow_read, deny_read, login_allow, login_deny;
};

static int
scan_cb(const json_t *rec, void *arg)
{
	struct scan *sc = arg;
	char *text = json_dumps(rec, 0);
	const char *op = json_string_value(json_object_get(rec, "op"));
	const char *dec = json_string_value(json_object_get(rec, "decision"));
	const char *path = json_string_value(json_object_get(rec, "path"));

	if (strstr(text, sc->token) != NULL || strstr(text, "hvs.") != NULL)
		sc->token_seen = 1;
	if (op && dec && path && strcmp(op, "read") == 0 &&
	    strcmp(path, "secret/data/medical/record1") == 0) {
		if (strcmp(dec, "allow") == 0 &&
		    json_integer_value(json_object_get(rec, "version")) == 1 &&
		    strcmp(json_string_value(json_object_get(rec, "rule")),
		        "medical-records") == 0 &&
		    json_string_length(json_object_get(rec, "accessor")) == 24)
			sc->allow_read++;
		if (strcmp(dec, "deny") == 0)
			sc->deny_read++;
	}
	if (op && dec && strcmp(op, "login") == 0)
		*(strcmp(dec, "allow") == 0 ? &sc->login_allow
		                            : &sc->login_deny) += 1;
	free(text);
	return 0;
}

static void
test_audit_records(void **state)
{
	struct st *s = *state;
	struct tsi_audit_reader *rd = NULL;
	struct tsi_audit_query q;
	struct tsi_audit_verify_result vr;
	struct scan sc;
	struct vresp r;
	char dir[400];
	uint64_t next = 0;
	char *t = login(s, &s->dal05, s->img_x, "prod", "demo", 200);
	char *tw = login(s, &s->wdc01, s->img_x, "prod", "demo", 200);
	char *ta;
	json_t *recs;
	size_t i;

	assert_int_equal(get(s, t, "medical/record1", NULL), 200);
	assert_int_equal(get(s, tw, "medical/record1", NULL), 403);

	/* Straight from the LMDB store, as `tsi audit` reads it. */
	snprintf(dir, sizeof(dir), "%s/audit", s->f.data_dir);
	assert_int_equal(tsi_audit_reader_open(dir, &rd), TSI_OK);
	memset(&sc, 0, sizeof(sc));
	sc.token = t;
	memset(&q, 0, sizeof(q));
	q.limit = 1000;
	assert_int_equal(tsi_audit_query(rd, &q, scan_cb, &sc, &next), TSI_OK);
	assert_false(sc.token_seen); /* accessors only, never tokens */
	assert_true(sc.allow_read >= 1);
	assert_true(sc.deny_read >= 1);
	assert_true(sc.login_allow >= 2);
	assert_true(sc.login_deny >= 1);
	assert_int_equal(tsi_audit_verify(rd, &vr), TSI_OK);
	tsi_audit_reader_close(rd);

	/* The HTTP endpoint, with filters: root may query. */
	assert_int_equal(vfx_http(&s->f, NULL, "GET",
	                     "/v1/sys/audit/releases?decision=deny&path=secret/"
	                     "data/medical"
	                     "&datacenter=wdc01&limit=5",
	                     s->f.root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	recs = json_object_get(json_object_get(r.json, "data"), "records");
	assert_true(json_array_size(recs) >= 1);
	for (i = 0; i < json_array_size(recs); i++) {
		json_t *e = json_array_get(recs, i);
		assert_string_equal(json_string_value(
		                        json_object_get(e, "decision")),
		    "deny");
		assert_string_equal(json_string_value(
		                        json_object_get(json_object_get(e,
		                                            "claims"),
		                            "datacenter")),
		    "wdc01");
	}
	vresp_clear(&r);
	/* A demo token has no audit capability; an auditor has. */
	assert_int_equal(vfx_http(&s->f, NULL, "GET", "/v1/sys/audit/releases",
	                     t, NULL, &r),
	    0);
	assert_int_equal(r.status, 403);
	vresp_clear(&r);
	ta = login(s, &s->dal05, s->img_y, "audit", "auditor", 200);
	assert_int_equal(vfx_http(&s->f, NULL, "GET",
	                     "/v1/sys/audit/releases?decision=allow&limit=2",
	                     ta, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(
	                     json_object_get(json_object_get(r.json, "data"),
	                         "records")),
	    2);
	assert_non_null(
	    json_object_get(json_object_get(r.json, "data"), "next_after"));
	vresp_clear(&r);
	assert_int_equal(vfx_http(&s->f, NULL, "GET",
	                     "/v1/sys/audit/releases?since=yesterday", ta, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	free(t);
	free(tw);
	free(ta);
}

static void
test_reload(void **state)
{
	struct st *s = *state;
	char *t = login(s, &s->dal05, s->img_y, "prod", "demo", 200);
	char fp[65], line[100];
	FILE *f;

	put_root(s, "newpath/x", "{\"data\":{\"k\":\"NEW\"}}");
	assert_int_equal(get(s, t, "newpath/x", NULL), 403);
	/* A new role and rule, in force after SIGHUP. */
	write_policy(s,
	    ",\n  { name = \"newrole\"; rules = [ \"new-rule\" ]; }",
	    ",\n  { name = \"new-rule\"; paths = [ \"secret/data/newpath/*\" ];"
	    " capabilities = [ \"read\" ]; }");
	assert_int_equal(vfx_reload(&s->f), 0);
	free(t);
	t = login(s, &s->dal05, s->img_y, "prod", "newrole", 200);
	assert_int_equal(get(s, t, "newpath/x", NULL), 200);
	/* A broken policy file: the old set stays. */
	assert_int_equal(vfx_write_policy(&s->f, "test.conf", "roles = ( {"),
	    0);
	assert_int_equal(vfx_reload(&s->f), 0);
	assert_int_equal(get(s, t, "newpath/x", NULL), 200);
	free(t);
	t = login(s, &s->dal05, s->img_y, "prod", "newrole", 200);
	free(t);
	/* Revoking node-b's certificate: its workloads can no longer log in. */
	assert_int_equal(tsi_x509_fingerprint(s->wdc01.cert, fp), TSI_OK);
	f = fopen(s->f.revoked, "a");
	assert_non_null(f);
	snprintf(line, sizeof(line), "%s  # node-b, decommissioned\n", fp);
	fputs(line, f);
	fclose(f);
	write_policy(s,
	    ",\n  { name = \"newrole\"; rules = [ \"new-rule\" ]; }",
	    ",\n  { name = \"new-rule\"; paths = [ \"secret/data/newpath/*\" ];"
	    " capabilities = [ \"read\" ]; }");
	t = login(s, &s->wdc01, s->img_x, "prod", "demo", 200);
	free(t);
	assert_int_equal(vfx_reload(&s->f), 0);
	assert_null(login(s, &s->wdc01, s->img_x, "prod", "demo", 403));
	t = login(s, &s->dal05, s->img_x, "prod", "demo", 200);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_shape),
		cmocka_unit_test(test_seed_scenario),
		cmocka_unit_test(test_templated_and_deny),
		cmocka_unit_test(test_login_refusals),
		cmocka_unit_test(test_token_expiry),
		cmocka_unit_test(test_audit_records),
		cmocka_unit_test(test_reload),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
