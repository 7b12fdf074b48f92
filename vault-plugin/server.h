/*
 * server.h - HTTP(S) on libmicrohttpd (server.c): limits, body reading,
 * suspend/resume, workers, sending answers. It knows no URL: routes.h does.
 */
#ifndef TSI_VAULT_SERVER_H
#define TSI_VAULT_SERVER_H

struct vault;

#define VAULT_VERSION_STR "tsi-vault " TSI_VERSION
#define VAULT_LOGIN_MAX_BODY (64 * 1024)
/* A chunked body over its limit is read on (and thrown away) for up to this
 * many more bytes so that 413 can be answered; beyond, the connection is
 * dropped. */
#define VAULT_DRAIN_MAX ((size_t)16 * 1024 * 1024)
/* libmicrohttpd's memory per connection (request line, headers, read
 * buffer; bodies stream through it into the request's own buffer). It is
 * zeroed on every keep-alive request, so its size is paid per request:
 * 16 KiB, half the library's default, still takes a 15 KB header (431
 * beyond). */
#define VAULT_CONN_MEMORY (16 * 1024)

/* Starts the workers, then the listener. */
int vault_server_start(struct vault *v, char *err, size_t errlen);
/* Drains and joins the workers (requests in flight finish), then stops the
 * listener. */
void vault_server_stop(struct vault *v);
/* SIGHUP: reads tls_cert and tls_key again; a pair that fails the checks
 * (tsi_tls_creds_reload) is logged and the current one kept. */
int vault_server_tls_reload(struct vault *v);

#endif /* TSI_VAULT_SERVER_H */
