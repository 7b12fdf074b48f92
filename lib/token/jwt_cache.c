/*
 * jwt_cache.c - the chain verdict cache of the JWT verifier (see jwt_int.h
 * and docs/token-core.md "Chain verdict cache").
 *
 * Every fresh JWT of a node carries the same x5c chain, and verifying that
 * chain costs two of the three ECDSA verifications of a login (and parsing
 * its 2 KB header a quarter of the rest). The cache remembers a header whose
 * chain verified, so that a later token with a byte-identical header, under
 * the same trust generation and inside the chain's validity window, costs
 * one verification (its own signature) and the parse of its claims.
 *
 * Bounds: JWT_CACHE_SHARDS shards of JWT_CACHE_WAYS slots each; a full shard
 * evicts its least recently used verdict. Each shard has its own mutex, held
 * only to compare keys and take a reference, so threads verifying tokens of
 * different nodes rarely meet, and never wait across a signature check.
 * Equality is decided by comparing the stored text in full: the hash only
 * picks the shard and skips mismatches, so a hash collision costs a miss,
 * never a wrong answer.
 */
#include "jwt_int.h"
#include "tsi/err.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define JWT_CACHE_SHARDS 16 /* power of two */
#define JWT_CACHE_WAYS 64   /* 1,024 verdicts in all */

struct slot {
	struct jwt_verdict *v; /* one reference, or NULL */
	unsigned long long used;
};

struct shard {
	pthread_mutex_t mu;
	unsigned long long tick;
	unsigned long long hits, misses, evictions;
	struct slot slot[JWT_CACHE_WAYS];
} __attribute__((aligned(64)));

struct jwt_cache {
	uint64_t seed;
	struct shard shard[JWT_CACHE_SHARDS];
};

int
jwt_cache_new(struct jwt_cache **out)
{
	struct jwt_cache *c;
	size_t i;

	if (out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((c = aligned_alloc(64, sizeof(*c))) == NULL)
		return TSI_ERR_ALLOC;
	memset(c, 0, sizeof(*c));
	/* A secret seed: nobody can aim many chains at one shard. */
	if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1) {
		free(c);
		return TSI_ERR_CRYPTO;
	}
	for (i = 0; i < JWT_CACHE_SHARDS; i++)
		if (pthread_mutex_init(&c->shard[i].mu, NULL) != 0) {
			while (i-- > 0)
				pthread_mutex_destroy(&c->shard[i].mu);
			free(c);
			return TSI_ERR_INTERNAL;
		}
	*out = c;
	return TSI_OK;
}

void
jwt_cache_free(struct jwt_cache *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < JWT_CACHE_SHARDS; i++) {
		for (j = 0; j < JWT_CACHE_WAYS; j++)
			jwt_verdict_unref(c->shard[i].slot[j].v);
		pthread_mutex_destroy(&c->shard[i].mu);
	}
	free(c);
}

/* Eight bytes a step from a secret offset, each step multiplied and
 * folded, the tail byte by byte, then mixed. A 1.8 KB header costs about a
 * tenth of byte-wise FNV-1a; the hash only picks a shard and skips
 * mismatches (equality is a full compare), so it needs to spread, not to
 * resist more than the secret seed gives. */
void
jwt_cache_hash(const struct jwt_cache *c, struct jwt_key *k)
{
	const unsigned char *b = (const unsigned char *)k->s;
	uint64_t h = c->seed ^ 0xcbf29ce484222325ULL, w;
	size_t i = 0;

	for (; k->len - i >= 8; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	for (; i < k->len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	h ^= (uint64_t)k->len;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	k->h = h;
}

static struct shard *
shard_of(struct jwt_cache *c, uint64_t h)
{
	return &c->shard[(h >> 32) & (JWT_CACHE_SHARDS - 1)];
}

/* Nonzero when v was made for exactly the text of k. */
static int
same_key(const struct jwt_verdict *v, const struct jwt_key *k)
{
	return v->h == k->h && v->textlen == k->len &&
	    memcmp(v->text, k->s, k->len) == 0;
}

static int
same_verdict_key(const struct jwt_verdict *a, const struct jwt_verdict *b)
{
	return a->h == b->h && a->textlen == b->textlen &&
	    memcmp(a->text, b->text, a->textlen) == 0;
}

struct jwt_verdict *
jwt_cache_get(struct jwt_cache *c, const struct jwt_key *k, uint64_t gen,
    long long now)
{
	struct shard *sh = shard_of(c, k->h);
	struct jwt_verdict *v = NULL;
	size_t i;

	pthread_mutex_lock(&sh->mu);
	for (i = 0; i < JWT_CACHE_WAYS; i++) {
		struct slot *sl = &sh->slot[i];

		if (sl->v == NULL || !same_key(sl->v, k))
			continue;
		/* Made under other trust, or outside its window: not an answer.
		 * The slot stays; a fresh verdict for the key replaces it. */
		if (sl->v->gen == gen && sl->v->not_before <= now &&
		    now < sl->v->not_after) {
			v = sl->v;
			jwt_verdict_ref(v);
			sl->used = ++sh->tick;
		}
		break;
	}
	if (v != NULL)
		sh->hits++;
	else
		sh->misses++;
	pthread_mutex_unlock(&sh->mu);
	return v;
}

struct jwt_verdict *
jwt_verdict_new(const struct jwt_key *k)
{
	struct jwt_verdict *v;

	if ((v = calloc(1, sizeof(*v))) == NULL ||
	    (v->text = malloc(k->len ? k->len : 1)) == NULL) {
		free(v);
		return NULL;
	}
	memcpy(v->text, k->s, k->len);
	v->textlen = k->len;
	v->h = k->h;
	v->refs = 1;
	return v;
}

void
jwt_verdict_ref(struct jwt_verdict *v)
{
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
}

void
jwt_verdict_unref(struct jwt_verdict *v)
{
	if (v == NULL || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	EVP_PKEY_CTX_free(v->verify);
	EVP_PKEY_free(v->leaf);
	tsi_location_clear(&v->loc);
	free(v->text);
	free(v);
}

void
jwt_cache_put(struct jwt_cache *c, struct jwt_verdict *v)
{
	struct shard *sh = shard_of(c, v->h);
	struct jwt_verdict *old;
	struct slot *victim = NULL;
	size_t i;

	jwt_verdict_ref(v);
	pthread_mutex_lock(&sh->mu);
	for (i = 0; i < JWT_CACHE_WAYS; i++) {
		struct slot *sl = &sh->slot[i];

		if (sl->v != NULL && same_verdict_key(sl->v, v)) {
			victim = sl; /* a fresher verdict for the same chain */
			break;
		}
		if (sl->v == NULL) {
			if (victim == NULL || victim->v != NULL)
				victim = sl;
		} else if (victim == NULL ||
		    (victim->v != NULL && sl->used < victim->used))
			victim = sl;
	}
	old = victim->v;
	if (old != NULL && !same_verdict_key(old, v))
		sh->evictions++;
	victim->v = v;
	victim->used = ++sh->tick;
	pthread_mutex_unlock(&sh->mu);
	jwt_verdict_unref(old); /* holders keep their own references */
}

void
jwt_cache_stats(struct jwt_cache *c, unsigned long long *hits,
    unsigned long long *misses, unsigned long long *entries,
    unsigned long long *evictions)
{
	size_t i, j;

	*hits = *misses = *entries = *evictions = 0;
	for (i = 0; i < JWT_CACHE_SHARDS; i++) {
		struct shard *sh = &c->shard[i];

		pthread_mutex_lock(&sh->mu);
		*hits += sh->hits;
		*misses += sh->misses;
		*evictions += sh->evictions;
		for (j = 0; j < JWT_CACHE_WAYS; j++)
			*entries += sh->slot[j].v != NULL;
		pthread_mutex_unlock(&sh->mu);
	}
}
