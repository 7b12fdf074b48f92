/*
 * store.c - what every KV backend shares: the table of backends by URL
 * scheme, and the helpers on the interface's plain structs.
 */
#include "store.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A second backend is one more row. */
static const struct kv_backend *const backends[] = {
	&kv_backend_lmdb,
};

void
kv_pairs_free(struct kv_pair *p, size_t n)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(p[i].key);
		free(p[i].value);
	}
	free(p);
}

int
kv_pairs_dup(const struct kv_pair *p, size_t n, struct kv_pair **out)
{
	struct kv_pair *c = NULL;
	size_t i;

	*out = NULL;
	if (n == 0)
		return TSI_OK;
	if ((c = calloc(n, sizeof(*c))) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		if ((c[i].key = strdup(p[i].key)) == NULL ||
		    (p[i].value != NULL &&
		        (c[i].value = strdup(p[i].value)) == NULL)) {
			kv_pairs_free(c, n);
			return TSI_ERR_ALLOC;
		}
	}
	*out = c;
	return TSI_OK;
}

void
kv_meta_clear(struct kv_meta *m)
{
	if (m == NULL)
		return;
	free(m->versions);
	kv_pairs_free(m->custom, m->ncustom);
	memset(m, 0, sizeof(*m));
}

void
kv_meta_cfg_clear(struct kv_meta_cfg *c)
{
	if (c == NULL)
		return;
	kv_pairs_free(c->custom, c->ncustom);
	memset(c, 0, sizeof(*c));
}

void
kv_names_clear(struct kv_names *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->name[i]);
	free(l->name);
	memset(l, 0, sizeof(*l));
}

long long
kv_deletion_us(const struct kv_version_meta *v, long long delete_after_s)
{
	if (v->deleted_us != 0)
		return v->deleted_us;
	if (delete_after_s <= 0)
		return 0;
	return v->created_us + delete_after_s * 1000000LL;
}

long long
kv_delete_after(const struct kv_meta *m, const struct kv_mount_cfg *c)
{
	if (m != NULL && m->delete_after_s > 0)
		return m->delete_after_s;
	return c != NULL ? c->delete_after_s : 0;
}

/* The row for url's scheme; *where: what follows "scheme://". */
static const struct kv_backend *
backend_of(const char *url, const char **where)
{
	const char *sep;
	size_t i, n;

	if (url == NULL || (sep = strstr(url, "://")) == NULL)
		return NULL;
	n = (size_t)(sep - url);
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strlen(backends[i]->scheme) == n &&
		    memcmp(backends[i]->scheme, url, n) == 0) {
			*where = sep + 3;
			return backends[i];
		}
	return NULL;
}

int
kv_store_url_ok(const char *url)
{
	const char *where = NULL;

	return backend_of(url, &where) != NULL && *where != '\0';
}

int
kv_store_open(const char *url, const struct kv_store_opts *opts,
    struct kv_store **out)
{
	static const struct kv_store_opts none;
	const struct kv_backend *b;
	const char *where = NULL;

	*out = NULL;
	if ((b = backend_of(url, &where)) != NULL && *where != '\0')
		return b->open(where, opts ? opts : &none, out);
	tsi_log(TSI_LOG_ERROR, "kv.bad_url", TSI_LS("url", url ? url : ""),
	    TSI_LS("expected", "lmdb:///path"));
	return TSI_ERR_INVALID_ARG;
}

int
kv_store_default_url(const char *data_dir, char **url)
{
	size_t len = strlen("lmdb://") + strlen(data_dir) + strlen("/kv") + 1;
	int n;

	if ((*url = malloc(len)) == NULL)
		return TSI_ERR_ALLOC;
	n = snprintf(*url, len, "lmdb://%s/kv", data_dir);
	if (n < 0 || (size_t)n >= len) {
		free(*url);
		*url = NULL;
		return TSI_ERR_INTERNAL;
	}
	return TSI_OK;
}
