/*
 * free_probe.h - looks at memory as it is freed, for tests that check
 * secrets are wiped before free (header-only; include it in exactly one
 * file of a test executable linked with -Wl,--wrap=free).
 *
 * With --wrap=free, every call to free() made by the objects and static
 * libraries linked into the test (libtsi, the sidecar core, the test
 * itself) reaches __wrap_free here first; shared libraries (jansson, curl,
 * OpenSSL) reach it only through allocator functions that one of those
 * installed. __wrap_free looks at the block, then hands it to the real
 * free. Nothing in the product changes for this.
 */
#ifndef TSI_TEST_FREE_PROBE_H
#define TSI_TEST_FREE_PROBE_H

#include <malloc.h>
#include <stddef.h>
#include <string.h>

void __real_free(void *p);
void __wrap_free(void *p);

static struct {
	int armed;         /* look only between arm and disarm */
	const void *watch; /* this block: copy its first watch_len bytes */
	size_t watch_len;
	unsigned char seen[256];
	int watch_freed;
	const char *marker; /* any block: does it still hold marker? */
	int marker_found;   /* blocks freed with the marker in them */
	int frees;          /* blocks freed while armed */
} free_probe;

void
__wrap_free(void *p)
{
	if (p != NULL && free_probe.armed) {
		size_t n = malloc_usable_size(p);

		free_probe.frees++;
		if (p == free_probe.watch) {
			memcpy(free_probe.seen, p, free_probe.watch_len);
			free_probe.watch_freed = 1;
		}
		if (free_probe.marker != NULL &&
		    memmem(p, n, free_probe.marker,
		        strlen(free_probe.marker)) != NULL)
			free_probe.marker_found++;
	}
	__real_free(p);
}

/* Starts looking: at block p (its first len bytes, at most 256) and/or at
 * every block for marker (either may be NULL). */
static inline void
free_probe_arm(const void *p, size_t len, const char *marker)
{
	memset(&free_probe, 0, sizeof(free_probe));
	free_probe.watch = p;
	free_probe.watch_len =
	    len < sizeof(free_probe.seen) ? len : sizeof(free_probe.seen);
	free_probe.marker = marker;
	free_probe.armed = 1;
}

static inline void
free_probe_disarm(void)
{
	free_probe.armed = 0;
}

/* 1 when the watched block was freed with its bytes all zero. */
static inline int
free_probe_watch_wiped(void)
{
	size_t i;

	if (!free_probe.watch_freed)
		return 0;
	for (i = 0; i < free_probe.watch_len; i++)
		if (free_probe.seen[i] != 0)
			return 0;
	return 1;
}

#endif
