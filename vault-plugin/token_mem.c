/*
 * token_mem.c - the token store in this process's memory ("memory://").
 *
 * Tokens do not survive a restart, on purpose: they are short-lived (the
 * role's token_ttl, minutes), the sidecar can always log in again with a
 * fresh JWT, and not persisting them means no token store on disk to steal.
 * Several replicas need a shared backend instead (token_store.h).
 *
 * The table is split into NSHARDS lock domains of SHARD_BUCKETS buckets, so
 * that a login's insert and the KV reads' lookups almost never wait for
 * each other: a wait here is a futex sleep and wake-up, which on this kind
 * of host costs more than the lookup itself.
 */
#include "token_store.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 65536u /* power of two */
#define NSHARDS 64u     /* power of two, divides NBUCKETS */
#define SHARD_BUCKETS (NBUCKETS / NSHARDS)
#define SWEEP_EVERY 256u /* inserts between sweeps of one shard */

struct entry {
	struct entry *next;
	struct token_rec r;
};

struct shard {
	pthread_rwlock_t lock;
	struct entry **buckets; /* SHARD_BUCKETS */
} __attribute__((aligned(64)));

struct token_mem {
	struct token_store base; /* first: the interface */
	struct shard shard[NSHARDS];
	size_t count; /* atomic */
	size_t max;
	unsigned long inserts; /* atomic */
};

static void
entry_free(struct entry *e)
{
	token_rec_clear(&e->r);
	OPENSSL_clear_free(e, sizeof(*e));
}

/* The hash is SHA-256 of 256 random bits: its bytes are uniform. */
static struct shard *
shard_of(struct token_mem *t, const unsigned char hash[TOKEN_HASH_LEN])
{
	return &t->shard[hash[0] & (NSHARDS - 1)];
}

static unsigned
bucket_of(const unsigned char hash[TOKEN_HASH_LEN])
{
	return ((unsigned)hash[1] << 8 | hash[2]) & (SHARD_BUCKETS - 1);
}

static int
expired(const struct token_rec *r, time_t now)
{
	return r->t.expires != 0 && r->t.expires <= now;
}

/* A copy of r for a caller (references taken; chain only when asked). */
static int
rec_copy(const struct token_rec *r, int want_chain, struct token_rec *out)
{
	memset(out, 0, sizeof(*out));
	if (want_chain && r->nchain > 0) {
		if ((out->chain = calloc(r->nchain, sizeof(*out->chain))) ==
		    NULL)
			return TSI_ERR_ALLOC;
		memcpy(out->chain, r->chain, r->nchain * sizeof(*r->chain));
		out->nchain = r->nchain;
	}
	memcpy(out->hash, r->hash, sizeof(out->hash));
	out->t = r->t;
	json_incref(out->t.claims);
	json_incref(out->t.policies);
	return TSI_OK;
}

/* Removes every entry of one shard that drop() says to; ended (may be
 * NULL) collects them, else they are freed. Returns how many. */
typedef int drop_fn(void *arg, const struct token_rec *r);

static size_t
shard_drop(struct token_mem *t, struct shard *sh, drop_fn *drop, void *arg,
    struct entry **ended)
{
	size_t i, n = 0;

	pthread_rwlock_wrlock(&sh->lock);
	for (i = 0; i < SHARD_BUCKETS; i++) {
		struct entry **pp = &sh->buckets[i];
		while (*pp != NULL) {
			struct entry *e = *pp;
			if (!drop(arg, &e->r)) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			if (ended != NULL) {
				e->next = *ended;
				*ended = e;
			} else
				entry_free(e);
			n++;
		}
	}
	pthread_rwlock_unlock(&sh->lock);
	__atomic_sub_fetch(&t->count, n, __ATOMIC_RELAXED);
	return n;
}

static int
drop_expired(void *arg, const struct token_rec *r)
{
	return expired(r, *(const time_t *)arg);
}

/*
 * Reserves room for one more token: sweeps one shard every SWEEP_EVERY
 * inserts (a full pass every NSHARDS * SWEEP_EVERY), and every shard when
 * the table is full. Nonzero when there is room (count already taken).
 */
static int
reserve(struct token_mem *t, time_t now)
{
	unsigned long n = __atomic_add_fetch(&t->inserts, 1, __ATOMIC_RELAXED);
	size_t i;

	if (n % SWEEP_EVERY == 0)
		shard_drop(t, &t->shard[(n / SWEEP_EVERY) % NSHARDS],
		    drop_expired, &now, NULL);
	if (__atomic_add_fetch(&t->count, 1, __ATOMIC_RELAXED) <= t->max)
		return 1;
	for (i = 0; i < NSHARDS; i++)
		shard_drop(t, &t->shard[i], drop_expired, &now, NULL);
	/* Our own reservation is still counted: room if we fit now. */
	if (__atomic_load_n(&t->count, __ATOMIC_RELAXED) <= t->max)
		return 1;
	__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	return 0;
}

static int
mem_insert(struct token_store *base, const struct token_rec *rec, time_t now)
{
	struct token_mem *t = (struct token_mem *)base;
	struct entry *e, *x;
	struct shard *sh;
	unsigned b;
	int r;

	if (rec->nchain > TSI_CHAIN_MAX)
		return TSI_ERR_INVALID_ARG;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return TSI_ERR_ALLOC;
	if ((r = rec_copy(rec, 1, &e->r)) != TSI_OK) {
		entry_free(e);
		return r;
	}
	if (!reserve(t, now)) {
		tsi_log(TSI_LOG_WARN, "token.table_full",
		    TSI_LI("max", t->max));
		entry_free(e);
		return TSI_ERR_STORE_FULL;
	}
	sh = shard_of(t, e->r.hash);
	b = bucket_of(e->r.hash);
	pthread_rwlock_wrlock(&sh->lock);
	for (x = sh->buckets[b]; x != NULL; x = x->next)
		if (CRYPTO_memcmp(x->r.hash, e->r.hash, TOKEN_HASH_LEN) == 0)
			break;
	if (x == NULL) {
		e->next = sh->buckets[b];
		sh->buckets[b] = e;
		e = NULL;
	}
	pthread_rwlock_unlock(&sh->lock);
	if (e != NULL) {
		__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
		entry_free(e);
		return TSI_ERR_EXISTS;
	}
	return TSI_OK;
}

static int
mem_lookup(struct token_store *base, const unsigned char hash[TOKEN_HASH_LEN],
    time_t now, int want_chain, struct token_rec *out)
{
	struct token_mem *t = (struct token_mem *)base;
	struct shard *sh = shard_of(t, hash);
	struct entry *e;
	int r = TSI_ERR_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&sh->lock);
	for (e = sh->buckets[bucket_of(hash)]; e != NULL; e = e->next) {
		if (CRYPTO_memcmp(e->r.hash, hash, TOKEN_HASH_LEN) != 0)
			continue;
		r = expired(&e->r, now) ? TSI_ERR_EXPIRED
		                        : rec_copy(&e->r, want_chain, out);
		break;
	}
	pthread_rwlock_unlock(&sh->lock);
	return r;
}

static int
mem_lookup_accessor(struct token_store *base, const char *accessor, time_t now,
    struct token_rec *out)
{
	struct token_mem *t = (struct token_mem *)base;
	size_t i, j;
	int r = TSI_ERR_NOT_FOUND;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < NSHARDS && r == TSI_ERR_NOT_FOUND; i++) {
		struct shard *sh = &t->shard[i];
		pthread_rwlock_rdlock(&sh->lock);
		for (j = 0; j < SHARD_BUCKETS && r == TSI_ERR_NOT_FOUND; j++) {
			struct entry *e;
			for (e = sh->buckets[j]; e != NULL; e = e->next)
				if (strcmp(e->r.t.accessor, accessor) == 0) {
					r = expired(&e->r, now)
					    ? TSI_ERR_EXPIRED
					    : rec_copy(&e->r, 0, out);
					break;
				}
		}
		pthread_rwlock_unlock(&sh->lock);
	}
	return r;
}

static int
mem_revoke(struct token_store *base, const unsigned char hash[TOKEN_HASH_LEN])
{
	struct token_mem *t = (struct token_mem *)base;
	struct shard *sh = shard_of(t, hash);
	struct entry **pp, *e = NULL;

	pthread_rwlock_wrlock(&sh->lock);
	for (pp = &sh->buckets[bucket_of(hash)]; *pp != NULL;
	     pp = &(*pp)->next) {
		if (CRYPTO_memcmp((*pp)->r.hash, hash, TOKEN_HASH_LEN) == 0) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	pthread_rwlock_unlock(&sh->lock);
	if (e == NULL)
		return TSI_ERR_NOT_FOUND;
	entry_free(e);
	__atomic_sub_fetch(&t->count, 1, __ATOMIC_RELAXED);
	return TSI_OK;
}

struct by_accessor {
	const char *accessor;
	int done;
};

static int
drop_accessor(void *arg, const struct token_rec *r)
{
	struct by_accessor *a = arg;

	if (a->done || strcmp(r->t.accessor, a->accessor) != 0)
		return 0;
	a->done = 1;
	return 1;
}

static int
mem_revoke_accessor(struct token_store *base, const char *accessor)
{
	struct token_mem *t = (struct token_mem *)base;
	struct by_accessor a = { accessor, 0 };
	size_t i;

	for (i = 0; i < NSHARDS && !a.done; i++)
		shard_drop(t, &t->shard[i], drop_accessor, &a, NULL);
	return a.done ? TSI_OK : TSI_ERR_NOT_FOUND;
}

struct keep_arg {
	token_keep_fn *keep;
	void *arg;
};

static int
drop_unkept(void *arg, const struct token_rec *r)
{
	struct keep_arg *k = arg;

	return !k->keep(k->arg, r);
}

static size_t
mem_revoke_if(struct token_store *base, token_keep_fn *keep, void *arg,
    struct token_rec **ended)
{
	struct token_mem *t = (struct token_mem *)base;
	struct keep_arg k = { keep, arg };
	struct entry *list = NULL, *e;
	size_t i, n = 0;

	if (ended != NULL)
		*ended = NULL;
	for (i = 0; i < NSHARDS; i++)
		n += shard_drop(t, &t->shard[i], drop_unkept, &k, &list);
	if (ended != NULL && n > 0 &&
	    (*ended = calloc(n, sizeof(**ended))) != NULL) {
		for (i = 0, e = list; e != NULL; e = e->next, i++) {
			(*ended)[i] = e->r; /* moved */
			memset(&e->r, 0, sizeof(e->r));
		}
	}
	while (list != NULL) {
		e = list;
		list = e->next;
		entry_free(e);
	}
	return n;
}

static size_t
mem_expire(struct token_store *base, time_t now)
{
	struct token_mem *t = (struct token_mem *)base;
	size_t i, n = 0;

	for (i = 0; i < NSHARDS; i++)
		n += shard_drop(t, &t->shard[i], drop_expired, &now, NULL);
	return n;
}

static size_t
mem_count(struct token_store *base)
{
	struct token_mem *t = (struct token_mem *)base;

	return __atomic_load_n(&t->count, __ATOMIC_RELAXED);
}

static void
mem_close(struct token_store *base)
{
	struct token_mem *t = (struct token_mem *)base;
	size_t i, j;

	if (t == NULL)
		return;
	for (i = 0; i < NSHARDS; i++) {
		for (j = 0; t->shard[i].buckets != NULL && j < SHARD_BUCKETS;
		     j++) {
			struct entry *e = t->shard[i].buckets[j], *n;
			for (; e != NULL; e = n) {
				n = e->next;
				entry_free(e);
			}
		}
		if (t->shard[i].buckets != NULL) {
			free(t->shard[i].buckets);
			pthread_rwlock_destroy(&t->shard[i].lock);
		}
	}
	free(t);
}

static const struct token_store_ops mem_ops = {
	.name = "memory",
	.insert = mem_insert,
	.lookup = mem_lookup,
	.lookup_accessor = mem_lookup_accessor,
	.revoke = mem_revoke,
	.revoke_accessor = mem_revoke_accessor,
	.revoke_if = mem_revoke_if,
	.expire = mem_expire,
	.count = mem_count,
	.close = mem_close,
};

/* where: nothing ("memory://"). */
static int
mem_open(const char *where, const struct token_store_opts *opts,
    struct token_store **out)
{
	struct token_mem *t;
	size_t i;

	if (*where != '\0')
		return TSI_ERR_INVALID_ARG;
	if ((t = aligned_alloc(64, sizeof(*t))) == NULL)
		return TSI_ERR_ALLOC;
	memset(t, 0, sizeof(*t));
	t->base.ops = &mem_ops;
	for (i = 0; i < NSHARDS; i++) {
		if ((t->shard[i].buckets = calloc(SHARD_BUCKETS,
		         sizeof(*t->shard[i].buckets))) == NULL) {
			mem_close(&t->base);
			return TSI_ERR_ALLOC;
		}
		pthread_rwlock_init(&t->shard[i].lock, NULL);
	}
	t->max = opts->max_tokens ? opts->max_tokens : 1000000;
	*out = &t->base;
	return TSI_OK;
}

const struct token_backend token_backend_memory = {
	.scheme = "memory",
	.open = mem_open,
};
