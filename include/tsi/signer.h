/*
 * signer.h - an ECDSA P-256 signing key whose private half may live anywhere.
 *
 * tsi signs JWTs, CSRs and session certificates with keys that are either in
 * memory (the CA, delegated session keys, tests) or inside a TPM. A signer
 * hides which: it signs a SHA-256 digest and returns the raw signature r||s,
 * each half 32 bytes big-endian (the JWS ES256 form).
 */
#ifndef TSI_SIGNER_H
#define TSI_SIGNER_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

struct tsi_signer;

/* The signing callback: digest is a SHA-256 value; writes r||s into sig.
 * Returns TSI_OK or a TSI_ERR_* code (TSI_ERR_TPM_UNAVAILABLE when the key's
 * device is gone). ctx is the pointer given to tsi_signer_new. */
typedef int tsi_sign_cb(void *ctx, const uint8_t digest[32], uint8_t sig[64]);

/* A signer backed by a callback. pub is the P-256 public key (up-ref'd: the
 * caller keeps its own reference). ctx is borrowed for the signer's life.
 * Caller frees with tsi_signer_free. */
int tsi_signer_new(tsi_sign_cb *cb, void *ctx, EVP_PKEY *pub,
    struct tsi_signer **out);

/* A software signer over a P-256 private key (up-ref'd). */
int tsi_signer_new_soft(EVP_PKEY *priv, struct tsi_signer **out);

/* Accepts NULL. */
void tsi_signer_free(struct tsi_signer *s);

/* Signs a SHA-256 digest: sig = r||s (64 bytes). */
int tsi_signer_sign(const struct tsi_signer *s, const uint8_t digest[32],
    uint8_t sig[64]);

/* Hashes msg with SHA-256 and signs it. */
int tsi_signer_sign_msg(const struct tsi_signer *s, const void *msg, size_t len,
    uint8_t sig[64]);

/* The public key, borrowed for the signer's life. */
EVP_PKEY *tsi_signer_pub(const struct tsi_signer *s);

/* RFC 7638 JWK thumbprint (SHA-256, base64url, no padding) of the public
 * key: the JWT "kid". kid must hold at least 44 bytes. */
int tsi_signer_kid(const struct tsi_signer *s, char kid[44]);

/* RFC 7638 thumbprint of any P-256 public key. */
int tsi_key_thumbprint(EVP_PKEY *pub, char kid[44]);

/* An EVP_PKEY whose private-key operations call the signer, so that OpenSSL
 * can sign certificates and CSRs with it (X509_sign, X509_REQ_sign). The
 * signer must outlive the key. Caller frees with EVP_PKEY_free. */
int tsi_signer_evp_pkey(const struct tsi_signer *s, EVP_PKEY **out);

#endif /* TSI_SIGNER_H */
