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
 *
 * A token made by a login remembers the certificate path its JWT verified
 * through (SHA-256 and serial of each certificate, which of them were
 * trusted CAs): after a reload revokes one of them or drops the CA, the
 * token ends with the trust it came from (vault_tokens_end_untrusted),
 * although its JWT might have lived on for up to an hour.
 */
#include "vault.h"
#include "crypto.h"
#include "tokens.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 65536u   /* power of two */
#define NSHARDS 64u       /* power of two, divides NBUCKETS */
#define SHARD_BUCKETS (NBUCKETS / NSHARDS)
#define SWEEP_EVERY 256u  /* inserts between sweeps of one shard */
#define TOKEN_PREFIX "hvs."

struct entry {
	struct entry *next;
	unsigned char hash[32];
	struct vault_token t;
	struct tsi_chain_cert *chain;   /* owned; NULL when none */
	size_t nchain;
};

/*
 * The table is split into NSHARDS lock domains of SHARD_BUCKETS buckets, so
 * that a login's insert and the KV reads' lookups almost never wait for
 * each other: a wait here is a futex sleep and wake-up, which on this kind
 * of host costs more than the lookup itself.
 */
struct shard {
	pthread_rwlock_t lock;
	struct entry **buckets;       /* SHARD_BUCKETS */
} __attribute__((aligned(64)));

struct vault_tokens {
	struct shard shard[NSHARDS];
	size_t count;                 /* atomic */
	size_t max;
	unsigned long inserts;        /* atomic */
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
	size_t i;

	if ((t = aligned_alloc(64, sizeof(*t))) == NULL)
		return TSI_ERR_ALLOC;
	memset(t, 0, sizeof(*t));
	for (i = 0; i < NSHARDS; i++) {
		if ((t->shard[i].buckets = calloc(SHARD_BUCKETS,
		    sizeof(*t->shard[i].buckets))) == NULL) {
			while (i-- > 0) {
				free(t->shard[i].buckets);
				pthread_rwlock_destroy(&t->shard[i].lock);
			}
			free(t);
			return TSI_ERR_ALLOC;
		}
		pthread_rwlock_init(&t->shard[i].lock, NULL);
	}
	t->max = max_tokens ? max_tokens : 1000000;
	*out = t;
	return TSI_OK;
}

static void
entry_free(struct entry *e)
{
	free(e->chain);
	vault_token_clear(&e->t);
	OPENSSL_clear_free(e, sizeof(*e));
}

void
vault_tokens_free(struct vault_tokens *t)
{
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < NSHARDS; i++) {
		for (j = 0; j < SHARD_BUCKETS; j++) {
			struct entry *e = t->shard[i].buckets[j], *n;
			for (; e != NULL; e = n) {
				n = e->next;
				entry_free(e);
			}
		}
		free(t->shard[i].buckets);
		pthread_rwlock_destroy(&t->shard[i].lock);
	}
	free(t);
}

/* The hash is SHA-256 of 256 random bits: its bytes are uniform. */
static struct shard *
shard_of(struct vault_tokens *t, const unsigned char hash[32])
{
	return &t->shard[hash[0] & (NSHARDS - 1)];
}

static unsigned
bucket_of(const unsigned char hash[32])
{
	return ((unsigned)hash[1] << 8 | hash[2]) & (SHARD_BUCKETS - 1);
}

/* Drops the expired entries of one shard; returns how many. */
static size_t
sweep_shard(struct vault_tokens *t, struct shard *sh, time_t now)
{
	size_t i, n = 0;

	pthread_rwlock_wrlock(&sh->lock);
	for (i = 0; i < SHARD_BUCKETS; i++) {
		struct entry **pp = &sh->buckets[i];
		while (*pp != NULL) {
			struct entry *e = *pp;
			if (e->t.expires != 0 && e->t.expires <= now) {
				*pp = e->next;
				entry_free(e);
				n++;
			} else
				pp = &e->next;
		}
	}
	pthread_rwlock_unlock(&sh->lock);
	__atomic_sub_fetch(&t->count, n, __ATOMIC_RELAXED);
	return n;
}

/*
 * Reserves room for one more token: sweeps one shard every SWEEP_EVERY
 * inserts (a full pass every NSHARDS * SWEEP_EVERY), and every shard when
 * the table is full. Nonzero when there is room (count already taken).
 */
static int
reserve(struct vault_tokens *t, time_t now)
{
	unsigned long n = __atomic_add_fetch(&t->inserts, 1, __ATOMIC_RELAXED);
	size_t i;

	if (n % SWEEP_EVERY == 0)
		sweep_shard(t, &t->shard[(n / SWEEP_EVERY) % NSHARDS], now);
	if (__atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED) <= t->max)
		return 1;
	for (i = 0; i < NSHARDS; i++)
		sweep_shard(t, &t->shard[i], now);
	/* Our own reservation is still counted: room if we fit now. */
	if (__atomic_load_n(&t->count, __ATOMIC_RELAXED) <= t->max)
		return 1;
	__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	return 0;
}

int
vault_tokens_create(struct vault_tokens *t, const char *fixed,
    const char *role, json_t *claims, json_t *policies, long ttl, int root,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1])
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
	char rnd[64];
	char *tok = NULL;
	struct entry *e = NULL;
	struct shard *sh;
	size_t len;
	time_t now = time(NULL);
	int r;

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
	snprintf(e->t.role, sizeof(e->t.role), "%s", s->role ? s->role : "");
	snprintf(e->t.display_name, sizeof(e->t.display_name), "%s",
	    s->display_name ? s->display_name : "");
	e->t.claims = s->claims ? json_incref(s->claims) : json_object();
	e->t.policies = s->policies ? json_incref(s->policies) : json_array();
	e->t.root = s->root;
	e->t.created = s->created;
	e->t.issued = now;
	e->t.expires = s->ttl > 0 ? now + s->ttl : 0;
	if (s->expires_at > 0 && (e->t.expires == 0 ||
	    e->t.expires > s->expires_at))
		e->t.expires = s->expires_at;
	if (e->t.claims == NULL || e->t.policies == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (s->nchain > 0) {
		if (s->nchain > TSI_CHAIN_MAX || s->chain == NULL) {
			r = TSI_ERR_INVALID_ARG;
			goto out;
		}
		if ((e->chain = calloc(s->nchain, sizeof(*e->chain))) == NULL) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		memcpy(e->chain, s->chain, s->nchain * sizeof(*e->chain));
		e->nchain = s->nchain;
	}

	if (!reserve(t, now)) {
		tsi_log(TSI_LOG_WARN, "token.table_full", TSI_LI("max", t->max));
		r = TSI_ERR_STORE_FULL;
		goto out;
	}
	sh = shard_of(t, e->hash);
	pthread_rwlock_wrlock(&sh->lock);
	e->next = sh->buckets[bucket_of(e->hash)];
	sh->buckets[bucket_of(e->hash)] = e;
	memcpy(accessor, e->t.accessor, VAULT_ACCESSOR_LEN + 1);
	e = NULL;
	pthread_rwlock_unlock(&sh->lock);
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
	struct shard *sh;
	struct entry *e;
	int r = TSI_ERR_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	if (token == NULL || strlen(token) > VAULT_TOKEN_MAX)
		return TSI_ERR_NOT_FOUND;
	SHA256((const unsigned char *)token, strlen(token), hash);
	sh = shard_of(t, hash);
	pthread_rwlock_rdlock(&sh->lock);
	for (e = sh->buckets[bucket_of(hash)]; e != NULL; e = e->next) {
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
	pthread_rwlock_unlock(&sh->lock);
	return r;
}

int
vault_tokens_revoke(struct vault_tokens *t, const char *token)
{
	unsigned char hash[32];
	struct shard *sh;
	struct entry **pp, *e = NULL;

	if (token == NULL || strlen(token) > VAULT_TOKEN_MAX)
		return TSI_ERR_NOT_FOUND;
	SHA256((const unsigned char *)token, strlen(token), hash);
	sh = shard_of(t, hash);
	pthread_rwlock_wrlock(&sh->lock);
	for (pp = &sh->buckets[bucket_of(hash)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (CRYPTO_memcmp((*pp)->hash, hash, sizeof(hash)) == 0) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	pthread_rwlock_unlock(&sh->lock);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (e == NULL)
		return TSI_ERR_NOT_FOUND;
	entry_free(e);
	__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	return TSI_OK;
}

size_t
vault_tokens_count(struct vault_tokens *t)
{
	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

/* Copies e's token into out (references taken). */
static int
entry_view(const struct entry *e, time_t now, struct vault_token *out)
{
	if (e->t.expires != 0 && e->t.expires <= now)
		return TSI_ERR_EXPIRED;
	*out = e->t;
	json_incref(out->claims);
	json_incref(out->policies);
	return TSI_OK;
}

int
vault_tokens_lookup_accessor(struct vault_tokens *t, const char *accessor,
    struct vault_token *out)
{
	size_t i, j;
	int r = TSI_ERR_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	if (accessor == NULL || strlen(accessor) != VAULT_ACCESSOR_LEN)
		return TSI_ERR_NOT_FOUND;
	for (i = 0; i < NSHARDS && r == TSI_ERR_NOT_FOUND; i++) {
		struct shard *sh = &t->shard[i];
		pthread_rwlock_rdlock(&sh->lock);
		for (j = 0; j < SHARD_BUCKETS && r == TSI_ERR_NOT_FOUND; j++) {
			struct entry *e;
			for (e = sh->buckets[j]; e != NULL; e = e->next)
				if (strcmp(e->t.accessor, accessor) == 0) {
					r = entry_view(e, time(NULL), out);
					break;
				}
		}
		pthread_rwlock_unlock(&sh->lock);
	}
	return r;
}

int
vault_tokens_revoke_accessor(struct vault_tokens *t, const char *accessor)
{
	struct entry *e = NULL;
	size_t i, j;

	if (accessor == NULL || strlen(accessor) != VAULT_ACCESSOR_LEN)
		return TSI_ERR_NOT_FOUND;
	for (i = 0; i < NSHARDS && e == NULL; i++) {
		struct shard *sh = &t->shard[i];
		pthread_rwlock_wrlock(&sh->lock);
		for (j = 0; j < SHARD_BUCKETS && e == NULL; j++) {
			struct entry **pp;
			for (pp = &sh->buckets[j]; *pp != NULL;
			    pp = &(*pp)->next)
				if (strcmp((*pp)->t.accessor, accessor) == 0) {
					e = *pp;
					*pp = e->next;
					break;
				}
		}
		pthread_rwlock_unlock(&sh->lock);
	}
	if (e == NULL)
		return TSI_ERR_NOT_FOUND;
	entry_free(e);
	__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	return TSI_OK;
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
entry_trusted(const struct entry *e, const struct tsi_trust *trust,
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
			return tsi_trust_chain_check(trust, e->chain,
			    e->nchain, detail, detlen) == TSI_OK ? TSI_OK :
			    TSI_ERR_BAD_TOKEN;
	return TSI_OK;
}

size_t
vault_tokens_end_untrusted(struct vault_tokens *t,
    const struct tsi_trust *trust)
{
	struct memo_slot *memo;
	char detail[256];
	size_t i, j, n = 0;

	/* Without room for the memo every certificate is checked. */
	memo = calloc(MEMO_SLOTS, sizeof(*memo));
	for (i = 0; i < NSHARDS; i++) {
		struct shard *sh = &t->shard[i];
		size_t here = 0;
		pthread_rwlock_wrlock(&sh->lock);
		for (j = 0; j < SHARD_BUCKETS; j++) {
			struct entry **pp = &sh->buckets[j];
			while (*pp != NULL) {
				struct entry *e = *pp;
				if (entry_trusted(e, trust, memo, detail,
				    sizeof(detail)) == TSI_OK) {
					pp = &e->next;
					continue;
				}
				*pp = e->next;
				tsi_log(TSI_LOG_WARN, "token.ended_untrusted",
				    TSI_LS("accessor", e->t.accessor),
				    TSI_LS("role", e->t.role),
				    TSI_LS("reason", detail));
				entry_free(e);
				here++;
			}
		}
		pthread_rwlock_unlock(&sh->lock);
		__atomic_sub_fetch(&t->count, here, __ATOMIC_RELAXED);
		n += here;
	}
	free(memo);
	return n;
}

int
vault_tokens_chain_check(struct vault_tokens *t, const char *token,
    const struct tsi_trust *trust)
{
	unsigned char hash[32];
	char detail[256];
	struct shard *sh;
	struct entry *e;
	int r = TSI_ERR_NOT_FOUND;

	if (token == NULL || strlen(token) > VAULT_TOKEN_MAX)
		return TSI_ERR_NOT_FOUND;
	SHA256((const unsigned char *)token, strlen(token), hash);
	sh = shard_of(t, hash);
	pthread_rwlock_rdlock(&sh->lock);
	for (e = sh->buckets[bucket_of(hash)]; e != NULL; e = e->next)
		if (CRYPTO_memcmp(e->hash, hash, sizeof(hash)) == 0) {
			r = entry_trusted(e, trust, NULL, detail,
			    sizeof(detail)) == TSI_OK ? TSI_OK :
			    TSI_ERR_BAD_TOKEN;
			break;
		}
	pthread_rwlock_unlock(&sh->lock);
	OPENSSL_cleanse(hash, sizeof(hash));
	return r;
}
