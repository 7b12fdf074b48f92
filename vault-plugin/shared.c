/*
 * shared.c - the server state that handlers share with main.c's reload:
 * the current policy set and trust store, referenced under v->mu. Part of
 * the core library (not main.c), so that a test or fuzz target linking any
 * handler links without the program's main.
 */
#include "vault.h"

#include <stdlib.h>

struct tsi_policy_set *
vault_policy_get(struct vault *v)
{
	struct tsi_policy_set *p;

	pthread_mutex_lock(&v->mu);
	p = v->policy ? tsi_policy_ref(v->policy) : NULL;
	pthread_mutex_unlock(&v->mu);
	return p;
}

struct vault_trust *
vault_trust_get(struct vault *v)
{
	struct vault_trust *t;

	pthread_mutex_lock(&v->mu);
	if ((t = v->trust) != NULL)
		t->refs++;
	pthread_mutex_unlock(&v->mu);
	return t;
}

void
vault_trust_put(struct vault *v, struct vault_trust *t)
{
	int last;

	if (t == NULL)
		return;
	pthread_mutex_lock(&v->mu);
	last = --t->refs == 0;
	pthread_mutex_unlock(&v->mu);
	if (last) {
		tsi_trust_free(t->trust);
		free(t);
	}
}
