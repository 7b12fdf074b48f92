/*
 * One minting code (lib/jwt_mint.c): the claims tsi-issuer mints go
 * through the library, in two steps (tsi_jwt_header_new once per key,
 * tsi_jwt_sign_claims per token) and in one (tsi_jwt_mint). Both are
 * compared with what issuer/mint.c did before it used the library (its
 * make_header, sign_jws and x5c_array, kept below as the reference): the
 * decoded headers and claims are byte for byte the same and every
 * signature verifies with the signing key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tests/support/pki.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/signer.h"

/* ---- what issuer/mint.c did before (the reference) ---- */

static int x5c_array(STACK_OF(X509) *chain, json_t **out);

/*
 * The JWS header of a key never changes: {"alg":"ES256","typ":"JWT",
 * "kid":<RFC 7638 thumbprint>,"x5c":[<base64 DER>...]} is built once per
 * key, so each token costs one claims encoding and one signature.
 */
static int
make_header(EVP_PKEY *pub, STACK_OF(X509) *chain, char **h64, EVP_MD_CTX **hctx)
{
	json_t *hdr = NULL, *x5c = NULL;
	EVP_MD_CTX *h = NULL;
	char kid[44], *text = NULL;
	int r;

	if ((r = tsi_key_thumbprint(pub, kid)) != TSI_OK)
		return r;
	if ((r = x5c_array(chain, &x5c)) != TSI_OK)
		goto out;
	if ((hdr = json_pack("{s:s, s:s, s:s, s:O}", "alg", "ES256", "typ",
	         "JWT", "kid", kid, "x5c", x5c)) == NULL ||
	    (text = json_dumps(hdr, JSON_COMPACT)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if ((r = tsi_b64url_encode(text, strlen(text), h64)) != TSI_OK)
		goto out;
	/* Every signing input starts with the header and a dot: hash them
	 * once; each token then hashes only its claims. */
	if ((h = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(h, *h64, strlen(*h64)) != 1 ||
	    EVP_DigestUpdate(h, ".", 1) != 1) {
		free(*h64);
		*h64 = NULL;
		r = TSI_ERR_CRYPTO;
		goto out;
	}
	*hctx = h;
	h = NULL;
out:
	EVP_MD_CTX_free(h);
	free(text);
	json_decref(hdr);
	json_decref(x5c);
	return r;
}

/* header.claims.signature, the signature over the first two parts; hctx
 * has absorbed the header and the dot. */
static int
sign_jws(const struct tsi_signer *signer, const char *h64,
    const EVP_MD_CTX *hctx, const char *claims, char **token)
{
	char *c64 = NULL, *s64 = NULL, *tok = NULL;
	size_t hl = strlen(h64), cl, sl, n = 0;
	EVP_MD_CTX *h = NULL;
	uint8_t sig[64], digest[32];
	unsigned int dl = 0;
	int r;

	if ((r = tsi_b64url_encode(claims, strlen(claims), &c64)) != TSI_OK)
		return r;
	cl = strlen(c64);
	/* header '.' claims '.' 86 bytes of signature */
	n = hl + 1 + cl + 1 + 86 + 1;
	if (n > TSI_JWT_MAX_BYTES) {
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	if ((tok = malloc(n)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	memcpy(tok, h64, hl);
	tok[hl] = '.';
	memcpy(tok + hl + 1, c64, cl);
	r = TSI_ERR_CRYPTO;
	if ((h = EVP_MD_CTX_new()) == NULL ||
	    EVP_MD_CTX_copy_ex(h, hctx) != 1 ||
	    EVP_DigestUpdate(h, c64, cl) != 1 ||
	    EVP_DigestFinal_ex(h, digest, &dl) != 1 || dl != sizeof(digest))
		goto out;
	if ((r = tsi_signer_sign(signer, digest, sig)) != TSI_OK ||
	    (r = tsi_b64url_encode(sig, sizeof(sig), &s64)) != TSI_OK)
		goto out;
	sl = strlen(s64);
	if (sl != 86) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	tok[hl + 1 + cl] = '.';
	memcpy(tok + hl + 1 + cl + 1, s64, sl + 1);
	*token = tok;
	tok = NULL;
	r = TSI_OK;
out:
	EVP_MD_CTX_free(h);
	tsi_strfree(c64);
	free(s64);
	if (tok != NULL)
		tsi_freezero(tok, n);
	return r;
}

static int
b64_der(X509 *cert, json_t *arr)
{
	unsigned char *der = NULL, *b64 = NULL;
	int len, r = TSI_ERR_ALLOC;

	if ((len = i2d_X509(cert, &der)) <= 0)
		return TSI_ERR_CRYPTO;
	if ((b64 = malloc(((size_t)len + 2) / 3 * 4 + 1)) == NULL)
		goto out;
	EVP_EncodeBlock(b64, der, len);
	if (json_array_append_new(arr, json_string((char *)b64)) != 0)
		goto out;
	r = TSI_OK;
out:
	free(b64);
	OPENSSL_free(der);
	return r;
}

/* The "x5c" member: chain's certificates as standard base64 DER, leaf
 * first. *out: json_decref. */
static int
x5c_array(STACK_OF(X509) *chain, json_t **out)
{
	json_t *arr;
	int i, r;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < sk_X509_num(chain); i++)
		if ((r = b64_der(sk_X509_value(chain, i), arr)) != TSI_OK) {
			json_decref(arr);
			return r;
		}
	*out = arr;
	return TSI_OK;
}

/* ---- the comparison ---- */

struct part {
	unsigned char *v;
	size_t n;
};

/* Splits a compact JWS into its decoded parts (caller frees .v). */
static void
split(const char *tok, struct part p[3], size_t *signed_len)
{
	const char *d1 = strchr(tok, '.'), *d2;

	assert_non_null(d1);
	assert_non_null(d2 = strchr(d1 + 1, '.'));
	assert_null(strchr(d2 + 1, '.'));
	*signed_len = (size_t)(d2 - tok);
	assert_int_equal(tsi_b64url_decode(tok, (size_t)(d1 - tok), &p[0].v,
	                     &p[0].n),
	    TSI_OK);
	assert_int_equal(tsi_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1),
	                     &p[1].v, &p[1].n),
	    TSI_OK);
	assert_int_equal(tsi_b64url_decode(d2 + 1, strlen(d2 + 1), &p[2].v,
	                     &p[2].n),
	    TSI_OK);
	assert_int_equal(p[2].n, 64);
}

/*
 * Same header bytes; same claims (bytes when exact, else the same JSON:
 * tsi_jwt_mint serialises a claims object itself); each signature verifies
 * with pub.
 */
static void
same_token(EVP_PKEY *pub, const char *a, const char *b, int exact)
{
	struct part pa[3], pb[3];
	json_t *ca, *cb;
	size_t la, lb, i;

	split(a, pa, &la);
	split(b, pb, &lb);
	assert_int_equal(pa[0].n, pb[0].n);
	assert_memory_equal(pa[0].v, pb[0].v, pa[0].n);
	assert_non_null(ca = json_loadb((char *)pa[1].v, pa[1].n, 0, NULL));
	assert_non_null(cb = json_loadb((char *)pb[1].v, pb[1].n, 0, NULL));
	assert_true(json_equal(ca, cb));
	json_decref(ca);
	json_decref(cb);
	if (exact) {
		assert_int_equal(pa[1].n, pb[1].n);
		assert_memory_equal(pa[1].v, pb[1].v, pa[1].n);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la); /* the signed input itself */
	}
	assert_int_equal(pki_verify_raw(pub, a, la, pa[2].v), 1);
	assert_int_equal(pki_verify_raw(pub, b, lb, pb[2].v), 1);
	/* A signature does not verify over other bytes. */
	assert_int_not_equal(pki_verify_raw(pub, a, la - 1, pa[2].v), 1);
	for (i = 0; i < 3; i++) {
		free(pa[i].v);
		free(pb[i].v);
	}
}

static X509 *
cert(const char *cn, X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, int ca)
{
	struct pki_spec sp = { .cn = cn,
		.issuer = issuer,
		.issuer_key = ikey,
		.key = key,
		.ca = ca,
		.pathlen = -1,
		.ku = ca ? "critical,keyCertSign" : "critical,digitalSignature",
		.san = ca ? NULL : pki_loc_san(),
		.not_before = -60,
		.not_after = 3600 };
	X509 *x = pki_cert(&sp);

	assert_non_null(x);
	return x;
}

static void
test_issuer_and_library_agree(void **state)
{
	static const char *const claims[] = {
		"{\"iss\":\"tsi-issuer\",\"sub\":\"spiffe://c/ns/default/sa/"
		"app\","
		"\"aud\":\"vault\",\"iat\":1700000000,\"nbf\":1699999940,"
		"\"exp\":1700000300,\"jti\":\"AAECAwQFBgcICQoLDA0ODw\","
		"\"cluster-name\":\"C\",\"region\":\"R\",\"datacenter\":\"D\","
		"\"node\":\"N\",\"images\":[\"a@sha256:00\"],\"pod\":\"p\"}",
		"{\"aud\":[\"a\",\"b\"],\"x\":\"\\u00e9\\n\\\"\",\"n\":-1}",
		"{}",
	};
	EVP_PKEY *cak = pki_key(), *nk = pki_key(), *sk = pki_key();
	X509 *ca = cert("ca", NULL, NULL, cak, 1);
	X509 *node = cert("node", ca, cak, nk, 0);
	X509 *sess = cert("session", node, nk, sk, 0);
	STACK_OF(X509) *chains[2];
	EVP_PKEY *keys[2] = { sk, nk };
	struct tsi_signer *s;
	struct tsi_jwt_header *h;
	EVP_MD_CTX *hctx;
	json_t *cj;
	char *h64, *old = NULL, *two = NULL, *one = NULL;
	size_t c, k;

	(void)state;
	/* delegated: [session, node] signed by the session key; tpm: [node]
	 * signed by the node key. */
	assert_non_null(chains[0] = sk_X509_new_null());
	assert_true(sk_X509_push(chains[0], sess) > 0);
	assert_true(sk_X509_push(chains[0], node) > 0);
	assert_non_null(chains[1] = sk_X509_new_null());
	assert_true(sk_X509_push(chains[1], node) > 0);
	for (k = 0; k < 2; k++) {
		assert_int_equal(tsi_signer_new_soft(keys[k], &s), TSI_OK);
		h64 = NULL;
		hctx = NULL;
		assert_int_equal(make_header(keys[k], chains[k], &h64, &hctx),
		    TSI_OK);
		assert_int_equal(tsi_jwt_header_new(keys[k], chains[k], &h),
		    TSI_OK);
		for (c = 0; c < sizeof(claims) / sizeof(claims[0]); c++) {
			assert_int_equal(sign_jws(s, h64, hctx, claims[c],
			                     &old),
			    TSI_OK);
			assert_int_equal(tsi_jwt_sign_claims(s, h, claims[c],
			                     &two),
			    TSI_OK);
			assert_non_null(cj = json_loads(claims[c], 0, NULL));
			assert_int_equal(tsi_jwt_mint(s, chains[k], cj, &one),
			    TSI_OK);
			json_decref(cj);
			same_token(keys[k], old, two, 1);
			same_token(keys[k], old, one, 0);
			tsi_strfree(old);
			tsi_strfree(two);
			tsi_strfree(one);
		}
		free(h64);
		EVP_MD_CTX_free(hctx);
		tsi_jwt_header_free(h);
		tsi_signer_free(s);
	}
	sk_X509_free(chains[0]);
	sk_X509_free(chains[1]);
	X509_free(sess);
	X509_free(node);
	X509_free(ca);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(nk);
	EVP_PKEY_free(cak);
}

/* The issuer's bound: a token over TSI_JWT_MAX_BYTES is refused. */
static void
test_too_large(void **state)
{
	EVP_PKEY *k = pki_key();
	struct tsi_signer *s;
	struct tsi_jwt_header *h;
	char *big, *tok = NULL;

	(void)state;
	assert_int_equal(tsi_signer_new_soft(k, &s), TSI_OK);
	assert_int_equal(tsi_jwt_header_new(k, NULL, &h), TSI_OK);
	assert_non_null(big = malloc(TSI_JWT_MAX_BYTES));
	memset(big, 'a', TSI_JWT_MAX_BYTES - 1);
	big[0] = '{';
	big[TSI_JWT_MAX_BYTES - 1] = '\0';
	assert_int_equal(tsi_jwt_sign_claims(s, h, big, &tok),
	    TSI_ERR_TOO_LARGE);
	assert_null(tok);
	free(big);
	tsi_jwt_header_free(h);
	tsi_signer_free(s);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issuer_and_library_agree),
		cmocka_unit_test(test_too_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
