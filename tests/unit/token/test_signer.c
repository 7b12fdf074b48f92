/* Signers, the EVP_PKEY bridge, CSRs, session certificates and minting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/signer.h"
#include "tsi/x509.h"
#include "tests/support/pki.h"

/* A stand-in for the TPM: signs through a software signer, counts calls and
 * can be made to fail as an unreachable device would. */
struct fake_tpm {
	struct tsi_signer *inner;
	int calls;
	int fail;
};

static int
fake_tpm_sign(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
	struct fake_tpm *t = ctx;

	t->calls++;
	if (t->fail)
		return TSI_ERR_TPM_UNAVAILABLE;
	return tsi_signer_sign(t->inner, digest, sig);
}

static void
test_soft_signer_signs_raw_rs(void **state)
{
	EVP_PKEY *k = pki_key();
	struct tsi_signer *s = NULL;
	uint8_t sig[64];
	char msg[32];
	int i;

	(void)state;
	assert_int_equal(tsi_signer_new_soft(k, &s), TSI_OK);
	/* Many signatures: some r or s have leading zero bytes and must still
	 * come out padded to 32 bytes and verify. */
	for (i = 0; i < 300; i++) {
		snprintf(msg, sizeof(msg), "message %d", i);
		assert_int_equal(tsi_signer_sign_msg(s, msg, strlen(msg), sig),
		    TSI_OK);
		assert_true(pki_verify_raw(k, msg, strlen(msg), sig));
	}
	/* A signature over another message does not verify. */
	assert_false(pki_verify_raw(k, "other", 5, sig));
	assert_ptr_equal(tsi_signer_pub(s), k);
	tsi_signer_free(s);
	EVP_PKEY_free(k);
}

static void
test_signer_refuses_other_curves(void **state)
{
	EVP_PKEY *k = pki_key_curve("P-384");
	struct tsi_signer *s = NULL;
	char kid[44];

	(void)state;
	assert_int_equal(tsi_signer_new_soft(k, &s), TSI_ERR_INVALID_ARG);
	assert_null(s);
	assert_int_equal(tsi_key_thumbprint(k, kid), TSI_ERR_INVALID_ARG);
	EVP_PKEY_free(k);
}

static void
test_kid_is_rfc7638_thumbprint(void **state)
{
	EVP_PKEY *k = pki_key();
	struct tsi_signer *s = NULL;
	BIGNUM *x = NULL, *y = NULL;
	unsigned char xb[32], yb[32], h[32];
	char *xs, *ys, *want, jwk[200], kid[44], kid2[44];

	(void)state;
	assert_int_equal(tsi_signer_new_soft(k, &s), TSI_OK);
	assert_int_equal(tsi_signer_kid(s, kid), TSI_OK);
	assert_int_equal(strlen(kid), 43);
	assert_int_equal(tsi_key_thumbprint(k, kid2), TSI_OK);
	assert_string_equal(kid, kid2);
	/* Independently: coordinates from the key's parameters. */
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x),
	    1);
	assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y),
	    1);
	BN_bn2binpad(x, xb, 32);
	BN_bn2binpad(y, yb, 32);
	assert_int_equal(tsi_b64url_encode(xb, 32, &xs), TSI_OK);
	assert_int_equal(tsi_b64url_encode(yb, 32, &ys), TSI_OK);
	snprintf(jwk, sizeof(jwk),
	    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", xs,
	    ys);
	EVP_Digest(jwk, strlen(jwk), h, NULL, EVP_sha256(), NULL);
	assert_int_equal(tsi_b64url_encode(h, 32, &want), TSI_OK);
	assert_string_equal(kid, want);
	free(xs);
	free(ys);
	free(want);
	BN_free(x);
	BN_free(y);
	tsi_signer_free(s);
	EVP_PKEY_free(k);
}

static void
test_bridge_signs_certificate_through_callback(void **state)
{
	EVP_PKEY *k = pki_key(), *bridge = NULL;
	struct fake_tpm tpm = { 0 };
	struct tsi_signer *s = NULL;
	struct pki_spec sp = { .cn = "x",
		.ca = 0,
		.pathlen = -1,
		.not_after = 3600 };
	X509 *c;

	(void)state;
	assert_int_equal(tsi_signer_new_soft(k, &tpm.inner), TSI_OK);
	assert_int_equal(tsi_signer_new(fake_tpm_sign, &tpm, k, &s), TSI_OK);
	assert_int_equal(tsi_signer_evp_pkey(s, &bridge), TSI_OK);
	sp.key = k;
	c = pki_cert(&sp);
	assert_non_null(c);
	/* Re-sign with the bridge: the private operation is the callback. */
	assert_true(X509_sign(c, bridge, EVP_sha256()) > 0);
	assert_int_equal(tpm.calls, 1);
	assert_int_equal(X509_verify(c, k), 1);
	/* A failing device makes signing fail, not produce a bad signature. */
	tpm.fail = 1;
	assert_true(X509_sign(c, bridge, EVP_sha256()) <= 0);
	assert_int_equal(tpm.calls, 2);
	ERR_clear_error();
	X509_free(c);
	EVP_PKEY_free(bridge);
	tsi_signer_free(s);
	tsi_signer_free(tpm.inner);
	EVP_PKEY_free(k);
}

static void
test_make_csr_with_callback_signer(void **state)
{
	EVP_PKEY *k = pki_key(), *pub = NULL;
	struct fake_tpm tpm = { 0 };
	struct tsi_signer *s = NULL;
	X509_REQ *req;
	BIO *bio;
	char *pem = NULL, cn[64];

	(void)state;
	assert_int_equal(tsi_signer_new_soft(k, &tpm.inner), TSI_OK);
	/* The callback signer only gets the public key, as with a TPM. */
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, k);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(pub);
	assert_int_equal(tsi_signer_new(fake_tpm_sign, &tpm, pub, &s), TSI_OK);
	assert_int_equal(tsi_x509_make_csr(s, "node-1", &pem), TSI_OK);
	assert_int_equal(tpm.calls, 1);
	bio = BIO_new_mem_buf(pem, -1);
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, pub), 1);
	assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req),
	                NID_commonName, cn, sizeof(cn)) > 0);
	assert_string_equal(cn, "node-1");
	X509_REQ_free(req);
	free(pem);
	pem = NULL;
	tpm.fail = 1;
	assert_int_not_equal(tsi_x509_make_csr(s, "node-1", &pem), TSI_OK);
	assert_null(pem);
	tsi_signer_free(s);
	tsi_signer_free(tpm.inner);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
}

struct pki {
	EVP_PKEY *ca_key, *node_key, *sess_key;
	X509 *ca, *node;
	struct fake_tpm tpm;
	struct tsi_signer *node_signer;
};

static void
pki_setup(struct pki *p, long node_not_after)
{
	struct pki_spec ca = { .cn = "tsi test CA",
		.ca = 1,
		.pathlen = -1,
		.ku = "critical,keyCertSign,cRLSign",
		.not_before = -3600,
		.not_after = 86400 };
	struct pki_spec node = { .cn = "node-1",
		.ca = 1,
		.pathlen = 0,
		.ku = "critical,digitalSignature,keyCertSign",
		.not_before = -3600 };

	memset(p, 0, sizeof(*p));
	p->ca_key = pki_key();
	p->node_key = pki_key();
	p->sess_key = pki_key();
	ca.key = p->ca_key;
	p->ca = pki_cert(&ca);
	node.key = p->node_key;
	node.issuer = p->ca;
	node.issuer_key = p->ca_key;
	node.san = pki_loc_san();
	node.not_after = node_not_after;
	p->node = pki_cert(&node);
	assert_non_null(p->ca);
	assert_non_null(p->node);
	assert_int_equal(tsi_signer_new_soft(p->node_key, &p->tpm.inner),
	    TSI_OK);
	assert_int_equal(tsi_signer_new(fake_tpm_sign, &p->tpm, p->node_key,
	                     &p->node_signer),
	    TSI_OK);
}

static void
pki_teardown(struct pki *p)
{
	tsi_signer_free(p->node_signer);
	tsi_signer_free(p->tpm.inner);
	X509_free(p->ca);
	X509_free(p->node);
	EVP_PKEY_free(p->ca_key);
	EVP_PKEY_free(p->node_key);
	EVP_PKEY_free(p->sess_key);
}

static void
test_session_cert_profile(void **state)
{
	struct pki p;
	X509 *sc = NULL;
	char kid[44], cn[64];
	time_t now = time(NULL);

	(void)state;
	pki_setup(&p, 86400);
	assert_int_equal(tsi_x509_issue_session_cert(p.node_signer, p.node,
	                     p.sess_key, 600, &sc),
	    TSI_OK);
	assert_int_equal(p.tpm.calls, 1);
	assert_int_equal(X509_verify(sc, p.node_key), 1);
	assert_int_equal(X509_check_ca(sc), 0);
	assert_true(X509_get_extension_flags(sc) & EXFLAG_BCONS);
	assert_int_equal(X509_get_key_usage(sc), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(sc),
	                     X509_get_subject_name(p.node)),
	    0);
	assert_true(tsi_x509_key_matches(sc, p.sess_key));
	assert_false(tsi_x509_key_matches(sc, p.node_key));
	/* CN is the session key's kid. */
	assert_int_equal(tsi_key_thumbprint(p.sess_key, kid), TSI_OK);
	X509_NAME_get_text_by_NID(X509_get_subject_name(sc), NID_commonName, cn,
	    sizeof(cn));
	assert_string_equal(cn, kid);
	/* Valid now, not after ttl (+1 s for the clock tick). */
	assert_true(X509_cmp_time(X509_get0_notBefore(sc), &now) < 0);
	now += 602;
	assert_true(X509_cmp_time(X509_get0_notAfter(sc), &now) < 0);
	X509_free(sc);
	pki_teardown(&p);
}

static void
test_session_cert_never_outlives_node(void **state)
{
	struct pki p;
	X509 *sc = NULL;
	struct tsi_signer *other = NULL;

	(void)state;
	pki_setup(&p, 120);
	assert_int_equal(tsi_x509_issue_session_cert(p.node_signer, p.node,
	                     p.sess_key, 3600, &sc),
	    TSI_OK);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(sc),
	                     X509_get0_notAfter(p.node)),
	    0);
	X509_free(sc);
	sc = NULL;
	/* A signer whose key is not the node certificate's is refused. */
	assert_int_equal(tsi_signer_new_soft(p.sess_key, &other), TSI_OK);
	assert_int_equal(tsi_x509_issue_session_cert(other, p.node, p.sess_key,
	                     300, &sc),
	    TSI_ERR_INVALID_ARG);
	assert_null(sc);
	tsi_signer_free(other);
	pki_teardown(&p);

	/* An expired node certificate issues nothing. */
	pki_setup(&p, -10);
	assert_int_equal(tsi_x509_issue_session_cert(p.node_signer, p.node,
	                     p.sess_key, 300, &sc),
	    TSI_ERR_EXPIRED);
	assert_null(sc);
	pki_teardown(&p);
}

static void
test_mint_builds_es256_jws(void **state)
{
	struct pki p;
	X509 *sc = NULL;
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct tsi_signer *sess = NULL;
	json_t *claims, *hdr, *x5c;
	char *tok = NULL, *dot1, *dot2, kid[44];
	unsigned char *raw = NULL, *der = NULL;
	size_t rawlen;
	int dlen;

	(void)state;
	pki_setup(&p, 86400);
	assert_int_equal(tsi_x509_issue_session_cert(p.node_signer, p.node,
	                     p.sess_key, 600, &sc),
	    TSI_OK);
	sk_X509_push(chain, sc);
	sk_X509_push(chain, p.node);
	assert_int_equal(tsi_signer_new_soft(p.sess_key, &sess), TSI_OK);
	claims = json_pack("{s:s, s:s, s:I}", "sub", "spiffe://tsi.example/x",
	    "aud", "tsi-vault", "exp", (json_int_t)time(NULL) + 300);
	assert_int_equal(tsi_jwt_mint(sess, chain, claims, &tok), TSI_OK);
	dot1 = strchr(tok, '.');
	assert_non_null(dot1);
	dot2 = strchr(dot1 + 1, '.');
	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));

	assert_int_equal(tsi_b64url_decode(tok, (size_t)(dot1 - tok), &raw,
	                     &rawlen),
	    TSI_OK);
	hdr =
	    json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	tsi_freezero(raw, rawlen);
	assert_non_null(hdr);
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")),
	    "ES256");
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")),
	    "JWT");
	assert_int_equal(tsi_key_thumbprint(p.sess_key, kid), TSI_OK);
	assert_string_equal(json_string_value(json_object_get(hdr, "kid")),
	    kid);
	x5c = json_object_get(hdr, "x5c");
	assert_int_equal(json_array_size(x5c), 2);
	/* x5c[0] is the session certificate, in standard base64 DER. */
	assert_int_equal(tsi_b64_decode(json_string_value(
	                                    json_array_get(x5c, 0)),
	                     strlen(json_string_value(json_array_get(x5c, 0))),
	                     &raw, &rawlen),
	    TSI_OK);
	dlen = i2d_X509(sc, &der);
	assert_int_equal((size_t)dlen, rawlen);
	assert_memory_equal(der, raw, rawlen);
	OPENSSL_free(der);
	tsi_freezero(raw, rawlen);
	json_decref(hdr);

	/* The signature is 64 raw bytes over "header.claims" by the leaf key. */
	assert_int_equal(tsi_b64url_decode(dot2 + 1, strlen(dot2 + 1), &raw,
	                     &rawlen),
	    TSI_OK);
	assert_int_equal(rawlen, 64);
	assert_true(pki_verify_raw(p.sess_key, tok, (size_t)(dot2 - tok), raw));
	assert_false(
	    pki_verify_raw(p.node_key, tok, (size_t)(dot2 - tok), raw));
	tsi_freezero(raw, rawlen);

	json_decref(claims);
	tsi_strfree(tok);
	tsi_signer_free(sess);
	sk_X509_free(chain);
	X509_free(sc);
	pki_teardown(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soft_signer_signs_raw_rs),
		cmocka_unit_test(test_signer_refuses_other_curves),
		cmocka_unit_test(test_kid_is_rfc7638_thumbprint),
		cmocka_unit_test(
		    test_bridge_signs_certificate_through_callback),
		cmocka_unit_test(test_make_csr_with_callback_signer),
		cmocka_unit_test(test_session_cert_profile),
		cmocka_unit_test(test_session_cert_never_outlives_node),
		cmocka_unit_test(test_mint_builds_es256_jws),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
