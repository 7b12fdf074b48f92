/* tsi-attest's handlers without a socket: the route table (404, 405, the
 * admin check), registration and listing on a real LMDB store, and the PCR
 * policy file (matching, and errors as file:line: reason). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "attest.h"
#include "tsi/err.h"
#include "tsi/log.h"

#define TOKEN "unit-admin-token-0123456789"
#define HEXA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static struct attest A;
static struct attest_settings S;
static char dir[] = "/tmp/tsi-attest-unit.XXXXXX";
static char *tokens[] = { (char *)TOKEN };

static int
setup(void **state)
{
	char p[256];
	struct tsi_audit_opts ao;

	(void)state;
	tsi_log_init("test", TSI_LOG_ERROR);
	assert_non_null(mkdtemp(dir));
	S.admin_tokens = tokens;
	S.n_admin_tokens = 1;
	S.session_ttl = 30;
	A.set = &S;
	A.node_ca_pem = strdup("-----BEGIN CERTIFICATE-----\n");
	pthread_mutex_init(&A.mu, NULL);
	snprintf(p, sizeof(p), "%s/attest", dir);
	assert_int_equal(attest_store_open(&A, p, 16u << 20), TSI_OK);
	memset(&ao, 0, sizeof(ao));
	ao.map_size = 16u << 20;
	snprintf(p, sizeof(p), "%s/audit", dir);
	assert_int_equal(tsi_audit_open(p, &ao, &A.audit), TSI_OK);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	tsi_audit_close(A.audit);
	attest_store_close(&A);
	attest_pcr_free(A.pcr);
	free(A.node_ca_pem);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static unsigned
call(const char *method, const char *path, const char *token, const char *body,
    struct attest_answer *ans)
{
	struct attest_req req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.token = token;
	req.body = body;
	req.body_len = body ? strlen(body) : 0;
	req.remote = "127.0.0.1";
	attest_dispatch(&A, &req, ans);
	return ans->status;
}

static void
test_route_table(void **state)
{
	struct attest_answer ans;

	(void)state;
	assert_int_equal(call("GET", "/v1/health", NULL, NULL, &ans), 200);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/node-ca", NULL, NULL, &ans), 200);
	assert_string_equal(ans.content_type, "application/x-pem-file");
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/nope", NULL, NULL, &ans), 404);
	attest_answer_clear(&ans);
	assert_int_equal(call("DELETE", "/v1/health", NULL, NULL, &ans), 405);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/enroll/start", NULL, NULL, &ans),
	    405);
	attest_answer_clear(&ans);
	/* Admin routes: no token, a wrong one, a prefix of the right one. */
	assert_int_equal(call("GET", "/v1/nodes", NULL, NULL, &ans), 403);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/nodes", "nope", NULL, &ans), 403);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/nodes", "unit-admin-token", NULL,
	                     &ans),
	    403);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/nodes/x", NULL, NULL, &ans), 403);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/nodes", TOKEN, NULL, &ans), 200);
	attest_answer_clear(&ans);
	assert_int_equal(call("PUT", "/v1/nodes/x/revoke", TOKEN, NULL, &ans),
	    405);
	attest_answer_clear(&ans);
	assert_int_equal(call("POST", "/v1/nodes/x/explode", TOKEN, "{}", &ans),
	    404);
	attest_answer_clear(&ans);
}

static void
test_register_list(void **state)
{
	struct attest_answer ans;
	json_t *n;

	(void)state;
	assert_int_equal(
	    call("POST", "/v1/nodes", TOKEN,
	        "{\"node\":\"n1\","
	        "\"cluster-name\":\"c\",\"region\":\"r\",\"datacenter\":\"d\","
	        "\"ek_sha256\":\"" HEXA "\",\"tags\":{\"rack\":\"7\"}}",
	        &ans),
	    200);
	attest_answer_clear(&ans);
	/* Location values are validated: they become URI SANs. */
	assert_int_equal(call("POST", "/v1/nodes", TOKEN,
	                     "{\"node\":\"n:2\","
	                     "\"cluster-name\":\"c\",\"region\":\"r\","
	                     "\"datacenter\":\"d\","
	                     "\"ek_sha256\":\"" HEXA "\"}",
	                     &ans),
	    400);
	attest_answer_clear(&ans);
	assert_int_equal(call("POST", "/v1/nodes", TOKEN,
	                     "{\"node\":\"n2\","
	                     "\"cluster-name\":\"c\",\"region\":\"r\","
	                     "\"datacenter\":\"d\","
	                     "\"ek_sha256\":\"" HEXA "\"}",
	                     &ans),
	    409);
	attest_answer_clear(&ans);
	assert_int_equal(call("POST", "/v1/nodes", TOKEN,
	                     "{\"node\":\"n1\","
	                     "\"cluster-name\":\"c\",\"region\":\"r\","
	                     "\"datacenter\":\"d\","
	                     "\"ek_sha256\":\"" HEXA "\"}",
	                     &ans),
	    409);
	attest_answer_clear(&ans);
	assert_int_equal(call("GET", "/v1/nodes", TOKEN, NULL, &ans), 200);
	n = json_array_get(json_object_get(json_object_get(ans.json, "data"),
	                       "nodes"),
	    0);
	assert_string_equal(json_string_value(json_object_get(n, "node")),
	    "n1");
	assert_string_equal(json_string_value(json_object_get(n, "state")),
	    "untrusted");
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(n, "tags"),
	                            "rack")),
	    "7");
	assert_true(json_is_null(json_object_get(n, "last_quote")));
	attest_answer_clear(&ans);
}

static int
write_file(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void
test_pcr_policy(void **state)
{
	static const struct {
		const char *text, *err;
	} bad[] = {
		{ "pcr_policies = ( { name = \"a\"; allow = ( { pcr8 = \"00\"; "
		  "} ); } );\n",
		    ":1: 'pcr8': expected pcr0 .. pcr7" },
		{ "pcr_policies = (\n { name = \"a\";\n allow = ( { pcr0 = "
		  "\"zz\"; } ); } );\n",
		    ":3: pcr0 must be 64 hex digits" },
		{ "pcr_policies = ( { name = \"a\"; allow = ( ); } );\n",
		    "allow must be a non-empty list" },
		{ "pcr_policies = ( { allow = ( { pcr0 = \"00\"; } ); } );\n",
		    "each policy needs a name" },
		{ "pcr_policies = ( { name = \"a\"; allow = ( { pcr0 = \"" HEXA
		  "\"; } ); },\n"
		  "{ name = \"a\"; allow = ( { pcr0 = \"" HEXA
		  "\"; } ); } );\n",
		    ":2: policy 'a' defined twice" },
		{ "pcr_policy = ( );\n", ":1: unknown setting 'pcr_policy'" },
		{ "pcr_policies = ( { name = \"a\" } );\n", ":1:" },
	};
	struct attest_pcr_policies *p = NULL;
	const struct attest_pcr_policy *pol;
	uint8_t v[ATTEST_PCRS][32];
	char path[256], err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(write_file("bad.conf", bad[i].text, path,
		                     sizeof(path)),
		    0);
		assert_int_equal(attest_pcr_load(path, &p, err, sizeof(err)),
		    TSI_ERR_CONFIG);
		if (strstr(err, bad[i].err) == NULL ||
		    strstr(err, "bad.conf") == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err,
			    bad[i].err);
	}
	assert_int_equal(write_file("good.conf",
	                     "pcr_policies = (\n"
	                     " { name = \"a\"; allow = ( { pcr0 = \"" HEXA
	                     "\"; },\n"
	                     "   { pcr0 = \"" HEXA "\"; pcr7 = \"" HEXA
	                     "\"; } ); },\n"
	                     " { name = \"b\"; allow = ( { pcr3 = \"" HEXA
	                     "\"; } ); } );\n",
	                     path, sizeof(path)),
	    0);
	assert_int_equal(attest_pcr_load(path, &p, err, sizeof(err)), TSI_OK);
	assert_non_null(pol = attest_pcr_find(p, "b"));
	assert_null(attest_pcr_find(p, "c"));
	memset(v, 0, sizeof(v));
	assert_false(attest_pcr_match(pol, (const uint8_t(*)[32])v));
	memset(v[3], 0xaa, 32);
	assert_true(attest_pcr_match(pol, (const uint8_t(*)[32])v));
	/* Unconstrained PCRs may hold anything. */
	memset(v[5], 0x17, 32);
	assert_true(attest_pcr_match(pol, (const uint8_t(*)[32])v));
	attest_pcr_free(p);
}

static void
test_session_expired_and_single_use(void **state)
{
	struct attest_answer ans;
	MDB_txn *txn;
	json_t *sess, *got = NULL;
	const char *sid = "00112233445566778899aabbccddeeff";
	char body[256];

	(void)state;
	/* A session whose time is up: refused, and gone from the store. */
	sess = json_pack("{sssssssssssIss}", "node", "n1", "ek_sha256", HEXA,
	    "nonce", HEXA, "secret", HEXA, "csr", "x", "expires_at",
	    (json_int_t)(attest_now() - 1), "ak_pub", "AAA=");
	assert_int_equal(attest_store_begin(&A, 0, &txn), TSI_OK);
	assert_int_equal(attest_store_put(txn, A.db_sessions, sid, sess),
	    TSI_OK);
	assert_int_equal(attest_store_commit(txn), TSI_OK);
	json_decref(sess);
	snprintf(body, sizeof(body), "{\"session\":\"%s\",\"proof\":\"%s\"}",
	    sid, HEXA);
	assert_int_equal(call("POST", "/v1/enroll/finish", NULL, body, &ans),
	    410);
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(ans.json,
	                                           "errors"),
	                            0)),
	    "session expired");
	attest_answer_clear(&ans);
	assert_int_equal(attest_store_begin(&A, 1, &txn), TSI_OK);
	assert_int_equal(attest_store_get(&A, txn, A.db_sessions, sid, &got),
	    TSI_ERR_NOT_FOUND);
	mdb_txn_abort(txn);
	assert_int_equal(call("POST", "/v1/enroll/finish", NULL, body, &ans),
	    410);
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(ans.json,
	                                           "errors"),
	                            0)),
	    "session unknown, expired or already used");
	attest_answer_clear(&ans);
	/* Expired sessions left behind are swept. */
	sess = json_pack("{sI}", "expires_at", (json_int_t)(attest_now() - 5));
	assert_int_equal(attest_store_begin(&A, 0, &txn), TSI_OK);
	assert_int_equal(attest_store_put(txn, A.db_sessions, sid, sess),
	    TSI_OK);
	assert_int_equal(attest_store_commit(txn), TSI_OK);
	json_decref(sess);
	attest_store_expire(&A, attest_now(), 100);
	assert_int_equal(attest_store_begin(&A, 1, &txn), TSI_OK);
	assert_int_equal(attest_store_get(&A, txn, A.db_sessions, sid, &got),
	    TSI_ERR_NOT_FOUND);
	mdb_txn_abort(txn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_table),
		cmocka_unit_test(test_register_list),
		cmocka_unit_test(test_pcr_policy),
		cmocka_unit_test(test_session_expired_and_single_use),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
