/*
 * tokens.h - the in-memory table of client tokens (tokens.c): what a token
 * stands for, made at login or by auth/token/create, looked up on every
 * request. Lookups cost one SHA-256 and a table lookup; no disk.
 */
#ifndef TSI_VAULT_TOKENS_H
#define TSI_VAULT_TOKENS_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "token_store.h"
#include "tsi/jwt.h"

#define VAULT_TOKEN_MAX 256 /* longer X-Vault-Token values are refused unread */

struct vault_tokens;

/* What vault_tokens_add makes. Everything borrowed for the call. */
struct vault_token_spec {
	const char *fixed; /* NULL: random; else this value (root) */
	const char *role;
	const char *display_name; /* NULL: "" */
	json_t *claims;           /* referenced */
	json_t *policies;         /* referenced */
	long ttl;                 /* <= 0: never expires */
	time_t expires_at;        /* > 0: never later than this instant */
	int root;
	int created;
	/* The verified certificate path the token came through (copied):
	 * vault_tokens_end_untrusted ends the token once it fails. */
	const struct tsi_chain_cert *chain;
	size_t nchain;
};

int vault_tokens_new(size_t max_tokens, struct vault_tokens **out);
void vault_tokens_free(struct vault_tokens *t); /* wipes every entry */
/* Creates a token (fixed != NULL: use that value, for the root token).
 * claims and policies are borrowed (referenced). *token: tsi_strfree. */
int vault_tokens_create(struct vault_tokens *t, const char *fixed,
    const char *role, json_t *claims, json_t *policies, long ttl, int root,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1]);
/* TSI_ERR_NOT_FOUND (unknown), TSI_ERR_EXPIRED, or TSI_OK with *out filled.
 * Costs one SHA-256 and a table lookup: no disk. */
int vault_tokens_lookup(struct vault_tokens *t, const char *token,
    struct vault_token *out);
/* Removes the token: from return on, every lookup of it fails (as for an
 * unknown token). TSI_ERR_NOT_FOUND when it was not there (never issued,
 * expired and swept, or revoked already). */
int vault_tokens_revoke(struct vault_tokens *t, const char *token);
size_t vault_tokens_count(struct vault_tokens *t);
/* As vault_tokens_create, with every attribute. *token: tsi_strfree. */
int vault_tokens_add(struct vault_tokens *t, const struct vault_token_spec *s,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1]);
/* By accessor (an admin's view): TSI_ERR_NOT_FOUND, TSI_ERR_EXPIRED, or
 * TSI_OK with *out filled (vault_token_clear). Walks the whole table. */
int vault_tokens_lookup_accessor(struct vault_tokens *t, const char *accessor,
    struct vault_token *out);
/* Removes the token with this accessor; TSI_ERR_NOT_FOUND when none. */
int vault_tokens_revoke_accessor(struct vault_tokens *t, const char *accessor);
/* Ends every token whose certificate path trust no longer accepts
 * (tsi_trust_chain_check; trust NULL: no CA, every such token ends). Tokens
 * made without a path (root, created) stay. Returns how many ended; each is
 * logged with its accessor. */
size_t vault_tokens_end_untrusted(struct vault_tokens *t,
    const struct tsi_trust *trust);
/* Whether the token still passes trust (for a login that raced a reload):
 * TSI_OK, TSI_ERR_BAD_TOKEN, or TSI_ERR_NOT_FOUND. */
int vault_tokens_chain_check(struct vault_tokens *t, const char *token,
    const struct tsi_trust *trust);

#endif /* TSI_VAULT_TOKENS_H */
