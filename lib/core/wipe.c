/*
 * Allocators that wipe memory before freeing it. jansson holds decoded
 * secret values, curl its receive buffers; with these installed, neither
 * leaves a secret behind in freed heap memory. malloc_usable_size gives the
 * size to wipe, so no header is needed and the memory stays compatible with
 * plain free().
 */
#include "tsi/wipe.h"

#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void *
tsi_wipe_malloc(size_t n)
{
	return malloc(n);
}

void
tsi_wipe_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void *
tsi_wipe_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		tsi_wipe_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	tsi_wipe_free(p);
	return q;
}

char *
tsi_wipe_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

void *
tsi_wipe_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

static void *
o_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void *
o_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return tsi_wipe_realloc(p, n);
}

static void
o_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	tsi_wipe_free(p);
}

void
tsi_wipe_install(unsigned what)
{
	/* Fails (harmlessly) if OpenSSL has already allocated. */
	if (what & TSI_WIPE_OPENSSL)
		(void)CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free);
	if (what & TSI_WIPE_JSON)
		json_set_alloc_funcs(tsi_wipe_malloc, tsi_wipe_free);
}
