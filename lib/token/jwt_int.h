/*
 * jwt_int.h - internal to libtsi's JWT verifier (jwt.c, jwt_claims.c,
 * trust.c, jwt_cache.c): the trust store's layout, the helpers the verifier
 * files share, and the chain verdict cache. Not installed, not part of the API.
 *
 * A verdict is what a fully verified x5c chain vouches for: the leaf's public
 * key, its thumbprint, the node certificate's location and fingerprint, and
 * the time window in which every certificate of the verified path (trust
 * anchor included) is valid. It is keyed by the exact header segment of the
 * token (base64url of {"alg","typ","kid","x5c"}: every token of one session
 * key repeats it byte for byte; equal text is equal x5c DER) and the trust
 * generation. Only headers that passed every header and chain check, with a
 * kid equal to the leaf's thumbprint, are stored.
 */
#ifndef TSI_JWT_INT_H
#define TSI_JWT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "tsi/jwt.h"
#include "tsi/x509.h"

#define JWT_X5C_MAX 4 /* leaf, node, up to two operator CAs */
#define JWT_MAX_LIFETIME 3600
#define JWT_MAX_NUMERIC_DATE 253402300799LL /* 9999-12-31T23:59:59Z */

/* The key: the token's header segment (base64url text), borrowed. */
struct jwt_key {
	const char *s;
	size_t len;
	uint64_t h; /* filled by jwt_cache_hash */
};

/* Immutable once made; shared by reference (jwt_verdict_ref/unref). */
struct jwt_verdict {
	unsigned refs;        /* atomic */
	uint64_t gen;         /* trust generation it was verified under */
	long long not_before; /* valid for not_before <= now < not_after */
	long long not_after;
	EVP_PKEY *leaf; /* one reference */
	/* leaf's public key, EVP_PKEY_verify_init'ed: only ever duplicated
	 * (EVP_PKEY_CTX_dup reads it), never used to verify, so threads share
	 * it. Saves the provider look-up and context set-up of every call. */
	EVP_PKEY_CTX *verify;
	struct tsi_location loc; /* of the node certificate */
	char kid[44];            /* thumbprint of leaf */
	char node_fp[65];        /* SHA-256 hex of the node certificate */
	size_t chain_len;        /* the verified path, anchor last */
	struct tsi_chain_cert chain[TSI_CHAIN_MAX];
	uint64_t h; /* the key: a copy of the header text */
	unsigned char *text;
	size_t textlen;
};

struct jwt_cache;

/*
 * Parsed x5c certificates, keyed by their exact DER. OpenSSL 3.0 spends
 * about as long decoding a certificate (its public key goes through the
 * provider decoders) as verifying a signature, and the same node and session
 * certificates arrive with every token of a node. Only parsing is cached:
 * chain, validity, revocation and signature are checked on every call.
 */
#define CERT_CACHE_SIZE 64

struct cert_slot {
	unsigned char *der;
	size_t len;
	unsigned char h[32]; /* SHA-256 of der */
	X509 *x;             /* one reference held by the cache */
	unsigned long long used;
};

struct cert_cache {
	pthread_mutex_t mu;
	unsigned long long tick;
	struct cert_slot slot[CERT_CACHE_SIZE];
};

struct tsi_trust {
	X509_STORE *store;
	int ncas;
	char **revoked; /* lower-case hex, no colons */
	size_t nrevoked;
	unsigned char (*ca_sha256)[32]; /* of every CA added */
	size_t nca_sha256;
	uint64_t gen; /* bumped by every change of CAs or revocations */
	struct cert_cache *cache;   /* mutable behind a const tsi_trust */
	struct jwt_cache *verdicts; /* likewise: verified chains */
};

/* ---- trust.c, for the verifier ---- */

/* The parsed certificate for exactly der, from the cache or parsed now.
 * A new reference: caller X509_free's it. NULL when der is no certificate. */
X509 *trust_cache_parse(struct cert_cache *c, const unsigned char *der,
    size_t len);
/* Nonzero when cert is revoked by serial or fingerprint (or cannot tell). */
int trust_is_revoked(const struct tsi_trust *t, X509 *cert);
/* Fills *out with cert's identity for tsi_trust_chain_check. */
int trust_chain_cert_of(const struct tsi_trust *t, X509 *cert,
    struct tsi_chain_cert *out);

/* ---- jwt.c and jwt_claims.c ---- */

/* Sets res's reason and a one-line printable detail; returns
 * TSI_ERR_BAD_TOKEN. */
int jwt_refuse(struct tsi_verify_result *res, enum tsi_jwt_reason reason,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The claim checks, in contract order; each refuses through jwt_refuse. */
int jwt_check_times(const json_t *claims, long long now, long long skew,
    struct tsi_verify_result *res);
int jwt_check_aud(const json_t *claims, const char *aud,
    struct tsi_verify_result *res);
int jwt_check_string_claims(const json_t *claims,
    struct tsi_verify_result *res);
int jwt_check_location(const json_t *claims, const struct tsi_location *loc,
    struct tsi_verify_result *res);

int jwt_cache_new(struct jwt_cache **out);
void jwt_cache_free(struct jwt_cache *c);

/* Sets k->h (keyed by the cache's random seed). */
void jwt_cache_hash(const struct jwt_cache *c, struct jwt_key *k);

/* The verdict for exactly k's text, made under generation gen and valid
 * at now; NULL when there is none. A returned verdict is a new reference:
 * caller jwt_verdict_unref. */
struct jwt_verdict *jwt_cache_get(struct jwt_cache *c, const struct jwt_key *k,
    uint64_t gen, long long now);

/* A new verdict with refs 1 and a copy of k's text; the other members
 * are zero for the caller to fill. NULL on ALLOC. */
struct jwt_verdict *jwt_verdict_new(const struct jwt_key *k);
void jwt_verdict_ref(struct jwt_verdict *v);
void jwt_verdict_unref(struct jwt_verdict *v); /* accepts NULL */

/* Stores v (the cache takes its own reference), replacing a verdict for the
 * same key, else an empty slot, else the least recently used of the shard. */
void jwt_cache_put(struct jwt_cache *c, struct jwt_verdict *v);

/* Sums of the per-shard counters. */
void jwt_cache_stats(struct jwt_cache *c, unsigned long long *hits,
    unsigned long long *misses, unsigned long long *entries,
    unsigned long long *evictions);

#endif /* TSI_JWT_INT_H */
