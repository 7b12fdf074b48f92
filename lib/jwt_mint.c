/*
 * jwt_mint.c - compact ES256 JWS, built here rather than by libjwt because
 * the private key may live in a TPM (libjwt wants the key bytes).
 */
#include "tsi/jwt.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/signer.h"

#include <stdlib.h>
#include <string.h>

/* The compact form of an object as base64url. */
static int
json_b64url(const json_t *obj, char **out)
{
	char *s;
	int ret;

	if ((s = json_dumps(obj, JSON_COMPACT)) == NULL)
		return TSI_ERR_ALLOC;
	ret = tsi_b64url_encode(s, strlen(s), out);
	tsi_strfree(s);
	return ret;
}

/* x5c: standard base64 DER of each certificate, leaf first (RFC 7515 4.1.6). */
static int
x5c_array(STACK_OF(X509) *chain, json_t **out)
{
	json_t *arr;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int i, n, ret = TSI_ERR_ALLOC;

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

int
tsi_jwt_mint(const struct tsi_signer *s, STACK_OF(X509) *chain,
    const json_t *claims, char **token)
{
	json_t *hdr = NULL, *x5c = NULL;
	char *h64 = NULL, *c64 = NULL, *s64 = NULL;
	struct tsi_buf *b = NULL;
	char kid[44];
	uint8_t sig[64];
	int ret;

	if (s == NULL || claims == NULL || !json_is_object(claims) ||
	    token == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ret = tsi_signer_kid(s, kid)) != TSI_OK)
		return ret;
	if ((hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT",
	    "kid", kid)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	if (chain != NULL && sk_X509_num(chain) > 0) {
		if ((ret = x5c_array(chain, &x5c)) != TSI_OK)
			goto out;
		if (json_object_set_new(hdr, "x5c", x5c) != 0) {
			x5c = NULL;
			ret = TSI_ERR_ALLOC;
			goto out;
		}
		x5c = NULL;
	}
	if ((ret = json_b64url(hdr, &h64)) != TSI_OK ||
	    (ret = json_b64url(claims, &c64)) != TSI_OK)
		goto out;
	if ((b = tsi_buf_new(TSI_JWT_MAX_BYTES)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	if ((ret = tsi_buf_putf(b, "%s.%s", h64, c64)) != TSI_OK)
		goto out;
	if ((ret = tsi_signer_sign_msg(s, tsi_buf_ptr(b), tsi_buf_len(b),
	    sig)) != TSI_OK)
		goto out;
	if ((ret = tsi_b64url_encode(sig, sizeof(sig), &s64)) != TSI_OK ||
	    (ret = tsi_buf_putf(b, ".%s", s64)) != TSI_OK)
		goto out;
	if ((*token = tsi_buf_take(b, NULL)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	ret = TSI_OK;
out:
	json_decref(hdr);
	free(h64);
	tsi_strfree(c64);
	free(s64);
	tsi_buf_free(b);
	return ret;
}
