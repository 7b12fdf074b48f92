/*
 * Allocators that wipe a block before freeing it, for libraries that hold
 * secret values in memory they allocate themselves: jansson (decoded KV
 * bodies, JWTs), libcurl's receive buffers, OpenSSL. The size wiped is
 * malloc_usable_size, so blocks need no header and stay compatible with
 * plain free(): memory allocated before installation is freed correctly.
 */
#ifndef TSI_WIPE_H
#define TSI_WIPE_H

#include <stddef.h>

/* What tsi_wipe_install hands the allocators to. */
#define TSI_WIPE_JSON 0x1u /* json_set_alloc_funcs: every jansson block */
#define TSI_WIPE_OPENSSL \
	0x2u /* CRYPTO_set_mem_functions: before OpenSSL's
                               * first allocation, else silently not */

/* Installs the wiping allocators process-wide; call once at start-up,
 * before any thread starts. */
void tsi_wipe_install(unsigned what);

/* The allocators, for libraries installed by their own call (libcurl's
 * curl_global_init_mem). tsi_wipe_free accepts NULL; tsi_wipe_realloc
 * always moves the block so that the old one is wiped. */
void *tsi_wipe_malloc(size_t n);
void *tsi_wipe_calloc(size_t n, size_t size);
void *tsi_wipe_realloc(void *p, size_t n);
char *tsi_wipe_strdup(const char *s);
void tsi_wipe_free(void *p);

#endif /* TSI_WIPE_H */
