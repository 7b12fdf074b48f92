/*
 * jwt_mint.c - compact ES256 JWS, built here rather than by libjwt because
 * the private key may live in a TPM (libjwt wants the key bytes). The one
 * minting path: tsi-issuer uses the prepared header (its header is fixed
 * per signing key, so each token costs one claims encoding, one hash of the
 * claims and one signature); tsi_jwt_mint is the same path in one call.
 */
#include "tsi/jwt.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/signer.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct tsi_jwt_header {
	char *h64; /* base64url of the header's compact JSON */
	size_t h64len;
	EVP_MD_CTX *hctx; /* SHA-256 that has absorbed h64 and the dot */
};

int
tsi_jwt_x5c(STACK_OF(X509) *chain, json_t **out)
{
	json_t *arr;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int i, n, ret = TSI_ERR_ALLOC;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < sk_X509_num(chain); i++) {
		der = NULL;
		if ((n = i2d_X509(sk_X509_value(chain, i), &der)) <= 0) {
			ret = TSI_ERR_CRYPTO;
			goto out;
		}
		ret = tsi_b64_encode(der, (size_t)n, &b64);
		OPENSSL_free(der);
		der = NULL;
		if (ret != TSI_OK)
			goto out;
		if (json_array_append_new(arr, json_string(b64)) != 0) {
			ret = TSI_ERR_ALLOC;
			goto out;
		}
		free(b64);
		b64 = NULL;
	}
	*out = arr;
	arr = NULL;
	ret = TSI_OK;
out:
	free(b64);
	json_decref(arr);
	return ret;
}

void
tsi_jwt_header_free(struct tsi_jwt_header *h)
{
	if (h == NULL)
		return;
	free(h->h64);
	EVP_MD_CTX_free(h->hctx);
	free(h);
}

int
tsi_jwt_header_new(EVP_PKEY *pub, STACK_OF(X509) *chain,
    struct tsi_jwt_header **out)
{
	struct tsi_jwt_header *h = NULL;
	json_t *hdr = NULL, *x5c = NULL;
	char kid[44], *text = NULL;
	int r;

	if (pub == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((r = tsi_key_thumbprint(pub, kid)) != TSI_OK)
		return r;
	r = TSI_ERR_ALLOC;
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT",
	         "kid", kid)) == NULL)
		goto out;
	if (chain != NULL && sk_X509_num(chain) > 0) {
		if ((r = tsi_jwt_x5c(chain, &x5c)) != TSI_OK)
			goto out;
		r = TSI_ERR_ALLOC;
		if (json_object_set_new(hdr, "x5c", x5c) != 0)
			goto out;
	}
	if ((text = json_dumps(hdr, JSON_COMPACT)) == NULL)
		goto out;
	if ((r = tsi_b64url_encode(text, strlen(text), &h->h64)) != TSI_OK)
		goto out;
	h->h64len = strlen(h->h64);
	/* Every signing input starts with the header and a dot: hash them
	 * once; each token then hashes only its claims. */
	r = TSI_ERR_CRYPTO;
	if ((h->hctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(h->hctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(h->hctx, h->h64, h->h64len) != 1 ||
	    EVP_DigestUpdate(h->hctx, ".", 1) != 1)
		goto out;
	*out = h;
	h = NULL;
	r = TSI_OK;
out:
	free(text);
	json_decref(hdr);
	tsi_jwt_header_free(h);
	return r;
}

int
tsi_jwt_sign_claims(const struct tsi_signer *s, const struct tsi_jwt_header *h,
    const char *claims, char **token)
{
	char *c64 = NULL, *s64 = NULL, *tok = NULL;
	size_t hl, cl, n = 0;
	EVP_MD_CTX *md = NULL;
	uint8_t sig[64], digest[32];
	unsigned int dl = 0;
	int r;

	if (s == NULL || h == NULL || claims == NULL || token == NULL)
		return TSI_ERR_INVALID_ARG;
	hl = h->h64len;
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
	memcpy(tok, h->h64, hl);
	tok[hl] = '.';
	memcpy(tok + hl + 1, c64, cl);
	r = TSI_ERR_CRYPTO;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_MD_CTX_copy_ex(md, h->hctx) != 1 ||
	    EVP_DigestUpdate(md, c64, cl) != 1 ||
	    EVP_DigestFinal_ex(md, digest, &dl) != 1 || dl != sizeof(digest))
		goto out;
	if ((r = tsi_signer_sign(s, digest, sig)) != TSI_OK ||
	    (r = tsi_b64url_encode(sig, sizeof(sig), &s64)) != TSI_OK)
		goto out;
	if (strlen(s64) != 86) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	tok[hl + 1 + cl] = '.';
	memcpy(tok + hl + 1 + cl + 1, s64, 86 + 1);
	*token = tok;
	tok = NULL;
	r = TSI_OK;
out:
	EVP_MD_CTX_free(md);
	tsi_strfree(c64);
	free(s64);
	if (tok != NULL)
		tsi_freezero(tok, n);
	return r;
}

int
tsi_jwt_mint(const struct tsi_signer *s, STACK_OF(X509) *chain,
    const json_t *claims, char **token)
{
	struct tsi_jwt_header *h = NULL;
	char *text = NULL;
	int ret;

	if (s == NULL || claims == NULL || !json_is_object(claims) ||
	    token == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ret = tsi_jwt_header_new(tsi_signer_pub(s), chain, &h)) != TSI_OK)
		goto out;
	if ((text = json_dumps(claims, JSON_COMPACT)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	ret = tsi_jwt_sign_claims(s, h, text, token);
out:
	tsi_strfree(text);
	tsi_jwt_header_free(h);
	return ret;
}
