/*
 * The caller's own token: POST /v1/auth/token/revoke-self makes the token
 * fail at once for every request (KV reads on new and on kept-alive
 * connections, lookup-self, renew, revoke), is audited, answers 204 and
 * leaves other tokens alone; renew-self is refused with Vault's 400 "lease
 * is not renewable" (tokens are not renewable) and audited; wrong methods
 * get 405; a revoke that cannot be audited is not performed (503); the
 * root token may revoke itself and is back after a restart.
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

	assert_non_null(s);
	vfx_image("image-x", s->img);
	snprintf(policy, sizeof(policy), policy_fmt, s->img);
	assert_int_equal(vfx_init(&s->f, policy, NULL), 0);
	assert_int_equal(vfx_node_new(&s->f, "hipaaCluster", "us-south",
	                     "dal05", "node-a", &s->node),
	    0);
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(vfx_kv_put(&s->f, s->f.root, "medical/r1",
	                     "{\"data\":{\"patient\":\"MEDSECRET-1\"}}"),
	    200);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	assert_int_equal(vfx_stop(&s->f), 0);
	vfx_node_free(&s->node);
	vfx_cleanup(&s->f);
	free(s);
	return 0;
}

/* Logs in as the demo workload; *accessor gets the token's accessor. */
static char *
login(struct st *s, char accessor[64])
{
	struct vresp r;
	char *jwt = vfx_jwt(&s->node, s->img, "prod", NULL, 300), *body, *tok;
	json_t *req;
	const char *t, *a;

	assert_non_null(jwt);
	req = json_pack("{ssss}", "role", "demo", "jwt", jwt);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	assert_int_equal(vfx_http(&s->f, NULL, "POST",
	                     "/v1/auth/trusted-identity/login", NULL, body, &r),
	    0);
	assert_int_equal(r.status, 200);
	t = json_string_value(
	    json_object_get(json_object_get(r.json, "auth"), "client_token"));
	a = json_string_value(
	    json_object_get(json_object_get(r.json, "auth"), "accessor"));
	assert_non_null(t);
	assert_non_null(a);
	assert_true(json_is_false(
	    json_object_get(json_object_get(r.json, "auth"), "renewable")));
	tok = strdup(t);
	snprintf(accessor, 64, "%s", a);
	vresp_clear(&r);
	free(body);
	free(jwt);
	return tok;
}

static long
call(struct st *s, CURL *c, const char *method, const char *path,
    const char *token, struct vresp *out)
{
	struct vresp r;
	long st;

	assert_int_equal(vfx_http(&s->f, c, method, path, token,
	                     strcmp(method, "GET") == 0 ? NULL : "", &r),
	    0);
	st = r.status;
	if (out != NULL)
		*out = r;
	else
		vresp_clear(&r);
	return st;
}

/* The audit records under path (prefix) whose op is op, oldest first. */
static json_t *
records(struct st *s, const char *path, const char *op)
{
	struct vresp r;
	char q[300];
	json_t *all, *out = json_array(), *rec;
	size_t i;

	snprintf(q, sizeof(q), "/v1/sys/audit/releases?path=%s&limit=1000",
	    path);
	assert_int_equal(call(s, NULL, "GET", q, s->f.root, &r), 200);
	all = json_object_get(json_object_get(r.json, "data"), "records");
	assert_true(json_is_array(all));
	json_array_foreach (all, i, rec) {
		if (strcmp(json_string_value(json_object_get(rec, "op")), op) ==
		    0)
			json_array_append(out, rec);
	}
	vresp_clear(&r);
	return out;
}

static const char *
rs(json_t *rec, const char *k)
{
	const char *v = json_string_value(json_object_get(rec, k));

	assert_non_null(v);
	return v;
}

static size_t
discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static long long
tokens_gauge(struct st *s)
{
	struct vresp r;
	const char *p;
	long long n;

	assert_int_equal(call(s, NULL, "GET",
	                     "/v1/sys/metrics?format=prometheus", NULL, &r),
	    200);
	p = strstr(r.body, "\ntsi_vault_tokens ");
	assert_non_null(p);
	n = strtoll(p + strlen("\ntsi_vault_tokens "), NULL, 10);
	vresp_clear(&r);
	return n;
}

static void
test_revoke_self(void **state)
{
	struct st *s = *state;
	struct vresp r;
	CURL *kept = curl_easy_init();
	char acc[64], acc2[64];
	char *tok = login(s, acc), *tok2 = login(s, acc2);
	json_t *recs, *rec;
	long long before;

	/* Both tokens work; one connection is kept alive across the revoke. */
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 200);
	assert_int_equal(call(s, kept, "GET", "/v1/secret/data/medical/r1", tok,
	                     NULL),
	    200);
	assert_int_equal(vfx_kv_get(&s->f, tok2, "medical/r1", NULL), 200);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/lookup-self", tok,
	                     NULL),
	    200);
	before = tokens_gauge(s);

	/* 204, no body. */
	assert_int_equal(call(s, NULL, "POST", "/v1/auth/token/revoke-self",
	                     tok, &r),
	    204);
	assert_string_equal(r.body, "");
	vresp_clear(&r);

	/* From now on: the ordinary 403 everywhere. */
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", &r), 403);
	assert_string_equal(r.body, "{\"errors\":[\"permission denied\"]}");
	assert_null(strstr(r.body, "MEDSECRET"));
	vresp_clear(&r);
	assert_int_equal(call(s, kept, "GET", "/v1/secret/data/medical/r1", tok,
	                     &r),
	    403);
	assert_int_equal(r.connects, 0); /* the same kept-alive connection */
	vresp_clear(&r);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/lookup-self", tok,
	                     NULL),
	    403);
	assert_int_equal(call(s, NULL, "PUT", "/v1/auth/token/renew-self", tok,
	                     NULL),
	    403);
	assert_int_equal(call(s, NULL, "PUT", "/v1/auth/token/revoke-self", tok,
	                     NULL),
	    403);
	assert_int_equal(tokens_gauge(s), before - 1);
	/* Through Authorization: Bearer too. */
	{
		struct curl_slist *h = NULL;
		char url[300], auth[400];
		long st = 0;
		CURL *c = curl_easy_init();

		snprintf(url, sizeof(url), "%s/v1/secret/data/medical/r1",
		    s->f.addr);
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
		h = curl_slist_append(h, auth);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_CAINFO, s->f.tls_ca);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		assert_int_equal(curl_easy_perform(c), CURLE_OK);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		assert_int_equal(st, 403);
		curl_slist_free_all(h);
		curl_easy_cleanup(c);
	}

	/* The other token is untouched. */
	assert_int_equal(vfx_kv_get(&s->f, tok2, "medical/r1", NULL), 200);

	/* Audited: the revoke (allow, the token's accessor and claims, 204),
	 * then the refused second revoke (deny, rule "token", 403). The
	 * token itself is in no record. */
	recs = records(s, "auth/token/revoke-self", "revoke");
	assert_int_equal(json_array_size(recs), 2);
	rec = json_array_get(recs, 0);
	assert_string_equal(rs(rec, "decision"), "allow");
	assert_string_equal(rs(rec, "accessor"), acc);
	assert_string_equal(rs(rec, "path"), "auth/token/revoke-self");
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    204);
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(rec, "claims"),
	                            "namespace")),
	    "prod");
	rec = json_array_get(recs, 1);
	assert_string_equal(rs(rec, "decision"), "deny");
	assert_string_equal(rs(rec, "rule"), "token");
	assert_string_equal(rs(rec, "accessor"), "");
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    403);
	json_decref(recs);
	/* The three KV reads with the revoked token were audited as token
	 * denials; the other token's read came last. */
	recs = records(s, "secret/data/medical/r1", "read");
	{
		size_t n = json_array_size(recs), i;
		assert_true(n >= 4);
		rec = json_array_get(recs, n - 1);
		assert_string_equal(rs(rec, "accessor"), acc2);
		assert_string_equal(rs(rec, "decision"), "allow");
		for (i = n - 4; i < n - 1; i++) {
			rec = json_array_get(recs, i);
			assert_string_equal(rs(rec, "decision"), "deny");
			assert_string_equal(rs(rec, "rule"), "token");
			assert_string_equal(rs(rec, "accessor"), "");
		}
	}
	json_decref(recs);
	assert_int_equal(call(s, NULL, "GET",
	                     "/v1/sys/audit/releases?limit=1000", s->f.root,
	                     &r),
	    200);
	assert_null(strstr(r.body, tok));
	vresp_clear(&r);

	curl_easy_cleanup(kept);
	free(tok);
	free(tok2);
}

static void
test_renew_self(void **state)
{
	struct st *s = *state;
	struct vresp r;
	char acc[64];
	char *tok = login(s, acc);
	json_t *recs, *rec;

	assert_int_equal(call(s, NULL, "POST", "/v1/auth/token/renew-self", tok,
	                     &r),
	    400);
	assert_string_equal(r.body,
	    "{\"errors\":[\"lease is not renewable\"]}");
	vresp_clear(&r);
	assert_int_equal(call(s, NULL, "PUT", "/v1/auth/token/renew-self", tok,
	                     NULL),
	    400);
	/* Refused, not revoked: the token still works. */
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 200);
	/* Without a token: 403. */
	assert_int_equal(call(s, NULL, "POST", "/v1/auth/token/renew-self",
	                     NULL, &r),
	    403);
	assert_string_equal(r.body, "{\"errors\":[\"permission denied\"]}");
	vresp_clear(&r);

	/* The first one is test_revoke_self's renewal with a revoked token. */
	recs = records(s, "auth/token/renew-self", "renew");
	assert_int_equal(json_array_size(recs), 4);
	rec = json_array_get(recs, 0);
	assert_string_equal(rs(rec, "rule"), "token");
	assert_string_equal(rs(rec, "reason"), "unknown token");
	rec = json_array_get(recs, 1);
	assert_string_equal(rs(rec, "decision"), "deny");
	assert_string_equal(rs(rec, "rule"), "not-renewable");
	assert_string_equal(rs(rec, "accessor"), acc);
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    400);
	rec = json_array_get(recs, 3);
	assert_string_equal(rs(rec, "rule"), "token");
	assert_string_equal(rs(rec, "reason"), "missing client token");
	assert_int_equal(json_integer_value(json_object_get(rec, "status")),
	    403);
	json_decref(recs);
	free(tok);
}

static void
test_methods(void **state)
{
	struct st *s = *state;
	char acc[64];
	char *tok = login(s, acc);

	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/revoke-self", tok,
	                     NULL),
	    405);
	assert_int_equal(call(s, NULL, "DELETE", "/v1/auth/token/revoke-self",
	                     tok, NULL),
	    405);
	assert_int_equal(call(s, NULL, "GET", "/v1/auth/token/renew-self", tok,
	                     NULL),
	    405);
	/* Vault answers lookup-self to GET and POST alike. */
	assert_int_equal(call(s, NULL, "POST", "/v1/auth/token/lookup-self",
	                     tok, NULL),
	    200);
	assert_int_equal(call(s, NULL, "DELETE", "/v1/auth/token/lookup-self",
	                     tok, NULL),
	    405);
	assert_int_equal(call(s, NULL, "POST", "/v1/auth/token/revoke-selfx",
	                     tok, NULL),
	    404);
	/* None of those revoked anything. */
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 200);
	/* PUT revokes as POST does. */
	assert_int_equal(call(s, NULL, "PUT", "/v1/auth/token/revoke-self", tok,
	                     NULL),
	    204);
	assert_int_equal(vfx_kv_get(&s->f, tok, "medical/r1", NULL), 403);
	free(tok);
}

/* A revoke whose audit record cannot be written is not performed: 503,
 * and the token keeps working (lookup-self is not audited, so it can tell
 * while the log is full). */
static void
test_revoke_unaudited(void **state)
{
	struct st *s = *state, t;
	struct vresp r;
	char *toks[4], acc[64], policy[1024];
	int i, got503 = 0, full = 0;
	long st;

	memset(&t, 0, sizeof(t));
	snprintf(t.img, sizeof(t.img), "%s", s->img);
	snprintf(policy, sizeof(policy), policy_fmt, t.img);
	assert_int_equal(vfx_init(&t.f, policy, "audit_map_size = 262144;\n"),
	    0);
	assert_int_equal(vfx_node_new(&t.f, "hipaaCluster", "us-south", "dal05",
	                     "node-a", &t.node),
	    0);
	assert_int_equal(vfx_start(&t.f), 0);
	for (i = 0; i < 4; i++)
		toks[i] = login(&t, acc);
	/* Fill the log with refused revokes (their records are smaller than
	 * an allowed one's, which carries the claims): five 503s in a row. */
	for (i = 0; i < 3000 && full < 5; i++) {
		st = call(&t, NULL, "POST", "/v1/auth/token/revoke-self",
		    "hvs.not-a-token", NULL);
		if (st == 503)
			full++;
		else {
			assert_int_equal(st, 403);
			full = 0;
		}
	}
	assert_int_equal(full, 5);
	/* A lone small commit may still fit now and then: try the tokens in
	 * turn until a revoke meets the full log. */
	for (i = 0; i < 4 && !got503; i++) {
		st = call(&t, NULL, "POST", "/v1/auth/token/revoke-self",
		    toks[i], &r);
		if (st == 204) {
			vresp_clear(&r);
			assert_int_equal(call(&t, NULL, "GET",
			                     "/v1/auth/token/lookup-self",
			                     toks[i], NULL),
			    403);
			continue;
		}
		assert_int_equal(st, 503);
		assert_non_null(strstr(r.body, "audit"));
		vresp_clear(&r);
		got503 = 1;
		assert_int_equal(call(&t, NULL, "GET",
		                     "/v1/auth/token/lookup-self", toks[i], &r),
		    200);
		assert_string_equal(json_string_value(
		                        json_object_get(json_object_get(r.json,
		                                            "data"),
		                            "role")),
		    "demo");
		vresp_clear(&r);
	}
	assert_true(got503);
	for (i = 0; i < 4; i++)
		free(toks[i]);
	assert_int_equal(vfx_stop(&t.f), 0);
	vfx_node_free(&t.node);
	vfx_cleanup(&t.f);
}

/* Last: the root token revokes itself; root_token_file brings it back at
 * the next start. */
static void
test_root_revoke_self(void **state)
{
	struct st *s = *state;

	assert_int_equal(call(s, NULL, "POST", "/v1/auth/token/revoke-self",
	                     s->f.root, NULL),
	    204);
	assert_int_equal(vfx_kv_get(&s->f, s->f.root, "medical/r1", NULL), 403);
	assert_int_equal(vfx_stop(&s->f), 0);
	assert_int_equal(vfx_start(&s->f), 0);
	assert_int_equal(vfx_kv_get(&s->f, s->f.root, "medical/r1", NULL), 200);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoke_self),
		cmocka_unit_test(test_renew_self),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_revoke_unaudited),
		cmocka_unit_test(test_root_revoke_self),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
