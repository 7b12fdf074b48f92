/*
 * api_mhd.h - how tsi-issuer runs libmicrohttpd, in one place.
 *
 * issuer/api.c starts its daemon with these settings, and so does the
 * benchmark's floor for the token figure (bench/issuer_hello.c, the same
 * server answering a fixed body): a change here changes both, so the limit
 * stays like for like. Keep every daemon setting that affects the cost of a
 * request here, not in api.c.
 */
#ifndef TSI_ISSUER_API_MHD_H
#define TSI_ISSUER_API_MHD_H

#include <unistd.h>

#include <microhttpd.h>

/* A few event-loop threads (epoll) serve every connection: a request stays
 * on the thread that read it, and one wake-up serves every connection that
 * is ready (a thread per connection cost two thread switches per token).
 * TURBO: no per-request fcntl/shutdown extras; the socket is ours alone.
 * SUSPEND_RESUME: the rare request that needs slow work (hashing an
 * executable not seen before) is suspended while a hashing thread does it,
 * instead of holding its event-loop thread and every connection on it. */
#define TSI_ISSUER_MHD_FLAGS \
	((unsigned int)(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | \
	    MHD_ALLOW_SUSPEND_RESUME))

/* Concurrent connections unless the config's max_clients says otherwise. */
#define TSI_ISSUER_MAX_CLIENTS_DEFAULT 64

/* Idle keep-alive connections are closed after this many seconds. */
#define TSI_ISSUER_CONN_TIMEOUT_S 10u

/*
 * Per-connection memory: the request line and headers, and the response
 * headers (bodies are sent from their own buffer). libmicrohttpd zeroes
 * this pool on every keep-alive request, so its size is paid per token.
 * The largest legitimate request, GET /v1/token with a 256-character aud
 * fully percent-encoded plus a client's usual headers, is about 1 KiB;
 * longer headers get 431 (tests/integration/issuer, test_issuer.c).
 */
#define TSI_ISSUER_CONN_MEMORY ((size_t)4096)

/* Event-loop threads: one per CPU, at least 2 (a request waiting for the
 * TPM must not stop every other connection) and at most 16. */
static inline unsigned int
tsi_issuer_mhd_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		n = 2;
	if (n > 16)
		n = 16;
	return (unsigned int)n;
}

/* The front end's event-loop threads (privilege separation): each waits
 * for the signer's answer with its connections held, so one per CPU would
 * keep at most that many requests in flight and leave the signer idle
 * between them. Four per CPU, at most 16. */
static inline unsigned int
tsi_issuer_front_threads(void)
{
	unsigned int n = 4 * tsi_issuer_mhd_threads();

	return n > 16 ? 16 : n;
}

#endif /* TSI_ISSUER_API_MHD_H */
