/*
 * Allocators that wipe memory before freeing it. jansson holds the decoded
 * secret values and curl its receive buffers; with these installed, neither
 * leaves a secret behind in freed heap memory. malloc_usable_size gives the
 * size to wipe, so no header is needed and the memory stays compatible with
 * plain free().
 */
#include "sidecar/sidecar.h"
#include "tsi/err.h"

#include <curl/curl.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static void *
w_malloc(size_t n)
{
	return malloc(n);
}

static void
w_free(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static void *
w_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		w_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	w_free(p);
	return q;
}

static char *
w_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void *
w_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

static void *
o_malloc(size_t n, const char *file, int line)
{
	return malloc(n);
}

static void *
o_realloc(void *p, size_t n, const char *file, int line)
{
	return w_realloc(p, n);
}

static void
o_free(void *p, const char *file, int line)
{
	w_free(p);
}

void
tsi_sidecar_wipe_install(void)
{
	/* Fails (harmlessly) if OpenSSL has already allocated. */
	(void)CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free);
	json_set_alloc_funcs(w_malloc, w_free);
}

int
tsi_sidecar_curl_init(int tls)
{
	/*
	 * First OpenSSL initialisation, before libcurl's: OpenSSL's
	 * configuration file matters only for TLS (its providers and TLS
	 * defaults), so without TLS it is not read (1.8 M instructions,
	 * libcurl would load it anyway). No exit handler: the process
	 * ends right after, and tearing down OpenSSL's tables (0.6 M
	 * instructions) would only delay its exit.
	 */
	(void)OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT | (tls ?
	    OPENSSL_INIT_LOAD_CONFIG : OPENSSL_INIT_NO_LOAD_CONFIG), NULL);
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, w_malloc, w_free,
	    w_realloc, w_strdup, w_calloc) != CURLE_OK)
		return TSI_ERR_INTERNAL;
	return TSI_OK;
}
