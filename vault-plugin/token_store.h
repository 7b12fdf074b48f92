/*
 * token_store.h - where client tokens live, behind a backend table in the
 * spirit of store.h (KV): tokens.c makes tokens, hashes them and decides
 * which certificate paths still hold; a backend only keeps records. The
 * first backend (token_mem.c, "memory://") keeps them in this process;
 * a shared one (PostgreSQL, for several replicas) is one more file and one
 * more row in token_store.c, and must pass the backend-neutral suite
 * (tests/unit/vault/storage/test_token_store.c).
 *
 * A record is keyed by SHA-256 of the token (the token itself is never
 * given to a store) and carries a unique accessor.
 */
#ifndef TSI_VAULT_TOKEN_STORE_H
#define TSI_VAULT_TOKEN_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "tsi/jwt.h"

#define VAULT_ACCESSOR_LEN 24

/* What a token stands for; a copy owned by the caller (vault_token_clear). */
struct vault_token {
	char accessor[VAULT_ACCESSOR_LEN + 1];
	char role[128];
	json_t *claims;   /* reference; never modified once stored */
	json_t *policies; /* array of rule names (login), of role names
	                       (created); reference */
	int root;
	int created;            /* by auth/token/create: policies name roles */
	char display_name[128]; /* "" for login tokens */
	time_t issued;
	time_t expires; /* 0: never */
};
void vault_token_clear(struct vault_token *t);

#define TOKEN_HASH_LEN 32

/* One token as stored. In a call, borrowed; what a store hands back is a
 * copy the caller owns (token_rec_clear). */
struct token_rec {
	unsigned char hash[TOKEN_HASH_LEN]; /* SHA-256 of the token */
	struct vault_token t;               /* claims, policies: references */
	struct tsi_chain_cert *chain;       /* the login's path; NULL: none */
	size_t nchain;
};

/* Releases r's references and chain, wiping it. Accepts NULL. */
void token_rec_clear(struct token_rec *r);

/* Says whether rec stays (nonzero) or is revoked (0), for revoke_if. */
typedef int token_keep_fn(void *arg, const struct token_rec *rec);

struct token_store;

struct token_store_ops {
	const char *name;
	/* Stores a copy of rec (references taken, chain copied). Expired
	 * records may be dropped first to make room. TSI_ERR_STORE_FULL when
	 * the store holds its maximum; TSI_ERR_EXISTS when the hash or the
	 * accessor is already there. */
	int (*insert)(struct token_store *s, const struct token_rec *rec,
	    time_t now);
	/* By token hash: TSI_ERR_NOT_FOUND, TSI_ERR_EXPIRED (expires != 0 and
	 * <= now), or TSI_OK with *out a copy (token_rec_clear). want_chain 0:
	 * out->chain left NULL (the hot path does not need it). */
	int (*lookup)(struct token_store *s,
	    const unsigned char hash[TOKEN_HASH_LEN], time_t now,
	    int want_chain, struct token_rec *out);
	/* By accessor, as lookup (always without the chain). */
	int (*lookup_accessor)(struct token_store *s, const char *accessor,
	    time_t now, struct token_rec *out);
	/* Removes the record: from return on no lookup finds it.
	 * TSI_ERR_NOT_FOUND when it was not there. */
	int (*revoke)(struct token_store *s,
	    const unsigned char hash[TOKEN_HASH_LEN]);
	int (*revoke_accessor)(struct token_store *s, const char *accessor);
	/* Revokes every record keep says no to (revoke by certificate
	 * chain); *ended (may be NULL) gets each ended record's copy for the
	 * caller to log, token_rec_clear each then free the array. Returns
	 * how many ended. keep may run under the store's locks: it must not
	 * call the store. */
	size_t (*revoke_if)(struct token_store *s, token_keep_fn *keep,
	    void *arg, struct token_rec **ended);
	/* Drops the records expired at now; returns how many. */
	size_t (*expire)(struct token_store *s, time_t now);
	/* Records held (expired ones not yet dropped included). */
	size_t (*count)(struct token_store *s);
	void (*close)(struct token_store *s); /* wipes; accepts NULL */
};

struct token_store {
	const struct token_store_ops *ops;
};

struct token_store_opts {
	size_t max_tokens; /* 0: 1,000,000 */
};

struct token_backend {
	const char *scheme;
	int (*open)(const char *where, const struct token_store_opts *opts,
	    struct token_store **out);
};

/* token_mem.c */
extern const struct token_backend token_backend_memory;

/* Opens the store named by url ("memory://"). TSI_ERR_INVALID_ARG for a
 * URL no backend takes. opts may be NULL. *out: (*out)->ops->close. */
int token_store_open(const char *url, const struct token_store_opts *opts,
    struct token_store **out);

#endif /* TSI_VAULT_TOKEN_STORE_H */
