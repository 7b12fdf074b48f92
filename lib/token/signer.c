/*
 * signer.c - P-256 signers: software keys and callbacks (the TPM), and the
 * RFC 7638 thumbprint used as the JWT kid.
 *
 * Every signature leaves here as raw r||s (32 bytes each, big-endian), the
 * JWS ES256 form; DER conversion happens only at the OpenSSL boundary.
 */
#include "tsi/signer.h"
#include "tsi/err.h"
#include "tsi/b64url.h"
#include "tsi/log.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A soft signer keeps a few signing contexts ready: making one (a provider
 * fetch, sign_init, setting the digest) cost about as much as a tenth of the
 * signature. A caller takes a free slot with an atomic exchange (no lock, no
 * waiting); when all are busy it makes a context of its own for that call.
 */
#define SOFT_SLOTS 16

struct soft {
	EVP_PKEY *priv;                 /* owned reference */
	EVP_PKEY_CTX *pctx[SOFT_SLOTS]; /* ready to sign, or NULL */
	int busy[SOFT_SLOTS];
};

struct tsi_signer {
	tsi_sign_cb *cb;
	void *ctx;     /* borrowed (callback signer) or struct soft (owned) */
	EVP_PKEY *pub; /* owned reference */
	struct soft *soft; /* soft signer only */
};

/* Nonzero when pkey is an EC key on P-256. */
static int
is_p256(EVP_PKEY *pkey)
{
	char group[32];
	size_t glen = 0;

	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
		return 0;
	if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
	        group, sizeof(group), &glen) != 1)
		return 0;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* DER ECDSA-Sig-Value -> r||s, 32 bytes each. */
static int
der_to_raw(const unsigned char *der, size_t len, uint8_t sig[64])
{
	ECDSA_SIG *es = NULL;
	const unsigned char *p = der;
	const BIGNUM *r, *s;
	int ret = TSI_ERR_CRYPTO;

	if (len > 256 || (es = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL)
		goto out;
	if (p != der + len)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 ||
	    BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	ret = TSI_OK;
out:
	ECDSA_SIG_free(es);
	return ret;
}

static EVP_PKEY_CTX *
soft_ctx_new(EVP_PKEY *priv)
{
	EVP_PKEY_CTX *pctx;

	if ((pctx = EVP_PKEY_CTX_new(priv, NULL)) == NULL ||
	    EVP_PKEY_sign_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1) {
		EVP_PKEY_CTX_free(pctx);
		return NULL;
	}
	return pctx;
}

static int
soft_sign(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
	struct soft *sk = ctx;
	EVP_PKEY_CTX *pctx = NULL, *own = NULL;
	unsigned char der[128];
	size_t dlen = sizeof(der);
	int ret = TSI_ERR_CRYPTO, slot;

	for (slot = 0; slot < SOFT_SLOTS; slot++)
		if (__atomic_exchange_n(&sk->busy[slot], 1, __ATOMIC_ACQUIRE) ==
		    0)
			break;
	if (slot < SOFT_SLOTS) {
		if (sk->pctx[slot] == NULL)
			sk->pctx[slot] = soft_ctx_new(sk->priv);
		pctx = sk->pctx[slot];
	} else
		pctx = own = soft_ctx_new(sk->priv);
	if (pctx == NULL || EVP_PKEY_sign(pctx, der, &dlen, digest, 32) != 1) {
		tsi_log_openssl(TSI_LOG_ERROR, "signer.sign_failed");
		goto out;
	}
	ret = der_to_raw(der, dlen, sig);
out:
	EVP_PKEY_CTX_free(own);
	if (slot < SOFT_SLOTS)
		__atomic_store_n(&sk->busy[slot], 0, __ATOMIC_RELEASE);
	return ret;
}

int
tsi_signer_new(tsi_sign_cb *cb, void *ctx, EVP_PKEY *pub,
    struct tsi_signer **out)
{
	struct tsi_signer *s;

	if (cb == NULL || out == NULL || !is_p256(pub))
		return TSI_ERR_INVALID_ARG;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TSI_ERR_ALLOC;
	if (EVP_PKEY_up_ref(pub) != 1) {
		free(s);
		return TSI_ERR_CRYPTO;
	}
	s->cb = cb;
	s->ctx = ctx;
	s->pub = pub;
	*out = s;
	return TSI_OK;
}

int
tsi_signer_new_soft(EVP_PKEY *priv, struct tsi_signer **out)
{
	struct tsi_signer *s = NULL;
	struct soft *sk;
	int ret;

	if (out == NULL || !is_p256(priv))
		return TSI_ERR_INVALID_ARG;
	if ((sk = calloc(1, sizeof(*sk))) == NULL)
		return TSI_ERR_ALLOC;
	if ((ret = tsi_signer_new(soft_sign, sk, priv, &s)) != TSI_OK) {
		free(sk);
		return ret;
	}
	s->soft = sk;
	if (EVP_PKEY_up_ref(priv) != 1) {
		tsi_signer_free(s);
		return TSI_ERR_CRYPTO;
	}
	sk->priv = priv;
	*out = s;
	return TSI_OK;
}

void
tsi_signer_free(struct tsi_signer *s)
{
	int i;

	if (s == NULL)
		return;
	if (s->soft != NULL) {
		for (i = 0; i < SOFT_SLOTS; i++)
			EVP_PKEY_CTX_free(s->soft->pctx[i]);
		EVP_PKEY_free(s->soft->priv);
		OPENSSL_cleanse(s->soft, sizeof(*s->soft));
		free(s->soft);
	}
	EVP_PKEY_free(s->pub);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

int
tsi_signer_sign(const struct tsi_signer *s, const uint8_t digest[32],
    uint8_t sig[64])
{
	if (s == NULL || digest == NULL || sig == NULL)
		return TSI_ERR_INVALID_ARG;
	return s->cb(s->ctx, digest, sig);
}

int
tsi_signer_sign_msg(const struct tsi_signer *s, const void *msg, size_t len,
    uint8_t sig[64])
{
	uint8_t digest[32];
	int ret;

	if (s == NULL || (msg == NULL && len > 0) || sig == NULL)
		return TSI_ERR_INVALID_ARG;
	if (EVP_Digest(msg, len, digest, NULL, EVP_sha256(), NULL) != 1)
		return TSI_ERR_CRYPTO;
	ret = s->cb(s->ctx, digest, sig);
	OPENSSL_cleanse(digest, sizeof(digest));
	return ret;
}

EVP_PKEY *
tsi_signer_pub(const struct tsi_signer *s)
{
	return s == NULL ? NULL : s->pub;
}

int
tsi_signer_kid(const struct tsi_signer *s, char kid[44])
{
	if (s == NULL)
		return TSI_ERR_INVALID_ARG;
	return tsi_key_thumbprint(s->pub, kid);
}

int
tsi_key_thumbprint(EVP_PKEY *pub, char kid[44])
{
	unsigned char *pt = NULL;
	char *x = NULL, *y = NULL, *t = NULL;
	char jwk[160];
	uint8_t h[32];
	size_t ptlen;
	int n, ret = TSI_ERR_CRYPTO;

	if (kid == NULL || !is_p256(pub))
		return TSI_ERR_INVALID_ARG;
	/* Uncompressed point: 0x04 || X (32) || Y (32). */
	ptlen = EVP_PKEY_get1_encoded_public_key(pub, &pt);
	if (ptlen != 65 || pt[0] != 0x04)
		goto out;
	if ((ret = tsi_b64url_encode(pt + 1, 32, &x)) != TSI_OK ||
	    (ret = tsi_b64url_encode(pt + 33, 32, &y)) != TSI_OK)
		goto out;
	/* RFC 7638 section 3.2: required members only, lexicographic order,
	 * no whitespace. */
	n = snprintf(jwk, sizeof(jwk),
	    "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x,
	    y);
	if (n < 0 || (size_t)n >= sizeof(jwk)) {
		ret = TSI_ERR_INTERNAL;
		goto out;
	}
	if (EVP_Digest(jwk, (size_t)n, h, NULL, EVP_sha256(), NULL) != 1) {
		ret = TSI_ERR_CRYPTO;
		goto out;
	}
	if ((ret = tsi_b64url_encode(h, sizeof(h), &t)) != TSI_OK)
		goto out;
	if (strlen(t) != 43) {
		ret = TSI_ERR_INTERNAL;
		goto out;
	}
	memcpy(kid, t, 44);
	ret = TSI_OK;
out:
	OPENSSL_free(pt);
	free(x);
	free(y);
	free(t);
	return ret;
}
