/*
 * Attested enrollment end to end: tsi-attest --dev on loopback, nodes that
 * are swtpm instances manufactured with EK certificates, the node side done
 * by tpm2-tools. The good path, then each kind of bad input: refused with a
 * reason in the log and the audit log, and nothing enrolled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/x509.h"
#include "attest_fixture.h"

#define ZERO64 \
	"0000000000000000000000000000000000000000000000000000000000000000"

static struct {
	char ca_dir[256], ca_pem[300], other_ca_dir[256];
	char policy[300];
	struct tpm_node a, b, c, e;
	struct attest_srv srv;
} F;

static int
setup(void **state)
{
	FILE *f;

	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	assert_int_equal(tpm_node_ca_dir(F.ca_dir, sizeof(F.ca_dir), "ekca"),
	    0);
	assert_int_equal(tpm_node_ca_dir(F.other_ca_dir, sizeof(F.other_ca_dir),
	                     "ekca2"),
	    0);
	assert_int_equal(tpm_node_start(&F.a, F.ca_dir), 0);
	assert_int_equal(tpm_node_ca_pem(F.ca_dir, F.ca_pem, sizeof(F.ca_pem)),
	    0);
	assert_int_equal(tpm_node_start(&F.b, F.ca_dir), 0);
	assert_int_equal(tpm_node_start(&F.c, F.other_ca_dir), 0);
	assert_int_equal(tpm_node_start(&F.e, F.ca_dir), 0);
	assert_int_equal(tpm_node_make_keys(&F.a, NULL), 0);
	assert_int_equal(tpm_node_make_keys(&F.b, NULL), 0);
	assert_int_equal(tpm_node_make_keys(&F.c, NULL), 0);
	assert_int_equal(tpm_node_make_keys(&F.e, NULL), 0);
	/* A fresh swtpm has PCRs 0-7 at zero: "golden" allows exactly that. */
	snprintf(F.policy, sizeof(F.policy), "%s/pcr.conf", F.a.dir);
	assert_non_null(f = fopen(F.policy, "w"));
	fprintf(f,
	    "pcr_policies = (\n  { name = \"golden\";\n    allow = ( { "
	    "pcr0 = \"%s\"; pcr7 = \"%s\"; } );\n  }\n);\n",
	    ZERO64, ZERO64);
	fclose(f);
	assert_int_equal(attest_srv_start(&F.srv, F.ca_pem, F.policy), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[700];

	(void)state;
	if (getenv("TSI_TEST_DEBUG") != NULL) {
		snprintf(cmd, sizeof(cmd), "cat '%s'", F.srv.err);
		(void)!system(cmd);
	}
	attest_srv_stop(&F.srv);
	tpm_node_stop(&F.a);
	tpm_node_stop(&F.b);
	tpm_node_stop(&F.c);
	tpm_node_stop(&F.e);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", F.ca_dir,
	    F.other_ca_dir);
	assert_int_equal(system(cmd), 0);
	curl_global_cleanup();
	return 0;
}

/* The node entry of name from GET /v1/nodes (a new reference), or NULL. */
static json_t *
listed(const char *name, const char *ek)
{
	json_t *ans = NULL, *n, *found = NULL;
	size_t i;

	assert_int_equal(attest_http(&F.srv, "GET", "/v1/nodes",
	                     ATTEST_TEST_TOKEN, NULL, NULL, &ans),
	    200);
	json_array_foreach (json_object_get(json_object_get(ans, "data"),
	                        "nodes"),
	    i, n) {
		const char *nn = json_string_value(json_object_get(n, "node"));
		const char *ee =
		    json_string_value(json_object_get(n, "ek_sha256"));
		if ((name != NULL && nn != NULL && strcmp(nn, name) == 0) ||
		    (ek != NULL && ee != NULL && strcmp(ee, ek) == 0)) {
			found = json_incref(n);
			break;
		}
	}
	json_decref(ans);
	return found;
}

/* The node's certificate serial (the enrollment binding) into out, "" when
 * it has none: a refused enrollment must leave it as it was. */
static void
node_serial(const char *name, char out[80])
{
	char path[128];
	json_t *ans = NULL;
	const char *s;

	snprintf(path, sizeof(path), "/v1/nodes/%s", name);
	assert_int_equal(attest_http(&F.srv, "GET", path, ATTEST_TEST_TOKEN,
	                     NULL, NULL, &ans),
	    200);
	s = json_string_value(
	    json_object_get(json_object_get(ans, "data"), "cert_serial"));
	snprintf(out, 80, "%s", s ? s : "");
	json_decref(ans);
}

static const char *
first_error(const json_t *ans)
{
	return json_string_value(
	    json_array_get(json_object_get(ans, "errors"), 0));
}

static void
check_cert_location(const json_t *ans, const char *dc, const char *node)
{
	const char *pem =
	    json_string_value(json_object_get(ans, "certificate"));
	const char *ca = json_string_value(json_object_get(ans, "ca"));
	STACK_OF(X509) *c = NULL, *k = NULL;
	struct tsi_location loc;

	assert_non_null(pem);
	assert_non_null(ca);
	assert_int_equal(tsi_x509_load_chain_pem(pem, strlen(pem), &c), TSI_OK);
	assert_int_equal(tsi_x509_load_chain_pem(ca, strlen(ca), &k), TSI_OK);
	assert_int_equal(X509_verify(sk_X509_value(c, 0),
	                     X509_get0_pubkey(sk_X509_value(k, 0))),
	    1);
	assert_int_equal(tsi_x509_location(sk_X509_value(c, 0), &loc), TSI_OK);
	assert_string_equal(loc.cluster_name, "test");
	assert_string_equal(loc.region, "eu-west");
	assert_string_equal(loc.datacenter, dc);
	assert_string_equal(loc.node, node);
	tsi_location_clear(&loc);
	sk_X509_pop_free(c, X509_free);
	sk_X509_pop_free(k, X509_free);
}

static void
test_enroll_ok(void **state)
{
	json_t *ans = NULL, *n, *ca = NULL;
	long code;

	(void)state;
	assert_int_equal(attest_register(&F.srv, &F.a, "node-a", "dc1",
	                     "golden", 0),
	    200);
	assert_int_equal(attest_enroll(&F.srv, &F.a, NULL, &ans), 200);
	assert_string_equal(json_string_value(json_object_get(ans, "node")),
	    "node-a");
	assert_true(json_integer_value(json_object_get(ans, "expires_at")) >
	    time(NULL));
	check_cert_location(ans, "dc1", "node-a");
	json_decref(ans);
	assert_non_null(n = listed("node-a", NULL));
	assert_string_equal(json_string_value(json_object_get(n, "state")),
	    "trusted");
	assert_true(json_is_integer(json_object_get(n, "last_quote")));
	json_decref(n);
	/* The node CA is public. */
	code = attest_http(&F.srv, "GET", "/v1/node-ca", NULL, NULL, NULL, &ca);
	assert_int_equal(code, 200);
	assert_true(attest_audit_has(&F.srv, "\"enroll.finish\"") >= 1);
	assert_true(attest_audit_has(&F.srv, "\"node.register\"") >= 1);
	assert_true(attest_log_has(&F.srv, "\"enroll.done\"") >= 1);
}

/* start + activate; *sa the start answer, secret recovered by n's TPM. */
static void
start_and_activate(struct tpm_node *n, json_t **sa, uint8_t **secret,
    size_t *sl, uint8_t nonce[32])
{
	json_t *sb = attest_start_body(n, 1, NULL);

	assert_non_null(sb);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     sb, NULL, sa),
	    200);
	json_decref(sb);
	assert_int_equal(attest_activate(n, *sa, secret, sl), 0);
	assert_int_equal(attest_nonce(*sa, nonce), 0);
}

static void
test_replayed_finish(void **state)
{
	json_t *sa = NULL, *fb, *ans = NULL;
	uint8_t *secret = NULL, nonce[32];
	size_t sl;

	(void)state;
	start_and_activate(&F.a, &sa, &secret, &sl, nonce);
	fb = attest_finish_body(&F.a,
	    json_string_value(json_object_get(sa, "session")), secret, sl,
	    TPM_NODE_KEY, nonce, NULL);
	assert_non_null(fb);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    200);
	json_decref(ans);
	/* The same evidence again: the session was single-use. */
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    410);
	assert_non_null(strstr(first_error(ans), "already used"));
	json_decref(ans);
	assert_true(attest_audit_has(&F.srv, "already used") >= 1);
	json_decref(fb);
	json_decref(sa);
	free(secret);
}

static void
test_unregistered_ek_pending(void **state)
{
	json_t *sb = attest_start_body(&F.b, 1, NULL), *ans = NULL, *n;
	char ek[65];

	(void)state;
	assert_int_equal(attest_ek_hash(&F.b, ek), 0);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     sb, NULL, &ans),
	    403);
	assert_non_null(strstr(first_error(ans), "not registered"));
	json_decref(ans);
	json_decref(sb);
	assert_non_null(n = listed(NULL, ek));
	assert_string_equal(json_string_value(json_object_get(n, "state")),
	    "pending");
	assert_true(json_is_null(json_object_get(n, "node")));
	json_decref(n);
	assert_true(attest_log_has(&F.srv, "is not registered") >= 1);
	assert_true(attest_audit_has(&F.srv, ek) >= 1);
}

static void
test_unknown_ek_ca(void **state)
{
	json_t *sb = attest_start_body(&F.c, 1, NULL), *ans = NULL, *n;
	char ek[65];

	(void)state;
	assert_int_equal(attest_ek_hash(&F.c, ek), 0);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     sb, NULL, &ans),
	    403);
	assert_non_null(strstr(first_error(ans), "does not verify to ek_ca"));
	json_decref(ans);
	json_decref(sb);
	/* Refused outright: an unknown manufacturer is not "pending". */
	n = listed(NULL, ek);
	assert_null(n);
	assert_true(attest_audit_has(&F.srv, "does not verify to ek_ca") >= 1);
	assert_true(attest_log_has(&F.srv, "does not verify to ek_ca") >= 1);
}

static void
test_ak_without_fixedtpm(void **state)
{
	json_t *sb, *ans = NULL;

	(void)state;
	/* B is registered now (its pending entry goes), by EK hash. */
	assert_int_equal(attest_register(&F.srv, &F.b, "node-b", "dc2", NULL,
	                     1),
	    200);
	assert_int_equal(
	    tpm_node_run(&F.b,
	        "tpm2_evictcontrol -C o -c 0x%x "
	        ">/dev/null && tpm2_createprimary -C e -g sha256 "
	        "-G ecc256:ecdsa-sha256:null "
	        "-a 'sensitivedataorigin|userwithauth|restricted|sign' "
	        "-c ak2.ctx >/dev/null && tpm2_evictcontrol -C o -c ak2.ctx "
	        "0x%x "
	        ">/dev/null && tpm2_flushcontext -t && tpm2_readpublic -c 0x%x "
	        "-o ak.pub >/dev/null",
	        TPM_NODE_AK, TPM_NODE_AK, TPM_NODE_AK),
	    0);
	sb = attest_start_body(&F.b, 0, NULL);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     sb, NULL, &ans),
	    403);
	assert_string_equal(first_error(ans), "AK lacks fixedTPM");
	json_decref(ans);
	json_decref(sb);
	assert_true(attest_audit_has(&F.srv, "AK lacks fixedTPM") >= 1);
	assert_true(attest_log_has(&F.srv, "AK lacks fixedTPM") >= 1);
	assert_non_null(ans = listed("node-b", NULL));
	assert_string_equal(json_string_value(json_object_get(ans, "state")),
	    "untrusted");
	json_decref(ans);
}

static void
test_certify_other_key(void **state)
{
	json_t *sa = NULL, *fb, *ans = NULL;
	uint8_t *secret = NULL, nonce[32];
	size_t sl;

	char before[80], after[80];

	(void)state;
	node_serial("node-a", before);
	assert_string_not_equal(before, "");
	start_and_activate(&F.a, &sa, &secret, &sl, nonce);
	/* A genuine certify by the AK, over the SRK instead of the key. */
	fb = attest_finish_body(&F.a,
	    json_string_value(json_object_get(sa, "session")), secret, sl,
	    TPM_NODE_SRK, nonce, NULL);
	assert_non_null(fb);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    403);
	assert_string_equal(first_error(ans),
	    "certify: the certified object is not key_pub");
	json_decref(ans);
	json_decref(fb);
	json_decref(sa);
	free(secret);
	assert_true(attest_audit_has(&F.srv, "certified object is not") >= 1);
	assert_true(attest_log_has(&F.srv, "certified object is not") >= 1);
	/* Nothing was enrolled: the binding is unchanged. */
	node_serial("node-a", after);
	assert_string_equal(before, after);
}

static void
test_foreign_proof(void **state)
{
	json_t *sa1 = NULL, *sa2 = NULL, *fb, *ans = NULL;
	uint8_t *s1 = NULL, *s2 = NULL, n1[32], n2[32];
	size_t l1, l2;

	char before[80], after[80];

	(void)state;
	node_serial("node-a", before);
	assert_string_not_equal(before, "");
	start_and_activate(&F.a, &sa1, &s1, &l1, n1);
	start_and_activate(&F.a, &sa2, &s2, &l2, n2);
	/* Session 2's evidence with session 1's secret. */
	fb = attest_finish_body(&F.a,
	    json_string_value(json_object_get(sa2, "session")), s1, l1,
	    TPM_NODE_KEY, n2, NULL);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    403);
	assert_non_null(strstr(first_error(ans), "activation proof"));
	json_decref(ans);
	json_decref(fb);
	assert_true(
	    attest_audit_has(&F.srv, "activation proof does not match") >= 1);
	assert_true(
	    attest_log_has(&F.srv, "activation proof does not match") >= 1);
	/* And session 2 is gone even though it was refused. */
	fb = attest_finish_body(&F.a,
	    json_string_value(json_object_get(sa2, "session")), s2, l2,
	    TPM_NODE_KEY, n2, NULL);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    410);
	json_decref(ans);
	json_decref(fb);
	json_decref(sa1);
	json_decref(sa2);
	free(s1);
	free(s2);
	/* Nothing was enrolled: the binding is unchanged. */
	node_serial("node-a", after);
	assert_string_equal(before, after);
}

static void
test_stale_nonce(void **state)
{
	json_t *sa1 = NULL, *sa2 = NULL, *fb, *ans = NULL;
	uint8_t *s1 = NULL, *s2 = NULL, n1[32], n2[32];
	size_t l1, l2;

	char before[80], after[80];

	(void)state;
	node_serial("node-a", before);
	assert_string_not_equal(before, "");
	start_and_activate(&F.a, &sa1, &s1, &l1, n1);
	start_and_activate(&F.a, &sa2, &s2, &l2, n2);
	/* A quote made for the earlier session's nonce. */
	fb = attest_finish_body(&F.a,
	    json_string_value(json_object_get(sa2, "session")), s2, l2,
	    TPM_NODE_KEY, n2, n1);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    403);
	assert_non_null(strstr(first_error(ans),
	    "quote: qualifying data is not "
	    "this session's nonce"));
	json_decref(ans);
	json_decref(fb);
	json_decref(sa1);
	json_decref(sa2);
	free(s1);
	free(s2);
	assert_true(attest_audit_has(&F.srv, "stale or replayed") >= 1);
	assert_true(attest_log_has(&F.srv, "stale or replayed") >= 1);
	/* Nothing was enrolled: the binding is unchanged. */
	node_serial("node-a", after);
	assert_string_equal(before, after);
}

static void
test_csr_other_location_ignored(void **state)
{
	json_t *ans = NULL;

	(void)state;
	assert_int_equal(attest_enroll(&F.srv, &F.a,
	                     "URI:tsi:datacenter:evil,"
	                     "URI:tsi:node:other,URI:tsi:region:nowhere",
	                     &ans),
	    200);
	check_cert_location(ans, "dc1", "node-a");
	json_decref(ans);
}

static void
test_wrong_pcrs(void **state)
{
	json_t *ans = NULL, *show = NULL, *d;

	(void)state;
	assert_int_equal(tpm_node_run(&F.a,
	                     "tpm2_pcrextend 7:sha256="
	                     "0202020202020202020202020202020202020202020202020"
	                     "202020202020202"),
	    0);
	assert_int_equal(attest_enroll(&F.srv, &F.a, NULL, &ans), 403);
	assert_string_equal(first_error(ans),
	    "quoted PCR values are not allowed "
	    "by policy 'golden'");
	json_decref(ans);
	assert_int_equal(attest_http(&F.srv, "GET", "/v1/nodes/node-a",
	                     ATTEST_TEST_TOKEN, NULL, NULL, &show),
	    200);
	d = json_object_get(show, "data");
	assert_string_equal(json_string_value(json_object_get(d, "state")),
	    "untrusted");
	assert_string_not_equal(json_string_value(
	                            json_object_get(json_object_get(d,
	                                                "quoted_pcrs"),
	                                "7")),
	    ZERO64);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(d,
	                                           "expected_pcrs"),
	                            0),
	                        "7")),
	    ZERO64);
	json_decref(show);
	assert_true(attest_audit_has(&F.srv, "not allowed by policy") >= 1);
	/* `tsi node show` prints the quoted value beside the expected one. */
	{
		char cmd[1024], line[512];
		const char *bindir = getenv("TSI_BIN_DIR");
		int saw_pcr7 = 0, saw_expected = 0;
		FILE *p;

		snprintf(cmd, sizeof(cmd),
		    "TSI_ATTEST_ADDR='%s' TSI_ATTEST_TOKEN='%s' "
		    "'%s/tsi' node show node-a",
		    F.srv.addr, ATTEST_TEST_TOKEN,
		    bindir ? bindir : "build/bin");
		assert_non_null(p = popen(cmd, "r"));
		while (fgets(line, sizeof(line), p) != NULL) {
			if (strstr(line, "pcr7 (set 0)") != NULL)
				saw_pcr7 = 1;
			if (strstr(line, "expected " ZERO64) != NULL)
				saw_expected = 1;
		}
		assert_int_equal(pclose(p), 0);
		assert_true(saw_pcr7);
		assert_true(saw_expected);
	}
}

static void
test_ak_in_second_tpm(void **state)
{
	json_t *sb, *sa = NULL, *fb, *ans = NULL;
	uint8_t *b = NULL, *secret = NULL, nonce[32], fake[32];
	size_t bl, sl;
	char *s;

	char before[80], after[80];

	(void)state;
	node_serial("node-a", before);
	assert_string_not_equal(before, "");
	/* Node A's (registered) EK and certificate, with an AK and signing
	 * key that live in another TPM (E). */
	sb = attest_start_body(&F.e, 1, NULL);
	assert_int_equal(tpm_node_read(&F.a, "ek.pub", &b, &bl), 0);
	assert_int_equal(tsi_b64_encode(b, bl, &s), TSI_OK);
	json_object_set_new(sb, "ek_pub", json_string(s));
	free(s);
	free(b);
	assert_int_equal(tpm_node_read(&F.a, "ek.pem", &b, &bl), 0);
	json_object_set_new(sb, "ek_cert", json_string((char *)b));
	free(b);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     sb, NULL, &sa),
	    200);
	json_decref(sb);
	/* Neither TPM can open the credential: A lacks the AK, E the EK. */
	assert_int_not_equal(attest_activate(&F.a, sa, &secret, &sl), 0);
	assert_int_not_equal(attest_activate(&F.e, sa, &secret, &sl), 0);
	assert_int_equal(attest_nonce(sa, nonce), 0);
	assert_int_equal(RAND_bytes(fake, sizeof(fake)), 1);
	fb = attest_finish_body(&F.e,
	    json_string_value(json_object_get(sa, "session")), fake,
	    sizeof(fake), TPM_NODE_KEY, nonce, NULL);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL,
	                     fb, NULL, &ans),
	    403);
	assert_non_null(strstr(first_error(ans), "activation proof"));
	json_decref(ans);
	json_decref(fb);
	json_decref(sa);
	/* Nothing was enrolled: the binding is unchanged. */
	node_serial("node-a", after);
	assert_string_equal(before, after);
}

static void
test_bad_requests(void **state)
{
	json_t *ans = NULL, *sb;
	char *big;
	uint8_t *b;
	size_t bl;
	char *s;

	char before[80], after[80];

	(void)state;
	node_serial("node-a", before);
	assert_string_not_equal(before, "");
	assert_non_null(big = malloc(70001));
	memset(big, 'a', 70000);
	big[70000] = '\0';
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     NULL, big, &ans),
	    413);
	json_decref(ans);
	free(big);
	assert_true(attest_log_has(&F.srv, "\"http.body_too_large\"") >= 1);
	assert_true(attest_audit_has(&F.srv, "request body too large") >= 1);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     NULL, "{\"ek_pub\":", &ans),
	    400);
	assert_string_equal(first_error(ans), "body is not a JSON object");
	json_decref(ans);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     NULL, "{\"ek_pub\":\"!!!!\"}", &ans),
	    400);
	assert_string_equal(first_error(ans), "ek_pub: not canonical base64");
	json_decref(ans);
	/* A TPM2B_PUBLIC cut short by one byte. */
	sb = attest_start_body(&F.a, 1, NULL);
	assert_int_equal(tpm_node_read(&F.a, "ak.pub", &b, &bl), 0);
	assert_int_equal(tsi_b64_encode(b, bl - 1, &s), TSI_OK);
	json_object_set_new(sb, "ak_pub", json_string(s));
	free(s);
	free(b);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/enroll/start", NULL,
	                     sb, NULL, &ans),
	    400);
	assert_non_null(strstr(first_error(ans), "ak_pub: not a TPM2B_PUBLIC"));
	json_decref(ans);
	json_decref(sb);
	assert_int_equal(
	    attest_http(&F.srv, "POST", "/v1/enroll/finish", NULL, NULL,
	        "{\"session\":\"00000000000000000000000000000000\"}", &ans),
	    410);
	json_decref(ans);
	assert_int_equal(attest_http(&F.srv, "GET", "/v1/nodes", NULL, NULL,
	                     NULL, &ans),
	    403);
	json_decref(ans);
	assert_int_equal(attest_http(&F.srv, "GET", "/v1/nodes", "wrong-token",
	                     NULL, NULL, &ans),
	    403);
	json_decref(ans);
	assert_int_equal(attest_http(&F.srv, "DELETE", "/v1/enroll/start", NULL,
	                     NULL, NULL, &ans),
	    405);
	json_decref(ans);
	assert_true(attest_audit_has(&F.srv, "not canonical base64") >= 1);
	assert_true(attest_log_has(&F.srv, "not canonical base64") >= 1);
	/* Nothing was enrolled: the binding is unchanged. */
	node_serial("node-a", after);
	assert_string_equal(before, after);
}

static void
test_revoke_trust_remove(void **state)
{
	json_t *ans = NULL, *n;
	char ek[65];

	(void)state;
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/nodes/node-b/revoke",
	                     ATTEST_TEST_TOKEN, NULL, "{\"reason\":\"stolen\"}",
	                     &ans),
	    200);
	json_decref(ans);
	assert_non_null(n = listed("node-b", NULL));
	assert_string_equal(json_string_value(json_object_get(n, "state")),
	    "revoked");
	assert_string_equal(json_string_value(json_object_get(n, "reason")),
	    "stolen");
	json_decref(n);
	assert_int_equal(attest_enroll(&F.srv, &F.b, NULL, &ans), 403);
	assert_string_equal(first_error(ans), "node is revoked");
	json_decref(ans);
	assert_int_equal(attest_http(&F.srv, "POST", "/v1/nodes/node-b/trust",
	                     ATTEST_TEST_TOKEN, NULL, "{}", &ans),
	    200);
	json_decref(ans);
	assert_non_null(n = listed("node-b", NULL));
	assert_string_equal(json_string_value(json_object_get(n, "state")),
	    "untrusted");
	json_decref(n);
	assert_int_equal(attest_http(&F.srv, "DELETE", "/v1/nodes/node-b",
	                     ATTEST_TEST_TOKEN, NULL, NULL, &ans),
	    200);
	json_decref(ans);
	assert_null(listed("node-b", NULL));
	assert_int_equal(attest_ek_hash(&F.b, ek), 0);
	assert_int_equal(attest_http(&F.srv, "GET", "/v1/nodes/node-b",
	                     ATTEST_TEST_TOKEN, NULL, NULL, &ans),
	    404);
	json_decref(ans);
	assert_true(attest_audit_has(&F.srv, "\"node.revoke\"") >= 1);
	assert_true(attest_audit_has(&F.srv, "\"node.remove\"") >= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enroll_ok),
		cmocka_unit_test(test_replayed_finish),
		cmocka_unit_test(test_unregistered_ek_pending),
		cmocka_unit_test(test_unknown_ek_ca),
		cmocka_unit_test(test_ak_without_fixedtpm),
		cmocka_unit_test(test_certify_other_key),
		cmocka_unit_test(test_foreign_proof),
		cmocka_unit_test(test_stale_nonce),
		cmocka_unit_test(test_csr_other_location_ignored),
		cmocka_unit_test(test_wrong_pcrs),
		cmocka_unit_test(test_ak_in_second_tpm),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_revoke_trust_remove),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
