/*
 * test_mint.c - the minter without the daemon, on a real swtpm: the claims
 * text (every member, escaping of aud), the per-connection memo of the
 * workload's encoded claims (reused only for an identical workload), tokens
 * that verify, in both signing modes, and the soft signer's ready contexts
 * under more concurrent signers than it keeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "issuer/config.h"
#include "issuer/mint.h"
#include "issuer/tpm.h"
#include "issuer/workload.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/log.h"
#include "tsi/signer.h"

#include "../../support/pki.h"
#include "tests/support/swtpm.h"

#define DIGEST_A \
	"sha256:" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B \
	"sha256:" \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fx {
	struct test_swtpm swtpm;
	char state[256];
	struct tsi_tpm *tpm;
	struct tsi_issuer_config *cfg;
	EVP_PKEY *ca_key;
	X509 *ca, *node;
	struct tsi_trust *trust;
};

static int
setup_mode(void **state, const char *mode)
{
	static struct fx f;
	struct pki_spec sp;
	char conf[2048], err[256];
	BIO *b;
	char *pem;
	long n;

	memset(&f, 0, sizeof(f));
	tsi_log_init("test_mint", TSI_LOG_WARN);
	if (test_swtpm_start(&f.swtpm) != 0 ||
	    test_mkdtemp(f.state, sizeof(f.state), "mint-state") != 0)
		return -1;
	snprintf(conf, sizeof(conf),
	    "tcti = \"%s\";\nstate_dir = \"%s\";\n"
	    "node_cert = \"%s/node.pem\";\nsocket = \"%s/s.sock\";\n"
	    "signing = \"%s\";\nresolver = \"unix\";\n"
	    "trust_domain = \"mint.test\";\ntoken_ttl = 300;\n",
	    f.swtpm.tcti, f.state, f.state, f.state, mode);
	if (tsi_issuer_config_load_string("mint.conf", conf, &f.cfg, err,
	        sizeof(err)) != TSI_OK) {
		print_error("config: %s\n", err);
		return -1;
	}
	if (tsi_tpm_open(f.swtpm.tcti, f.state, &f.tpm) != TSI_OK)
		return -1;
	f.ca_key = pki_key();
	memset(&sp, 0, sizeof(sp));
	sp.cn = "mint test CA";
	sp.key = f.ca_key;
	sp.ca = 1;
	sp.pathlen = -1;
	sp.ku = "keyCertSign,cRLSign";
	sp.not_before = -60;
	sp.not_after = 86400;
	f.ca = pki_cert(&sp);
	memset(&sp, 0, sizeof(sp));
	sp.cn = "node-1";
	sp.issuer = f.ca;
	sp.issuer_key = f.ca_key;
	sp.key = tsi_tpm_pub(f.tpm);
	sp.ca = 1;
	sp.pathlen = 0;
	sp.ku = "digitalSignature,keyCertSign";
	sp.san = pki_loc_san();
	sp.not_before = -60;
	sp.not_after = 86400;
	f.node = pki_cert(&sp);
	if (f.ca == NULL || f.node == NULL)
		return -1;
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(b, f.ca) != 1 ||
	    (n = BIO_get_mem_data(b, &pem)) <= 0 ||
	    tsi_trust_new(&f.trust) != TSI_OK ||
	    tsi_trust_add_ca_pem(f.trust, pem, (size_t)n) != TSI_OK) {
		BIO_free(b);
		return -1;
	}
	BIO_free(b);
	*state = &f;
	return 0;
}

static int
setup_delegated(void **state)
{
	return setup_mode(state, "delegated");
}

static int
setup_tpm(void **state)
{
	return setup_mode(state, "tpm");
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tsi_trust_free(f->trust);
	X509_free(f->node);
	X509_free(f->ca);
	EVP_PKEY_free(f->ca_key);
	tsi_tpm_free(f->tpm);
	tsi_issuer_config_free(f->cfg);
	test_swtpm_cleanup(&f->swtpm);
	test_rmtree(f->state);
	return 0;
}

static struct tsi_workload *
unix_workload(uid_t uid, const char *exe, const char *digest)
{
	struct tsi_workload *w = tsi_workload_new(TSI_WORKLOAD_UNIX);

	assert_non_null(w);
	w->uid = uid;
	assert_non_null(w->exe = strdup(exe));
	assert_int_equal(tsi_workload_add_image(w, digest), TSI_OK);
	assert_int_equal(tsi_workload_add_image_name(w, exe), TSI_OK);
	return w;
}

static const char *
cstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v))
		fail_msg("claim %s missing or not a string", k);
	return json_string_value(v);
}

/* Mints with memo, verifies the token for aud and returns its claims. */
static json_t *
mint_verify(struct fx *f, struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, struct tsi_claims_memo *memo)
{
	struct tsi_verify_opts o = { aud, 0, -1 };
	struct tsi_verify_result res;
	json_t *claims = NULL;
	long long exp = 0;
	char *tok = NULL;

	assert_int_equal(tsi_minter_mint_memo(m, w, aud, memo, &tok, &exp),
	    TSI_OK);
	memset(&res, 0, sizeof(res));
	if (tsi_jwt_verify(f->trust, tok, &o, &claims, &res) != TSI_OK)
		fail_msg("tsi_jwt_verify: %s", res.detail);
	assert_int_equal(json_integer_value(json_object_get(claims, "exp")),
	    exp);
	tsi_strfree(tok);
	return claims;
}

static void
check_unix_claims(json_t *c, const char *aud, uid_t uid, const char *exe,
    const char *digest)
{
	char sub[128], uids[32];
	json_t *imgs;

	snprintf(sub, sizeof(sub), "spiffe://mint.test/uid/%lu",
	    (unsigned long)uid);
	snprintf(uids, sizeof(uids), "%lu", (unsigned long)uid);
	assert_string_equal(cstr(c, "iss"), "tsi-issuer");
	assert_string_equal(cstr(c, "sub"), sub);
	assert_string_equal(cstr(c, "aud"), aud);
	assert_string_equal(cstr(c, "uid"), uids);
	assert_string_equal(cstr(c, "exe"), exe);
	assert_string_equal(cstr(c, "cluster-name"), "hipaaCluster");
	assert_string_equal(cstr(c, "region"), "eu-de");
	assert_string_equal(cstr(c, "datacenter"), "dal05");
	assert_string_equal(cstr(c, "node"), "node-1");
	assert_int_equal(strlen(cstr(c, "jti")), 22);
	imgs = json_object_get(c, "images");
	assert_int_equal(json_array_size(imgs), 1);
	assert_string_equal(json_string_value(json_array_get(imgs, 0)), digest);
	imgs = json_object_get(c, "images-names");
	assert_int_equal(json_array_size(imgs), 1);
	assert_string_equal(json_string_value(json_array_get(imgs, 0)), exe);
	assert_true(json_integer_value(json_object_get(c, "exp")) -
	        json_integer_value(json_object_get(c, "iat")) ==
	    300);
	assert_int_equal(json_integer_value(json_object_get(c, "nbf")),
	    json_integer_value(json_object_get(c, "iat")));
	assert_null(json_object_get(c, "namespace"));
}

/* One memo across workloads: reused for the same one, never for another. */
static void
memo_round(struct fx *f)
{
	struct tsi_minter *m = NULL;
	struct tsi_claims_memo *memo = tsi_claims_memo_new();
	struct tsi_workload *a = unix_workload(1000, "/usr/bin/a", DIGEST_A);
	struct tsi_workload *b = unix_workload(1000, "/usr/bin/b", DIGEST_B);
	struct tsi_workload *c = unix_workload(1001, "/usr/bin/a", DIGEST_A);
	char jti[3][64];
	json_t *cl;
	int i;

	assert_non_null(memo);
	assert_int_equal(tsi_minter_new(f->cfg, f->tpm, f->node, &m), TSI_OK);
	assert_int_equal(tsi_minter_refresh(m), TSI_OK);
	for (i = 0; i < 3; i++) {
		cl = mint_verify(f, m, a, "tsi-vault", memo);
		check_unix_claims(cl, "tsi-vault", 1000, "/usr/bin/a",
		    DIGEST_A);
		snprintf(jti[i], sizeof(jti[i]), "%s", cstr(cl, "jti"));
		json_decref(cl);
	}
	assert_string_not_equal(jti[0], jti[1]);
	assert_string_not_equal(jti[1], jti[2]);
	/* Another executable, then another uid: the memo must not answer. */
	cl = mint_verify(f, m, b, "tsi-vault", memo);
	check_unix_claims(cl, "tsi-vault", 1000, "/usr/bin/b", DIGEST_B);
	json_decref(cl);
	cl = mint_verify(f, m, c, "tsi-vault", memo);
	check_unix_claims(cl, "tsi-vault", 1001, "/usr/bin/a", DIGEST_A);
	json_decref(cl);
	cl = mint_verify(f, m, a, "other", memo);
	check_unix_claims(cl, "other", 1000, "/usr/bin/a", DIGEST_A);
	json_decref(cl);
	/* Without a memo, and an aud that needs escaping in JSON. */
	cl = mint_verify(f, m, a, "a\"b\\c", NULL);
	check_unix_claims(cl, "a\"b\\c", 1000, "/usr/bin/a", DIGEST_A);
	json_decref(cl);
	tsi_workload_free(a);
	tsi_workload_free(b);
	tsi_workload_free(c);
	tsi_claims_memo_free(memo);
	tsi_minter_free(m);
}

static void
test_memo_delegated(void **state)
{
	memo_round(*state);
}

static void
test_memo_tpm(void **state)
{
	memo_round(*state);
}

/* tsi_minter_claims: the same text the tokens carry, parsed; k8s members. */
/* The jti of a token, from its claims (the token is verified first). */
static void
mint_jti(struct fx *f, struct tsi_minter *m, const struct tsi_workload *w,
    char out[64])
{
	json_t *cl = mint_verify(f, m, w, "tsi-vault", NULL);

	snprintf(out, 64, "%s", cstr(cl, "jti"));
	json_decref(cl);
}

/*
 * jtis are drawn in batches per thread (issuer/mint.c jti_random): every
 * token still gets its own, across several batches, and a forked child
 * does not repeat the jtis its parent has yet to use.
 */
static void
test_jti_unique(void **state)
{
	struct fx *f = *state;
	struct tsi_minter *m = NULL;
	struct tsi_workload *a = unix_workload(1000, "/usr/bin/a", DIGEST_A);
	static char jti[101][64];
	char child_jti[64] = "";
	int i, j, p[2], st;
	ssize_t n;
	pid_t pid;

	assert_int_equal(tsi_minter_new(f->cfg, f->tpm, f->node, &m), TSI_OK);
	assert_int_equal(tsi_minter_refresh(m), TSI_OK);
	for (i = 0; i < 100; i++) {
		mint_jti(f, m, a, jti[i]);
		assert_int_equal(strlen(jti[i]), 22);
	}
	for (i = 0; i < 100; i++)
		for (j = i + 1; j < 100; j++)
			if (strcmp(jti[i], jti[j]) == 0)
				fail_msg("tokens %d and %d share jti %s", i, j,
				    jti[i]);
	/* Mid-batch (100 is not a multiple of the batch): fork, the child
	 * mints one token, then the parent mints its next. */
	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		char *tok = NULL;
		long long exp;
		json_t *cl = NULL;
		struct tsi_verify_opts o = { "tsi-vault", 0, -1 };
		struct tsi_verify_result res;
		const char *v;

		close(p[0]);
		if (tsi_minter_mint_memo(m, a, "tsi-vault", NULL, &tok, &exp) !=
		        TSI_OK ||
		    tsi_jwt_verify(f->trust, tok, &o, &cl, &res) != TSI_OK ||
		    (v = json_string_value(json_object_get(cl, "jti"))) == NULL)
			_exit(1);
		if (write(p[1], v, strlen(v)) != (ssize_t)strlen(v))
			_exit(1);
		_exit(0);
	}
	assert_true(pid > 0);
	close(p[1]);
	n = read(p[0], child_jti, sizeof(child_jti) - 1);
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(n, 22);
	child_jti[n] = '\0';
	mint_jti(f, m, a, jti[100]);
	for (i = 0; i <= 100; i++)
		if (strcmp(child_jti, jti[i]) == 0)
			fail_msg("the child repeated jti %s (token %d)",
			    child_jti, i);
	tsi_minter_free(m);
	tsi_workload_free(a);
}

static void
test_claims_k8s(void **state)
{
	struct fx *f = *state;
	struct tsi_minter *m = NULL;
	struct tsi_workload *w = tsi_workload_new(TSI_WORKLOAD_K8S);
	json_t *c = NULL;

	assert_non_null(w);
	assert_non_null(w->namespace = strdup("ns1"));
	assert_non_null(w->pod = strdup("pod \"1\""));
	assert_non_null(w->service_account = strdup("sa\\1"));
	assert_int_equal(tsi_workload_add_image(w, DIGEST_B), TSI_OK);
	assert_int_equal(tsi_workload_add_image(w, DIGEST_A), TSI_OK);
	assert_int_equal(tsi_workload_add_image_name(w, "repo/app:1"), TSI_OK);
	assert_int_equal(tsi_minter_new(f->cfg, f->tpm, f->node, &m), TSI_OK);
	assert_int_equal(tsi_minter_claims(m, w, "aud1", 1000, 60, &c), TSI_OK);
	assert_string_equal(cstr(c, "sub"),
	    "spiffe://mint.test/ns/ns1/sa/sa\\1");
	assert_string_equal(cstr(c, "pod"), "pod \"1\"");
	assert_string_equal(cstr(c, "namespace"), "ns1");
	assert_string_equal(cstr(c, "service-account"), "sa\\1");
	assert_string_equal(json_string_value(
	                        json_array_get(json_object_get(c, "images"),
	                            0)),
	    DIGEST_A);
	assert_int_equal(json_array_size(json_object_get(c, "images")), 2);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1060);
	assert_null(json_object_get(c, "uid"));
	assert_null(json_object_get(c, "exe"));
	assert_int_equal(json_object_size(c), 16);
	json_decref(c);
	/* Bad arguments are refused, not encoded. */
	assert_int_equal(tsi_minter_claims(m, w, "a b", 1000, 60, &c),
	    TSI_ERR_INVALID_ARG);
	assert_int_equal(tsi_minter_claims(m, w, "aud1", 1000, 0, &c),
	    TSI_ERR_INVALID_ARG);
	tsi_workload_free(w);
	tsi_minter_free(m);
}

/* More threads than the soft signer keeps contexts: every signature good. */
struct signer_job {
	const struct tsi_signer *s;
	int bad;
};

static void *
sign_many(void *arg)
{
	struct signer_job *j = arg;
	unsigned char sig[64];
	char msg[64];
	int i, n;

	for (i = 0; i < 20; i++) {
		n = snprintf(msg, sizeof(msg), "message %p %d", (void *)j, i);
		if (tsi_signer_sign_msg(j->s, msg, (size_t)n, sig) != TSI_OK ||
		    pki_verify_raw(tsi_signer_pub(j->s), msg, (size_t)n, sig) !=
		        1)
			j->bad++;
	}
	return NULL;
}

static void
test_soft_signer_threads(void **state)
{
	struct signer_job jobs[24];
	pthread_t th[24];
	struct tsi_signer *s = NULL;
	EVP_PKEY *k = pki_key();
	unsigned char sig[64];
	int i;

	(void)state;
	assert_non_null(k);
	assert_int_equal(tsi_signer_new_soft(k, &s), TSI_OK);
	for (i = 0; i < 24; i++) {
		jobs[i].s = s;
		jobs[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, sign_many,
		                     &jobs[i]),
		    0);
	}
	for (i = 0; i < 24; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].bad, 0);
	}
	/* A signature over other bytes does not verify (the check can fail). */
	assert_int_equal(tsi_signer_sign_msg(s, "x", 1, sig), TSI_OK);
	assert_int_not_equal(pki_verify_raw(k, "y", 1, sig), 1);
	tsi_signer_free(s);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memo_delegated,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_memo_tpm, setup_tpm,
		    teardown),
		cmocka_unit_test_setup_teardown(test_claims_k8s,
		    setup_delegated, teardown),
		cmocka_unit_test_setup_teardown(test_jti_unique,
		    setup_delegated, teardown),
		cmocka_unit_test(test_soft_signer_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
