/*
 * tokens.c - client tokens: making them, finding them, ending them.
 *
 * A token is "hvs." followed by 256 random bits (base64url). Where tokens
 * are kept is a token store (token_store.h; in this process's memory by
 * default): this file gives a store only SHA-256(token), never the token,
 * so a memory dump or a database does not hand out live tokens; a lookup
 * costs one hash and one store lookup, no disk write.
 *
 * A token made by a login remembers the certificate path its JWT verified
 * through (SHA-256 and serial of each certificate, which of them were
 * trusted CAs): after a reload revokes one of them or drops the CA, the
 * token ends with the trust it came from (vault_tokens_end_untrusted),
 * although its JWT might have lived on for up to an hour.
 */
#include "vault.h"
#include "crypto.h"
#include "token_store.h"
#include "tokens.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "hvs."

struct vault_tokens {
	struct token_store *s;
};

int
vault_tokens_new(size_t max_tokens, struct vault_tokens **out)
{
	struct token_store_opts o = { max_tokens };
	struct vault_tokens *t;
	int r;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return TSI_ERR_ALLOC;
	if ((r = token_store_open("memory://", &o, &t->s)) != TSI_OK) {
		free(t);
		return r;
	}
	*out = t;
	return TSI_OK;
}

void
vault_tokens_free(struct vault_tokens *t)
{
	if (t == NULL)
		return;
	t->s->ops->close(t->s);
	free(t);
}

/* The store's key of token; 0 when it cannot be one of ours. */
static int
token_hash(const char *token, unsigned char hash[TOKEN_HASH_LEN])
{
	if (token == NULL || strlen(token) > VAULT_TOKEN_MAX)
		return 0;
	SHA256((const unsigned char *)token, strlen(token), hash);
	return 1;
}

int
vault_tokens_create(struct vault_tokens *t, const char *fixed, const char *role,
    json_t *claims, json_t *policies, long ttl, int root, char **token,
    char accessor[VAULT_ACCESSOR_LEN + 1])
{
	struct vault_token_spec s;

	memset(&s, 0, sizeof(s));
	s.fixed = fixed;
	s.role = role;
	s.claims = claims;
	s.policies = policies;
	s.ttl = ttl;
	s.root = root;
	return vault_tokens_add(t, &s, token, accessor);
}

int
vault_tokens_add(struct vault_tokens *t, const struct vault_token_spec *s,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1])
{
	struct token_rec rec;
	char rnd[64];
	char *tok = NULL;
	size_t len;
	time_t now = time(NULL);
	int r;

	memset(&rec, 0, sizeof(rec));
	if (s->nchain > 0 && (s->nchain > TSI_CHAIN_MAX || s->chain == NULL))
		return TSI_ERR_INVALID_ARG;
	if (s->fixed != NULL) {
		if (strlen(s->fixed) == 0 || strlen(s->fixed) > VAULT_TOKEN_MAX)
			return TSI_ERR_INVALID_ARG;
		if ((tok = strdup(s->fixed)) == NULL)
			return TSI_ERR_ALLOC;
	} else {
		if ((r = vault_random_b64(32, rnd, sizeof(rnd))) != TSI_OK)
			return r;
		len = strlen(TOKEN_PREFIX) + strlen(rnd) + 1;
		if ((tok = malloc(len)) == NULL) {
			OPENSSL_cleanse(rnd, sizeof(rnd));
			return TSI_ERR_ALLOC;
		}
		snprintf(tok, len, "%s%s", TOKEN_PREFIX, rnd);
		OPENSSL_cleanse(rnd, sizeof(rnd));
	}
	SHA256((const unsigned char *)tok, strlen(tok), rec.hash);
	/* The accessor is independent random: knowing it reveals nothing
	 * about the token. */
	if ((r = vault_random_b64(18, rec.t.accessor,
	         sizeof(rec.t.accessor))) != TSI_OK)
		goto out;
	snprintf(rec.t.role, sizeof(rec.t.role), "%s", s->role ? s->role : "");
	snprintf(rec.t.display_name, sizeof(rec.t.display_name), "%s",
	    s->display_name ? s->display_name : "");
	rec.t.claims = s->claims ? json_incref(s->claims) : json_object();
	rec.t.policies = s->policies ? json_incref(s->policies) : json_array();
	rec.t.root = s->root;
	rec.t.created = s->created;
	rec.t.issued = now;
	rec.t.expires = s->ttl > 0 ? now + s->ttl : 0;
	if (s->expires_at > 0 &&
	    (rec.t.expires == 0 || rec.t.expires > s->expires_at))
		rec.t.expires = s->expires_at;
	if (rec.t.claims == NULL || rec.t.policies == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	/* Borrowed for the call: the store copies it. */
	rec.chain = (struct tsi_chain_cert *)s->chain;
	rec.nchain = s->nchain;
	r = t->s->ops->insert(t->s, &rec, now);
	rec.chain = NULL;
	rec.nchain = 0;
	if (r != TSI_OK)
		goto out;
	memcpy(accessor, rec.t.accessor, VAULT_ACCESSOR_LEN + 1);
	*token = tok;
	tok = NULL;
	r = TSI_OK;
out:
	token_rec_clear(&rec);
	tsi_strfree(tok);
	return r;
}

int
vault_tokens_lookup(struct vault_tokens *t, const char *token,
    struct vault_token *out)
{
	unsigned char hash[TOKEN_HASH_LEN];
	struct token_rec rec;
	int r;

	memset(out, 0, sizeof(*out));
	if (!token_hash(token, hash))
		return TSI_ERR_NOT_FOUND;
	r = t->s->ops->lookup(t->s, hash, time(NULL), 0, &rec);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r != TSI_OK)
		return r;
	*out = rec.t; /* references moved */
	return TSI_OK;
}

int
vault_tokens_revoke(struct vault_tokens *t, const char *token)
{
	unsigned char hash[TOKEN_HASH_LEN];
	int r;

	if (!token_hash(token, hash))
		return TSI_ERR_NOT_FOUND;
	r = t->s->ops->revoke(t->s, hash);
	OPENSSL_cleanse(hash, sizeof(hash));
	return r;
}

size_t
vault_tokens_count(struct vault_tokens *t)
{
	return t->s->ops->count(t->s);
}

int
vault_tokens_lookup_accessor(struct vault_tokens *t, const char *accessor,
    struct vault_token *out)
{
	struct token_rec rec;
	int r;

	memset(out, 0, sizeof(*out));
	if (accessor == NULL || strlen(accessor) != VAULT_ACCESSOR_LEN)
		return TSI_ERR_NOT_FOUND;
	if ((r = t->s->ops->lookup_accessor(t->s, accessor, time(NULL),
	         &rec)) != TSI_OK)
		return r;
	*out = rec.t; /* references moved */
	return TSI_OK;
}

int
vault_tokens_revoke_accessor(struct vault_tokens *t, const char *accessor)
{
	if (accessor == NULL || strlen(accessor) != VAULT_ACCESSOR_LEN)
		return TSI_ERR_NOT_FOUND;
	return t->s->ops->revoke_accessor(t->s, accessor);
}

/*
 * One sweep's verdicts per certificate: tokens share their node and CA
 * certificates (and a session's tokens their leaf), so each distinct
 * certificate is checked against the revocation list once per sweep, not
 * once per token, while shard locks are held. Direct-mapped by the
 * certificate's hash; a collision just checks again.
 */
#define MEMO_SLOTS 4096u

struct memo_slot {
	unsigned char sha256[32];
	int used;
	int ok;
};

static int
cert_ok(const struct tsi_trust *trust, const struct tsi_chain_cert *c,
    struct memo_slot *memo, char *detail, size_t detlen)
{
	struct memo_slot *m = NULL;
	int ok;

	if (memo != NULL) {
		m = &memo[((unsigned)c->sha256[0] << 8 | c->sha256[1]) &
		    (MEMO_SLOTS - 1)];
		if (m->used && memcmp(m->sha256, c->sha256, 32) == 0 && m->ok)
			return 1;
	}
	ok = tsi_trust_chain_check(trust, c, 1, detail, detlen) == TSI_OK;
	if (m != NULL) {
		memcpy(m->sha256, c->sha256, 32);
		m->used = 1;
		m->ok = ok;
	}
	return ok;
}

static int
entry_trusted(const struct token_rec *e, const struct tsi_trust *trust,
    struct memo_slot *memo, char *detail, size_t detlen)
{
	size_t i;

	if (e->nchain == 0)
		return TSI_OK;
	if (trust == NULL) {
		snprintf(detail, detlen, "no trusted CA configured");
		return TSI_ERR_BAD_TOKEN;
	}
	for (i = 0; i < e->nchain; i++)
		if (!cert_ok(trust, &e->chain[i], memo, detail, detlen))
			/* Again on the whole path, for a reason that names
			 * the certificate's depth. */
			return tsi_trust_chain_check(trust, e->chain, e->nchain,
			           detail, detlen) == TSI_OK
			    ? TSI_OK
			    : TSI_ERR_BAD_TOKEN;
	return TSI_OK;
}

struct trust_arg {
	const struct tsi_trust *trust;
	struct memo_slot *memo;
};

/* Runs under the store's locks: checks only, logs nothing. */
static int
keep_trusted(void *arg, const struct token_rec *rec)
{
	struct trust_arg *a = arg;
	char detail[256];

	return entry_trusted(rec, a->trust, a->memo, detail, sizeof(detail)) ==
	    TSI_OK;
}

size_t
vault_tokens_end_untrusted(struct vault_tokens *t,
    const struct tsi_trust *trust)
{
	struct trust_arg a;
	struct token_rec *ended = NULL;
	char detail[256];
	size_t i, n;

	/* Without room for the memo every certificate is checked. */
	a.trust = trust;
	a.memo = calloc(MEMO_SLOTS, sizeof(*a.memo));
	n = t->s->ops->revoke_if(t->s, keep_trusted, &a, &ended);
	for (i = 0; i < n; i++) {
		/* Checked again, outside the store's locks, for the reason. */
		if (ended != NULL)
			(void)entry_trusted(&ended[i], trust, NULL, detail,
			    sizeof(detail));
		tsi_log(TSI_LOG_WARN, "token.ended_untrusted",
		    TSI_LS("accessor", ended ? ended[i].t.accessor : "?"),
		    TSI_LS("role", ended ? ended[i].t.role : "?"),
		    TSI_LS("reason", ended ? detail : "(not kept)"));
		if (ended != NULL)
			token_rec_clear(&ended[i]);
	}
	free(ended);
	free(a.memo);
	return n;
}

int
vault_tokens_chain_check(struct vault_tokens *t, const char *token,
    const struct tsi_trust *trust)
{
	unsigned char hash[TOKEN_HASH_LEN];
	struct token_rec rec;
	char detail[256];
	int r;

	if (!token_hash(token, hash))
		return TSI_ERR_NOT_FOUND;
	r = t->s->ops->lookup(t->s, hash, time(NULL), 1, &rec);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r != TSI_OK)
		return r == TSI_ERR_EXPIRED ? TSI_ERR_NOT_FOUND : r;
	r = entry_trusted(&rec, trust, NULL, detail, sizeof(detail)) == TSI_OK
	    ? TSI_OK
	    : TSI_ERR_BAD_TOKEN;
	token_rec_clear(&rec);
	return r;
}
