/*
 * token_store.c - the table of token store backends by URL scheme, and
 * what they share.
 */
#include "token_store.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void
vault_token_clear(struct vault_token *t)
{
	if (t == NULL)
		return;
	json_decref(t->claims);
	json_decref(t->policies);
	memset(t, 0, sizeof(*t));
}

/* A second backend is one more row. */
static const struct token_backend *const backends[] = {
	&token_backend_memory,
};

void
token_rec_clear(struct token_rec *r)
{
	if (r == NULL)
		return;
	free(r->chain);
	vault_token_clear(&r->t);
	OPENSSL_cleanse(r, sizeof(*r));
}

int
token_store_open(const char *url, const struct token_store_opts *opts,
    struct token_store **out)
{
	static const struct token_store_opts none;
	const char *sep;
	size_t i, n;

	*out = NULL;
	if (url != NULL && (sep = strstr(url, "://")) != NULL) {
		n = (size_t)(sep - url);
		for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
			if (strlen(backends[i]->scheme) == n &&
			    memcmp(backends[i]->scheme, url, n) == 0)
				return backends[i]->open(sep + 3,
				    opts ? opts : &none, out);
	}
	tsi_log(TSI_LOG_ERROR, "token.bad_store_url",
	    TSI_LS("url", url ? url : ""), TSI_LS("expected", "memory://"));
	return TSI_ERR_INVALID_ARG;
}
