/* The cluster CA, node certificate signing and location SANs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tsi/err.h"
#include "tsi/signer.h"
#include "tsi/x509.h"
#include "tests/support/pki.h"

struct fx {
	char dir[64];
	char cert[128], key[128];
	EVP_PKEY *node_key;
	struct tsi_signer *node;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/tsi-ca-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->cert, sizeof(f->cert), "%s/ca/ca.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/ca/ca.key", f->dir);
	f->node_key = pki_key();
	assert_int_equal(tsi_signer_new_soft(f->node_key, &f->node), TSI_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	unlink(f->cert);
	unlink(f->key);
	snprintf(p, sizeof(p), "%s/ca", f->dir);
	rmdir(p);
	rmdir(f->dir);
	tsi_signer_free(f->node);
	EVP_PKEY_free(f->node_key);
	free(f);
	return 0;
}

static char *
ca_dir(struct fx *f)
{
	static char p[160];

	snprintf(p, sizeof(p), "%s/ca", f->dir);
	return p;
}

static struct tsi_location
loc(const char *c, const char *r, const char *d, const char *n)
{
	struct tsi_location l = { (char *)c, (char *)r, (char *)d, (char *)n };
	return l;
}

static X509 *
pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	return x;
}

static void
test_ca_init_files_and_profile(void **state)
{
	struct fx *f = *state;
	struct stat st;
	X509 *ca = NULL;
	char cn[64];

	assert_int_equal(tsi_ca_init(ca_dir(f), "test cluster CA", 30), TSI_OK);
	assert_int_equal(stat(f->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(f->cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(tsi_x509_load_file(f->cert, &ca), TSI_OK);
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_get_key_usage(ca),
	    KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(X509_verify(ca, X509_get0_pubkey(ca)), 1);
	X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
	    sizeof(cn));
	assert_string_equal(cn, "test cluster CA");
	assert_string_equal(EVP_PKEY_get0_type_name(X509_get0_pubkey(ca)),
	    "EC");
	X509_free(ca);
}

static void
test_ca_init_refuses_overwrite(void **state)
{
	struct fx *f = *state;
	unsigned char before[4096], after[4096];
	FILE *fp;
	size_t n1, n2;

	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	fp = fopen(f->key, "r");
	n1 = fread(before, 1, sizeof(before), fp);
	fclose(fp);
	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_ERR_EXISTS);
	fp = fopen(f->key, "r");
	n2 = fread(after, 1, sizeof(after), fp);
	fclose(fp);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	/* Only the key left behind still counts as a CA. */
	unlink(f->cert);
	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_ERR_EXISTS);
	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 0), TSI_ERR_INVALID_ARG);
}

static void
test_sign_csr_node_profile(void **state)
{
	struct fx *f = *state;
	struct tsi_location l = loc("hipaaCluster", "eu-de", "dal05", "node-1");
	struct tsi_location got = { 0 };
	char *csr = NULL, *pem = NULL, cn[64];
	X509 *ca = NULL, *node;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	assert_int_equal(tsi_x509_make_csr(f->node, "ignored", &csr), TSI_OK);
	assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, csr, strlen(csr), &l,
	                     365, &pem),
	    TSI_OK);
	node = pem_cert(pem);
	assert_non_null(node);
	assert_true(tsi_x509_key_matches(node, f->node_key));
	/* CA:TRUE pathlen:0, digitalSignature + keyCertSign. */
	assert_int_equal(X509_check_ca(node), 1);
	assert_int_equal(X509_get_pathlen(node), 0);
	assert_int_equal(X509_get_key_usage(node),
	    KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN);
	X509_NAME_get_text_by_NID(X509_get_subject_name(node), NID_commonName,
	    cn, sizeof(cn));
	assert_string_equal(cn, "node-1");
	/* The SANs carry the location. */
	assert_int_equal(tsi_x509_location(node, &got), TSI_OK);
	assert_string_equal(got.cluster_name, "hipaaCluster");
	assert_string_equal(got.region, "eu-de");
	assert_string_equal(got.datacenter, "dal05");
	assert_string_equal(got.node, "node-1");
	tsi_location_clear(&got);
	/* Chains to the CA; validity clamped to the CA's 30 days. */
	assert_int_equal(tsi_x509_load_file(f->cert, &ca), TSI_OK);
	X509_STORE_add_cert(st, ca);
	X509_STORE_CTX_init(ctx, st, node, NULL);
	assert_int_equal(X509_verify_cert(ctx), 1);
	assert_true(ASN1_TIME_compare(X509_get0_notAfter(node),
	                X509_get0_notAfter(ca)) <= 0);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(ca);
	X509_free(node);
	free(pem);
	pem = NULL;

	/* Without a node name: CN is the datacenter, no tsi:node SAN. */
	l.node = NULL;
	assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, csr, strlen(csr), &l,
	                     10, &pem),
	    TSI_OK);
	node = pem_cert(pem);
	assert_int_equal(tsi_x509_location(node, &got), TSI_OK);
	assert_null(got.node);
	tsi_location_clear(&got);
	X509_NAME_get_text_by_NID(X509_get_subject_name(node), NID_commonName,
	    cn, sizeof(cn));
	assert_string_equal(cn, "dal05");
	X509_free(node);
	free(pem);
	free(csr);
}

static void
test_sign_csr_refuses_bad_self_signature(void **state)
{
	struct fx *f = *state;
	struct tsi_location l = loc("c", "r", "d", NULL);
	EVP_PKEY *other = pki_key();
	X509_REQ *req = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *bm;
	char *pem = NULL, *csr;

	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	/* Signed by one key, naming another. */
	X509_REQ_set_pubkey(req, f->node_key);
	assert_true(X509_REQ_sign(req, other, EVP_sha256()) > 0);
	PEM_write_bio_X509_REQ(b, req);
	BIO_get_mem_ptr(b, &bm);
	csr = strndup(bm->data, bm->length);
	assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, csr, strlen(csr), &l,
	                     10, &pem),
	    TSI_ERR_BAD_CERT);
	assert_null(pem);
	free(csr);
	/* Not a CSR at all. */
	assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, "hello", 5, &l, 10,
	                     &pem),
	    TSI_ERR_PARSE);
	assert_null(pem);
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(other);
}

static void
test_sign_csr_refuses_p384(void **state)
{
	struct fx *f = *state;
	struct tsi_location l = loc("c", "r", "d", NULL);
	EVP_PKEY *k = pki_key_curve("P-384");
	X509_REQ *req = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	BUF_MEM *bm;
	char *pem = NULL;

	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	X509_REQ_set_pubkey(req, k);
	X509_REQ_sign(req, k, EVP_sha256());
	PEM_write_bio_X509_REQ(b, req);
	BIO_get_mem_ptr(b, &bm);
	assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, bm->data, bm->length,
	                     &l, 10, &pem),
	    TSI_ERR_BAD_CERT);
	assert_null(pem);
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void
test_location_values_validated(void **state)
{
	struct fx *f = *state;
	char *csr = NULL, *pem = NULL, big[200];
	const char *bad[] = { "", "a:b", "a/b", "..", ".hidden", "a b", "a\nb",
		"a*", "caf\xc3\xa9", big };
	size_t i;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	assert_int_equal(tsi_x509_make_csr(f->node, "n", &csr), TSI_OK);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tsi_location l = loc("c", bad[i], "d", NULL);
		assert_false(tsi_location_value_ok(bad[i]));
		assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, csr,
		                     strlen(csr), &l, 10, &pem),
		    TSI_ERR_INVALID_ARG);
		assert_null(pem);
		l = loc("c", "r", "d", bad[i]);
		assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, csr,
		                     strlen(csr), &l, 10, &pem),
		    TSI_ERR_INVALID_ARG);
	}
	{
		struct tsi_location l = loc(NULL, "r", "d", NULL);
		assert_int_equal(tsi_ca_sign_csr(f->cert, f->key, csr,
		                     strlen(csr), &l, 10, &pem),
		    TSI_ERR_INVALID_ARG);
	}
	assert_true(tsi_location_value_ok("us-south_1.a"));
	free(csr);
}

static void
test_location_parsing_refuses_duplicates_and_gaps(void **state)
{
	EVP_PKEY *k = pki_key();
	struct tsi_location got = { 0 };
	const char *cases[] = {
		/* duplicate region */
		"URI:tsi:cluster-name:c,URI:tsi:region:r,URI:tsi:region:r,URI:"
		"tsi:datacenter:d",
		/* duplicate node */
		"URI:tsi:cluster-name:c,URI:tsi:region:r,URI:tsi:datacenter:d,"
		"URI:tsi:node:a,URI:tsi:node:b",
		/* missing datacenter */
		"URI:tsi:cluster-name:c,URI:tsi:region:r",
		/* bad value */
		"URI:tsi:cluster-name:c,URI:tsi:region:r/"
		"x,URI:tsi:datacenter:d",
		/* no value separator */
		"URI:tsi:cluster-name:c,URI:tsi:region,URI:tsi:datacenter:d",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pki_spec sp = { .cn = "n",
			.key = k,
			.ca = 1,
			.pathlen = 0,
			.san = cases[i],
			.not_after = 600 };
		X509 *x = pki_cert(&sp);
		assert_non_null(x);
		assert_int_equal(tsi_x509_location(x, &got), TSI_ERR_BAD_CERT);
		assert_null(got.region);
		X509_free(x);
	}
	{
		struct pki_spec sp = { .cn = "n",
			.key = k,
			.ca = 1,
			.pathlen = 0,
			.san = "DNS:example.com,URI:https://x",
			.not_after = 600 };
		X509 *x = pki_cert(&sp);
		assert_int_equal(tsi_x509_location(x, &got), TSI_ERR_NOT_FOUND);
		X509_free(x);
		sp.san = NULL;
		x = pki_cert(&sp);
		assert_int_equal(tsi_x509_location(x, &got), TSI_ERR_NOT_FOUND);
		X509_free(x);
	}
	EVP_PKEY_free(k);
}

static void
test_sign_csr_refuses_mismatched_ca_key(void **state)
{
	struct fx *f = *state;
	struct tsi_location l = loc("c", "r", "d", NULL);
	EVP_PKEY *k = pki_key();
	char *csr = NULL, *pem = NULL, other[160];

	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	snprintf(other, sizeof(other), "%s/other.key", f->dir);
	assert_int_equal(pki_write_key(other, k), 0);
	assert_int_equal(tsi_x509_make_csr(f->node, "n", &csr), TSI_OK);
	assert_int_equal(tsi_ca_sign_csr(f->cert, other, csr, strlen(csr), &l,
	                     10, &pem),
	    TSI_ERR_INVALID_ARG);
	assert_null(pem);
	unlink(other);
	free(csr);
	EVP_PKEY_free(k);
}

static void
test_pem_and_fingerprint_helpers(void **state)
{
	struct fx *f = *state;
	STACK_OF(X509) *sk = NULL;
	X509 *ca = NULL;
	char fp[65], *pem = NULL, two[8192];
	unsigned char md[32];
	unsigned int n;
	int i;

	assert_int_equal(tsi_ca_init(ca_dir(f), NULL, 30), TSI_OK);
	assert_int_equal(tsi_x509_load_file(f->cert, &ca), TSI_OK);
	assert_int_equal(tsi_x509_fingerprint(ca, fp), TSI_OK);
	X509_digest(ca, EVP_sha256(), md, &n);
	for (i = 0; i < 32; i++) {
		char h[3];
		snprintf(h, sizeof(h), "%02x", md[i]);
		assert_memory_equal(fp + 2 * i, h, 2);
	}
	assert_int_equal(strlen(fp), 64);
	assert_int_equal(tsi_x509_to_pem(ca, &pem), TSI_OK);
	snprintf(two, sizeof(two), "%s%s", pem, pem);
	assert_int_equal(tsi_x509_load_chain_pem(two, strlen(two), &sk),
	    TSI_OK);
	assert_int_equal(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	assert_int_equal(tsi_x509_load_chain_pem("junk", 4, &sk),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_x509_load_file("/nonexistent/x.pem", &ca),
	    TSI_ERR_IO);
	assert_false(tsi_x509_key_matches(ca, f->node_key));
	free(pem);
	X509_free(ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ca_init_files_and_profile,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_init_refuses_overwrite,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_csr_node_profile,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sign_csr_refuses_bad_self_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_csr_refuses_p384,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_location_values_validated,
		    setup, teardown),
		cmocka_unit_test(
		    test_location_parsing_refuses_duplicates_and_gaps),
		cmocka_unit_test_setup_teardown(
		    test_sign_csr_refuses_mismatched_ca_key, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pem_and_fingerprint_helpers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
