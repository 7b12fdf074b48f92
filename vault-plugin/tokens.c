/*
 * tokens.c - the token table, in memory only.
 *
 * A token is "hvs." followed by 256 random bits (base64url). The table keeps
 * SHA-256(token), never the token, so a memory dump does not hand out live
 * tokens; lookups cost one hash and one bucket walk, no disk write.
 *
 * Tokens do not survive a restart, on purpose: they are short-lived (the
 * role's token_ttl, minutes), the sidecar can always log in again with a
 * fresh JWT, and not persisting them means no token store on disk to steal or
 * to keep consistent between replicas. A stale token gets the same clean 403
 * as any unknown token.
 */
#include "vault.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 65536u   /* power of two */
#define TOKEN_PREFIX "hvs."

struct entry {
	struct entry *next;
	unsigned char hash[32];
	struct vault_token t;
};

struct vault_tokens {
	pthread_rwlock_t lock;
	struct entry **buckets;
	size_t count;
	size_t max;
	unsigned long inserts;
};

void
vault_token_clear(struct vault_token *t)
{
	if (t == NULL)
		return;
	json_decref(t->claims);
	json_decref(t->policies);
	memset(t, 0, sizeof(*t));
}

int
vault_tokens_new(size_t max_tokens, struct vault_tokens **out)
{
	struct vault_tokens *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return TSI_ERR_ALLOC;
	if ((t->buckets = calloc(NBUCKETS, sizeof(*t->buckets))) == NULL) {
		free(t);
		return TSI_ERR_ALLOC;
	}
	pthread_rwlock_init(&t->lock, NULL);
	t->max = max_tokens ? max_tokens : 1000000;
	*out = t;
	return TSI_OK;
}

static void
entry_free(struct entry *e)
{
	vault_token_clear(&e->t);
	OPENSSL_clear_free(e, sizeof(*e));
}

void
vault_tokens_free(struct vault_tokens *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < NBUCKETS; i++) {
		struct entry *e = t->buckets[i], *n;
		for (; e != NULL; e = n) {
			n = e->next;
			entry_free(e);
		}
	}
	free(t->buckets);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

static unsigned
bucket_of(const unsigned char hash[32])
{
	return ((unsigned)hash[0] << 8 | hash[1]) & (NBUCKETS - 1);
}

/* Drops expired entries. Caller holds the write lock. */
static void
sweep(struct vault_tokens *t, time_t now)
{
	size_t i;

	for (i = 0; i < NBUCKETS; i++) {
		struct entry **pp = &t->buckets[i];
		while (*pp != NULL) {
			struct entry *e = *pp;
			if (e->t.expires != 0 && e->t.expires <= now) {
				*pp = e->next;
				entry_free(e);
				t->count--;
			} else
				pp = &e->next;
		}
	}
}

int
vault_tokens_create(struct vault_tokens *t, const char *fixed,
    const char *role, json_t *claims, json_t *policies, long ttl, int root,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1])
{
	char rnd[64];
	char *tok = NULL;
	struct entry *e = NULL;
	size_t len;
	time_t now = time(NULL);
	int r;

	if (fixed != NULL) {
		if (strlen(fixed) == 0 || strlen(fixed) > VAULT_TOKEN_MAX)
			return TSI_ERR_INVALID_ARG;
		if ((tok = strdup(fixed)) == NULL)
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
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	SHA256((const unsigned char *)tok, strlen(tok), e->hash);
	/* The accessor is independent random: knowing it reveals nothing
	 * about the token. */
	if ((r = vault_random_b64(18, e->t.accessor, sizeof(e->t.accessor))) !=
	    TSI_OK)
		goto out;
	snprintf(e->t.role, sizeof(e->t.role), "%s", role ? role : "");
	e->t.claims = claims ? json_incref(claims) : json_object();
	e->t.policies = policies ? json_incref(policies) : json_array();
	e->t.root = root;
	e->t.issued = now;
	e->t.expires = ttl > 0 ? now + ttl : 0;
	if (e->t.claims == NULL || e->t.policies == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}

	pthread_rwlock_wrlock(&t->lock);
	if (t->count >= t->max || (++t->inserts & 1023) == 0)
		sweep(t, now);
	if (t->count >= t->max) {
		pthread_rwlock_unlock(&t->lock);
		tsi_log(TSI_LOG_WARN, "token.table_full", TSI_LI("max", t->max));
		r = TSI_ERR_STORE_FULL;
		goto out;
	}
	e->next = t->buckets[bucket_of(e->hash)];
	t->buckets[bucket_of(e->hash)] = e;
	t->count++;
	memcpy(accessor, e->t.accessor, VAULT_ACCESSOR_LEN + 1);
	e = NULL;
	pthread_rwlock_unlock(&t->lock);
	*token = tok;
	tok = NULL;
	r = TSI_OK;
out:
	if (e != NULL)
		entry_free(e);
	tsi_strfree(tok);
	return r;
}

int
vault_tokens_lookup(struct vault_tokens *t, const char *token,
    struct vault_token *out)
{
	unsigned char hash[32];
	struct entry *e;
	int r = TSI_ERR_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	if (token == NULL || strlen(token) > VAULT_TOKEN_MAX)
		return TSI_ERR_NOT_FOUND;
	SHA256((const unsigned char *)token, strlen(token), hash);
	pthread_rwlock_rdlock(&t->lock);
	for (e = t->buckets[bucket_of(hash)]; e != NULL; e = e->next) {
		if (CRYPTO_memcmp(e->hash, hash, sizeof(hash)) != 0)
			continue;
		if (e->t.expires != 0 && e->t.expires <= time(NULL)) {
			r = TSI_ERR_EXPIRED;
			break;
		}
		*out = e->t;
		json_incref(out->claims);
		json_incref(out->policies);
		r = TSI_OK;
		break;
	}
	pthread_rwlock_unlock(&t->lock);
	return r;
}

size_t
vault_tokens_count(struct vault_tokens *t)
{
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->count;
	pthread_rwlock_unlock(&t->lock);
	return n;
}
