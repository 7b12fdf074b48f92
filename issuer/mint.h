/*
 * mint.h - identity JWTs for resolved workloads, in either signing mode.
 *
 * delegated: a P-256 session key in memory, certified by the TPM key
 * (x5c = [session cert, node cert]); replaced at half its life, and early
 * enough that no token outlives the certificate that signed it; never
 * outliving the node certificate. tpm: every JWT signed in the TPM
 * (x5c = [node cert]). kid is the RFC 7638 thumbprint of the signing key.
 */
#ifndef TSI_ISSUER_MINT_H
#define TSI_ISSUER_MINT_H

#include <time.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "issuer/config.h"
#include "issuer/tpm.h"
#include "issuer/workload.h"
#include "tsi/x509.h"

#define TSI_AUD_MAX 256

struct tsi_minter;

/* cfg and tpm are borrowed for the minter's life; node_cert is up-ref'd.
 * The node certificate's key must be the TPM key and it must carry a
 * location (TSI_ERR_BAD_CERT otherwise). *out: tsi_minter_free. */
int tsi_minter_new(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    X509 *node_cert, struct tsi_minter **out);
void tsi_minter_free(struct tsi_minter *m);

/* Whether aud is acceptable: 1..TSI_AUD_MAX printable ASCII, no spaces. */
int tsi_aud_ok(const char *aud);

/* The claims of a token for w (CONTRACT "Identity JWT"), valid from now for
 * ttl seconds. *out: json_decref. */
int tsi_minter_claims(const struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, time_t now, int ttl, json_t **out);

/* Mints a token for w and aud. *token: tsi_strfree; *expires_at: its exp.
 * TSI_ERR_TPM_UNAVAILABLE when the TPM is needed and gone. */
int tsi_minter_mint(struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, char **token, long long *expires_at);

/* The encoded workload part of the claims, remembered between tokens for
 * the same workload (one per connection; not shared between threads). A
 * token reuses it only when every field of the workload is byte for byte
 * the one it was made from. tsi_claims_memo_new: NULL when out of memory;
 * tsi_claims_memo_free accepts NULL. */
struct tsi_claims_memo;
struct tsi_claims_memo *tsi_claims_memo_new(void);
void tsi_claims_memo_free(struct tsi_claims_memo *memo);

/* tsi_minter_mint with a memo (may be NULL). */
int tsi_minter_mint_memo(struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, struct tsi_claims_memo *memo, char **token,
    long long *expires_at);

/* Rotates the session key when due (delegated mode; nothing in tpm mode).
 * Called at start and periodically so rotation rarely waits for a request. */
int tsi_minter_refresh(struct tsi_minter *m);

/* {"keys": [...]} with the current signing key(s). *out: json_decref. */
int tsi_minter_jwks(struct tsi_minter *m, json_t **out);

/* The kid of the key that signs now (44 bytes with NUL). */
int tsi_minter_kid(struct tsi_minter *m, char kid[44]);

/* The node certificate's location (borrowed). */
const struct tsi_location *tsi_minter_location(const struct tsi_minter *m);

#endif /* TSI_ISSUER_MINT_H */
