/*
 * signer_evp.c - an EVP_PKEY whose private operation is a tsi_signer.
 *
 * OpenSSL signs certificates and CSRs (X509_sign, X509_REQ_sign) only with an
 * EVP_PKEY. For a key that lives in a TPM there is no private half to give
 * it, so we hand OpenSSL an EC_KEY carrying only the public point and an
 * EC_KEY_METHOD whose sign callbacks call the signer and convert its r||s
 * into an ECDSA_SIG.
 *
 * Why the deprecated EC_KEY_METHOD API: OpenSSL 3.0 offers two ways to plug
 * in an external private key, a provider (a keymgmt plus a signature
 * implementation, several hundred lines and a library context to thread
 * through every call site) or a "foreign" legacy key with its own method.
 * OpenSSL 3.0 routes foreign keys through the legacy EVP_PKEY_METHOD path, so
 * X509_sign works unchanged. The deprecation is silenced for this file only
 * (OPENSSL_SUPPRESS_DEPRECATED below); if OpenSSL removes the API, replace this
 * file with a small provider and keep tsi_signer_evp_pkey's contract.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "tsi/signer.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t bridge_once = PTHREAD_ONCE_INIT;
static EC_KEY_METHOD *bridge_method; /* lives until exit */
static int bridge_index = -1;        /* EC_KEY ex_data slot: the signer */

static ECDSA_SIG *
bridge_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *rp, EC_KEY *eckey)
{
	const struct tsi_signer *s = EC_KEY_get_ex_data(eckey, bridge_index);
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *sv = NULL;
	uint8_t sig[64];
	int ret;

	/* The signer takes a SHA-256 digest only: X509_sign and X509_REQ_sign
	 * are called with EVP_sha256() by every tsi caller. */
	if (s == NULL || dlen != 32) {
		tsi_log(TSI_LOG_ERROR, "signer.bridge_refused",
		    TSI_LI("digest_len", dlen));
		return NULL;
	}
	if ((ret = tsi_signer_sign(s, dgst, sig)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "signer.bridge_sign_failed",
		    TSI_LS("error", tsi_strerror(ret)));
		return NULL;
	}
	if ((r = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (sv = BN_bin2bn(sig + 32, 32, NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL)
		goto fail;
	if (ECDSA_SIG_set0(es, r, sv) != 1)
		goto fail;
	return es;
fail:
	BN_free(r);
	BN_free(sv);
	ECDSA_SIG_free(es);
	return NULL;
}

static int
bridge_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	ECDSA_SIG *es;
	unsigned char *p = sig;
	int n;

	if ((es = bridge_sign_sig(dgst, dlen, kinv, r, eckey)) == NULL)
		return 0;
	/* sig has room for ECDSA_size(eckey) bytes (OpenSSL's contract). */
	n = i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static int
bridge_sign_setup(EC_KEY *eckey, BN_CTX *ctx, BIGNUM **kinvp, BIGNUM **rp)
{
	/* Nothing to precompute: the nonce is chosen by the signer. */
	return 1;
}

static void
bridge_init(void)
{
	EC_KEY_METHOD *m;

	bridge_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (bridge_index < 0)
		return;
	if ((m = EC_KEY_METHOD_new(EC_KEY_get_default_method())) == NULL)
		return;
	EC_KEY_METHOD_set_sign(m, bridge_sign, bridge_sign_setup,
	    bridge_sign_sig);
	bridge_method = m;
}

int
tsi_signer_evp_pkey(const struct tsi_signer *s, EVP_PKEY **out)
{
	EC_KEY *ec = NULL;
	EVP_PKEY *pkey = NULL;
	unsigned char *pt = NULL;
	size_t ptlen;
	int ret = TSI_ERR_CRYPTO;

	if (s == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if (pthread_once(&bridge_once, bridge_init) != 0 ||
	    bridge_method == NULL)
		return TSI_ERR_INTERNAL;
	ptlen = EVP_PKEY_get1_encoded_public_key(tsi_signer_pub(s), &pt);
	if (ptlen == 0)
		goto out;
	if ((ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
	    EC_KEY_oct2key(ec, pt, ptlen, NULL) != 1 ||
	    EC_KEY_set_method(ec, bridge_method) != 1 ||
	    EC_KEY_set_ex_data(ec, bridge_index, (void *)s) != 1)
		goto out;
	if ((pkey = EVP_PKEY_new()) == NULL ||
	    EVP_PKEY_assign_EC_KEY(pkey, ec) != 1)
		goto out;
	ec = NULL; /* owned by pkey */
	*out = pkey;
	pkey = NULL;
	ret = TSI_OK;
out:
	if (ret != TSI_OK)
		tsi_log_openssl(TSI_LOG_ERROR, "signer.bridge_failed");
	EC_KEY_free(ec);
	EVP_PKEY_free(pkey);
	OPENSSL_free(pt);
	return ret;
}
