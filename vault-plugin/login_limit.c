/*
 * login_limit.c - per-source limits on failed logins (docs/vault.md
 * "Failed logins").
 *
 * Each source (an IPv4 address, or the /64 of an IPv6 one) may fail
 * `limit` logins per window of `window` seconds, the window starting at
 * its first failure. Beyond that its logins are refused with 429 and
 * Retry-After (the rest of the window) before any JWT work, and are not
 * audited one by one: the refusals of one source in one window become one
 * record with their count (vault_limiter_drain). A fixed table keeps the
 * memory bounded whatever the number of sources; when it is full of live
 * sources, new ones share one overflow slot (they are limited together).
 */
#include "login_limit.h"

#include "tsi/err.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRC_MAX 64
#define PROBE 32

struct slot {
	char src[SRC_MAX]; /* "" when free */
	time_t start;      /* window start */
	unsigned fails;    /* failures in the window */
	unsigned refused;  /* 429s in the window */
	unsigned pend;     /* 429s of ended windows, not yet recorded */
	time_t pend_start; /* start of the first of those windows */
};

struct vault_limiter {
	pthread_mutex_t mu;
	unsigned limit;
	unsigned window;
	size_t n;
	struct slot *slots;
	struct slot overflow;
	time_t last_drain; /* windows end on second boundaries */
};

int
vault_limiter_new(unsigned limit, unsigned window_s, size_t slots,
    struct vault_limiter **out)
{
	struct vault_limiter *l;

	*out = NULL;
	if (window_s == 0 || slots == 0)
		return TSI_ERR_INVALID_ARG;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return TSI_ERR_ALLOC;
	if ((l->slots = calloc(slots, sizeof(*l->slots))) == NULL) {
		free(l);
		return TSI_ERR_ALLOC;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->limit = limit;
	l->window = window_s;
	l->n = slots;
	snprintf(l->overflow.src, sizeof(l->overflow.src), "(other sources)");
	*out = l;
	return TSI_OK;
}

void
vault_limiter_free(struct vault_limiter *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l->slots);
	free(l);
}

/* The source key of a remote address: IPv6 by its /64 (one host has a
 * whole prefix to pick addresses from). */
static void
source_key(const char *remote, char out[SRC_MAX])
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];

	if (strchr(remote, ':') != NULL &&
	    inet_pton(AF_INET6, remote, &a6) == 1) {
		memset(a6.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) != NULL) {
			snprintf(out, SRC_MAX, "%s/64", buf);
			return;
		}
	}
	snprintf(out, SRC_MAX, "%s", remote);
}

static size_t
hash_src(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static int
expired(const struct vault_limiter *l, const struct slot *s, time_t now)
{
	return now - s->start >= (time_t)l->window;
}

/* An ended window: its refusals wait for vault_limiter_drain, and the
 * source starts afresh (so the end of a window never waits for a drain). */
static void
roll(const struct vault_limiter *l, struct slot *s, time_t now)
{
	if (!expired(l, s, now))
		return;
	if (s->refused > 0) {
		if (s->pend == 0)
			s->pend_start = s->start;
		s->pend += s->refused;
		s->refused = 0;
	}
	s->start = now;
	s->fails = 0;
}

/* The slot of src (creating it when create); NULL when there is none. A
 * slot whose window is over and has nothing to record is reused. */
static struct slot *
find(struct vault_limiter *l, const char *src, time_t now, int create)
{
	size_t h = hash_src(src), i;
	struct slot *s, *free_s = NULL;

	for (i = 0; i < PROBE && i < l->n; i++) {
		s = &l->slots[(h + i) % l->n];
		if (strcmp(s->src, src) == 0)
			return s;
		if (free_s == NULL &&
		    (s->src[0] == '\0' ||
		        (expired(l, s, now) && s->refused == 0 &&
		            s->pend == 0)))
			free_s = s;
	}
	if (!create)
		return NULL;
	if (free_s == NULL)
		return &l->overflow;
	memset(free_s, 0, sizeof(*free_s));
	snprintf(free_s->src, sizeof(free_s->src), "%s", src);
	free_s->start = now;
	return free_s;
}

unsigned
vault_limiter_check(struct vault_limiter *l, const char *remote, time_t now,
    int *first)
{
	char src[SRC_MAX];
	struct slot *s;
	unsigned wait = 0;

	*first = 0;
	if (l == NULL || l->limit == 0)
		return 0;
	source_key(remote, src);
	pthread_mutex_lock(&l->mu);
	s = find(l, src, now, 0);
	if (s == NULL && l->overflow.fails >= l->limit &&
	    !expired(l, &l->overflow, now))
		s = &l->overflow; /* a source that never had a slot */
	if (s != NULL)
		roll(l, s, now);
	if (s != NULL && s->fails >= l->limit) {
		*first = s->refused == 0;
		s->refused++;
		wait = (unsigned)(s->start + (time_t)l->window - now);
		if (wait == 0)
			wait = 1;
	}
	pthread_mutex_unlock(&l->mu);
	return wait;
}

void
vault_limiter_fail(struct vault_limiter *l, const char *remote, time_t now)
{
	char src[SRC_MAX];
	struct slot *s;

	if (l == NULL || l->limit == 0)
		return;
	source_key(remote, src);
	pthread_mutex_lock(&l->mu);
	s = find(l, src, now, 1);
	roll(l, s, now);
	s->fails++;
	pthread_mutex_unlock(&l->mu);
}

size_t
vault_limiter_drain(struct vault_limiter *l, time_t now,
    void (*fn)(void *arg, const char *src, unsigned count, time_t start,
        unsigned window),
    void *arg, size_t max)
{
	struct vault_limiter_note {
		char src[SRC_MAX];
		unsigned n;
		time_t t;
	} notes[8];
	size_t i, k = 0;

	if (l == NULL || l->limit == 0)
		return 0;
	if (max > sizeof(notes) / sizeof(notes[0]))
		max = sizeof(notes) / sizeof(notes[0]);
	pthread_mutex_lock(&l->mu);
	if (l->last_drain == now) {
		pthread_mutex_unlock(&l->mu);
		return 0;
	}
	l->last_drain = now;
	for (i = 0; i <= l->n && k < max; i++) {
		struct slot *s = i < l->n ? &l->slots[i] : &l->overflow;

		if (s->src[0] == '\0')
			continue;
		roll(l, s, now);
		if (s->pend == 0)
			continue;
		memcpy(notes[k].src, s->src, SRC_MAX);
		notes[k].n = s->pend;
		notes[k].t = s->pend_start;
		k++;
		s->pend = 0;
	}
	pthread_mutex_unlock(&l->mu);
	for (i = 0; i < k; i++)
		fn(arg, notes[i].src, notes[i].n, notes[i].t, l->window);
	return k;
}

size_t
vault_limiter_throttled(struct vault_limiter *l, time_t now)
{
	size_t i, n = 0;

	if (l == NULL || l->limit == 0)
		return 0;
	pthread_mutex_lock(&l->mu);
	for (i = 0; i <= l->n; i++) {
		const struct slot *s = i < l->n ? &l->slots[i] : &l->overflow;

		if (s->src[0] != '\0' && !expired(l, s, now) &&
		    s->fails >= l->limit)
			n++;
	}
	pthread_mutex_unlock(&l->mu);
	return n;
}
