/*
 * api.h - the issuer's HTTP/1.1 API on its Unix socket (libmicrohttpd).
 *
 *   GET /v1/token?aud=A  200 {"token","expires_at"} | 400 | 403 | 503
 *   GET /v1/jwks         200 {"keys":[...]}
 *   GET /v1/health       200 {"tpm":"ok",...} | 503 {"tpm":"unavailable","reason"}
 *
 * The caller is identified by the socket's peer credentials (SO_PEERCRED,
 * taken when the connection is accepted); the only thing a caller chooses is
 * aud. Unknown query parameters are refused; headers are ignored.
 */
#ifndef TSI_ISSUER_API_H
#define TSI_ISSUER_API_H

#include "issuer/config.h"
#include "issuer/mint.h"
#include "issuer/monitor.h"
#include "issuer/resolve.h"

struct tsi_api;

/* 1 when something accepts connections on the Unix socket at path (a
 * running tsi-issuer), 0 when nothing does (no file, or a stale one). */
int tsi_api_socket_in_use(const char *path);

/* Binds cfg->socket (replacing a stale socket file, never another kind of
 * file, never one a server still answers on: TSI_ERR_EXISTS), sets its
 * mode and group, and serves. Everything passed is borrowed
 * until tsi_api_stop. *out: tsi_api_stop. */
int tsi_api_start(const struct tsi_issuer_config *cfg,
    struct tsi_minter *minter, struct tsi_resolver *resolver,
    struct tsi_monitor *monitor, struct tsi_api **out);

/* Binds cfg->socket as tsi_api_start does, without serving: *out is the
 * listening socket (close-on-exec). */
int tsi_api_bind(const struct tsi_issuer_config *cfg, int *out);

/* The privsep front end's API: serves on listen_fd (taken; the signer bound
 * it and keeps the socket file), asks the signer through front to identify
 * callers and mint, resolves Kubernetes callers with resolver (NULL for the
 * unix resolver: the signer resolves those). Connections are accepted but
 * wait, unread, until tsi_api_open. Borrowed until tsi_api_stop. */
struct tsi_front;
int tsi_api_start_front(const struct tsi_issuer_config *cfg,
    struct tsi_front *front, struct tsi_resolver *resolver, int listen_fd,
    struct tsi_api **out);

/* Lets connections held since tsi_api_start_front be read. */
void tsi_api_open(struct tsi_api *a);

/* Stops serving, removes the socket file (when it bound it), frees.
 * Accepts NULL. */
void tsi_api_stop(struct tsi_api *a);

#endif /* TSI_ISSUER_API_H */
