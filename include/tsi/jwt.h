/*
 * jwt.h - identity JWTs: ES256 minting with any signer, and verification
 * exactly as CONTRACT "Trust model" says.
 *
 * Verification never falls back: the header alg must be "ES256", the x5c
 * chain must verify to a trusted CA with every certificate in its validity
 * period and none revoked, exp/nbf/iat must hold within the skew, aud must
 * contain the expected audience, and every location claim must equal the
 * value bound in the node certificate.
 */
#ifndef TSI_JWT_H
#define TSI_JWT_H

#include <stddef.h>
#include <time.h>
#include <jansson.h>
#include <openssl/x509.h>

#include "tsi/signer.h"
/* JWT parts are base64url; callers of the token layer get the core
 * encoder with it. */
#include "tsi/b64url.h"

#define TSI_JWT_MAX_BYTES 16384 /* larger tokens are refused unread */
#define TSI_JWT_DEFAULT_SKEW 60
#define TSI_JWT_DEFAULT_AUD "tsi-vault"

/* Why a token was refused. Fixed numbers: they appear in audit records. */
enum tsi_jwt_reason {
	TSI_JWT_OK = 0,
	TSI_JWT_MALFORMED = 1, /* not three base64url parts of JSON objects */
	TSI_JWT_TOO_LARGE = 2,
	TSI_JWT_DUPLICATE_KEY = 3, /* a JSON object repeats a member name */
	TSI_JWT_BAD_ALG = 4,       /* alg is not exactly ES256 */
	TSI_JWT_NO_X5C = 5,
	TSI_JWT_BAD_X5C = 6, /* x5c entries not decodable certificates */
	TSI_JWT_UNTRUSTED_CHAIN = 7, /* no path to a trusted CA */
	TSI_JWT_CERT_EXPIRED = 8,    /* a certificate outside its validity */
	TSI_JWT_CERT_REVOKED = 9,
	TSI_JWT_CERT_NOT_CA = 10,   /* a signer in the chain lacks CA rights */
	TSI_JWT_BAD_SIGNATURE = 11, /* signature invalid for the leaf key */
	TSI_JWT_BAD_KID = 12,       /* kid does not match the leaf key */
	TSI_JWT_NO_EXP = 13,
	TSI_JWT_EXPIRED = 14,
	TSI_JWT_NOT_YET_VALID = 15,     /* nbf in the future */
	TSI_JWT_ISSUED_IN_FUTURE = 16,  /* iat in the future */
	TSI_JWT_LIFETIME_TOO_LONG = 17, /* exp - iat over 3600 s */
	TSI_JWT_NO_AUD = 18,
	TSI_JWT_BAD_AUD = 19,
	TSI_JWT_BAD_CLAIMS = 20, /* a required claim missing or of wrong type */
	TSI_JWT_LOCATION_MISMATCH =
	    21, /* a location claim differs from the node cert */
};

/* Short stable name of a reason, e.g. "expired", "bad_alg". */
const char *tsi_jwt_reason_name(enum tsi_jwt_reason r);

/* Mints a compact ES256 JWT. Header: alg ES256, typ JWT, kid = thumbprint of
 * the signer's key, x5c = the DER certificates of chain in order (leaf first;
 * may be NULL for no x5c). claims is borrowed and serialised as given.
 * *token: caller frees with tsi_strfree. */
int tsi_jwt_mint(const struct tsi_signer *s, STACK_OF(X509) *chain,
    const json_t *claims, char **token);

/* The same minting in two steps, for a signer that mints many tokens: the
 * header of a key is built (and hashed) once, each token then costs the
 * claims' encoding, their hash and one signature. tsi_jwt_header_new: the
 * header of tsi_jwt_mint for the key pub (borrowed) and chain (borrowed,
 * may be NULL); *out: tsi_jwt_header_free (accepts NULL); it may be used by
 * several threads at once. tsi_jwt_sign_claims: claims is the compact JSON
 * text of the claims object (borrowed), signed by s, whose key must be pub.
 * *token: caller frees with tsi_strfree. TSI_ERR_TOO_LARGE over
 * TSI_JWT_MAX_BYTES. */
struct tsi_jwt_header;
int tsi_jwt_header_new(EVP_PKEY *pub, STACK_OF(X509) *chain,
    struct tsi_jwt_header **out);
void tsi_jwt_header_free(struct tsi_jwt_header *h);
int tsi_jwt_sign_claims(const struct tsi_signer *s,
    const struct tsi_jwt_header *h, const char *claims, char **token);

/* The JWS/JWK "x5c" member: chain's certificates (borrowed) as standard
 * base64 DER, leaf first (RFC 7515 4.1.6). *out: json_decref. */
int tsi_jwt_x5c(STACK_OF(X509) *chain, json_t **out);

/* Trust anchors and revocations for verification. Fill it (add CAs and
 * revocations) before sharing it; then any number of threads may call
 * tsi_jwt_verify on it at once. Changing it while others verify is not safe:
 * build a new one and swap. It also caches parsed x5c certificates (by exact
 * DER; at most 64) and the verdicts of token headers whose x5c chain
 * verified (at most 1,024; by exact header text; each used only while every
 * certificate of its path is valid and no CA or revocation was added since;
 * see docs/token-core.md "Chain verdict cache"). A token whose header is
 * cached still has its own signature and every claim checked. */
struct tsi_trust;

int tsi_trust_new(struct tsi_trust **out);
void tsi_trust_free(struct tsi_trust *t);
/* Adds every certificate of a PEM file (or PEM text) as a trusted CA. */
int tsi_trust_add_ca_file(struct tsi_trust *t, const char *path);
int tsi_trust_add_ca_pem(struct tsi_trust *t, const char *pem, size_t len);
/* Revokes a certificate by serial (hex, as `openssl x509 -serial` prints)
 * or by SHA-256 fingerprint of its DER (hex, colons optional). */
int tsi_trust_revoke(struct tsi_trust *t, const char *serial_or_fingerprint);

/* One certificate of a verified path: what a revocation or the removal of a
 * CA is checked against after the token that came through it was accepted
 * (tsi-vault's client tokens keep it; docs/token-core.md). */
#define TSI_CHAIN_MAX 8
struct tsi_chain_cert {
	unsigned char sha256[32]; /* of the DER */
	char serial[41];          /* lower-case hex, no leading zeros */
	int trusted;              /* a CA of the trust store (the anchor) */
};

/* TSI_OK when the path chain[0..n) (from a tsi_verify_result) would still
 * be accepted by t as far as trust goes: no certificate revoked (by
 * fingerprint or serial) and every certificate that was a trusted CA still
 * one. TSI_ERR_BAD_TOKEN otherwise, with one line in detail (may be NULL).
 * Validity periods are not checked here. Safe while others verify. */
int tsi_trust_chain_check(const struct tsi_trust *t,
    const struct tsi_chain_cert *chain, size_t n, char *detail, size_t detlen);

/* opts == NULL means all defaults. Note that a zero-initialised struct
 * means skew 0: set skew = -1 for the default. */
struct tsi_verify_opts {
	const char *audience; /* NULL: TSI_JWT_DEFAULT_AUD */
	time_t now;           /* 0: time(NULL) */
	int skew;             /* < 0: TSI_JWT_DEFAULT_SKEW */
};

struct tsi_verify_result {
	enum tsi_jwt_reason reason;
	char detail[256]; /* one line for logs and `tsi token verify` */
	char node_fingerprint
	    [65]; /* SHA-256 hex of the node certificate, on success */
	char kid[44];
	/* The verified path, leaf first, trust anchor last, on success. */
	size_t chain_len;
	struct tsi_chain_cert chain[TSI_CHAIN_MAX];
};

/* Verifies token (NUL-terminated) with the checks, in the order, of
 * docs/token-core.md. On success returns TSI_OK and *claims (caller
 * json_decref), res->node_fingerprint, res->kid and res->chain. On refusal returns
 * TSI_ERR_BAD_TOKEN with res->reason and res->detail set; *claims untouched.
 * Other codes (TSI_ERR_ALLOC, TSI_ERR_INVALID_ARG for NULL arguments) also
 * leave res->reason non-zero. res must not be NULL. */
int tsi_jwt_verify(const struct tsi_trust *t, const char *token,
    const struct tsi_verify_opts *opts, json_t **claims,
    struct tsi_verify_result *res);

/* Counters of the chain verdict cache (since tsi_trust_new). */
struct tsi_trust_cache_stats {
	unsigned long long hits;    /* tokens whose chain verdict was reused */
	unsigned long long misses;  /* chains verified in full */
	unsigned long long entries; /* verdicts held now */
	unsigned long long evictions; /* verdicts dropped for room */
};

/* Fills *st (zeroes when t is NULL). Safe while others verify. */
void tsi_trust_cache_stats(const struct tsi_trust *t,
    struct tsi_trust_cache_stats *st);

/* Decodes without verifying anything (for `tsi token decode`). Duplicate keys
 * and oversize tokens are still refused. Caller json_decref's both. */
int tsi_jwt_decode_unverified(const char *token, json_t **header,
    json_t **claims);

#endif /* TSI_JWT_H */
