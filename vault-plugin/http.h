/*
 * http.h - one request as a handler sees it, and the answer it fills.
 *
 * Nothing here knows libmicrohttpd: the server (server.c) reaches the
 * connection through struct vault_io, so that a handler runs the same
 * under a unit test (tests/unit/vault/test_handlers.c) as on a socket.
 * A handler reads a struct vault_request and fills a struct vault_answer;
 * the server sends the answer once the handler has returned (or, for a
 * request whose audit record went out without waiting, once the record is
 * durable).
 */
#ifndef TSI_VAULT_HTTP_H
#define TSI_VAULT_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "tokens.h"
#include "tsi/buf.h"

struct vault;
struct vault_route;

/* The connection, as far as handlers may see it. ctx is the server's own
 * (borrowed for the request). */
struct vault_io {
	/* A request header's value, borrowed until the request ends; NULL
	 * when absent. */
	const char *(*header)(void *ctx, const char *name);
	/* A query argument as sent (not decoded), borrowed; NULL if absent. */
	const char *(*query)(void *ctx, const char *name);
	/* Calls fn(arg, name) for each query argument until fn returns
	 * nonzero. */
	void (*query_each)(void *ctx, int (*fn)(void *arg, const char *name),
	    void *arg);
	/* The answer waits for an audit callback: suspend stops the server
	 * from sending anything until resume (which may run on any thread;
	 * after it the request may be freed at once). */
	void (*suspend)(void *ctx);
	void (*resume)(void *ctx);
};

/* What a handler answers. Owned by whoever made the request; the text is
 * freed (wiped: it may hold a secret) by vault_answer_clear. */
struct vault_answer {
	int ready; /* set once; later answers are dropped */
	unsigned status;
	const char *ctype;    /* static; NULL with no body */
	char *text;           /* NUL-terminated body, or NULL */
	unsigned retry_after; /* > 0: a Retry-After header (seconds) */
};

/* One request. Everything a handler reads; the fields below "state" are
 * written by the request helpers and the audit log. */
struct vault_request {
	struct vault *v;
	const char *method;              /* borrowed from the server */
	char *path;                      /* percent-decoded path after "/v1/";
	                              * NULL when it did not decode */
	const struct vault_route *route; /* NULL: no route serves path */
	struct tsi_buf *body;            /* NULL: none */
	char request_id[37];
	char remote[64];
	struct timespec t0;        /* CLOCK_MONOTONIC at arrival */
	const struct vault_io *io; /* NULL: no headers, no query */
	void *io_ctx;
	struct vault_answer *ans; /* where the vault_respond* helpers write */
	/* state: the audit record of a request handled on the server's own
	 * thread, submitted by vault_audit without waiting; the answer made
	 * meanwhile is sent only when the record is durable, and replaced by
	 * 503 (wiped) when it is not. */
	int audit_async;     /* vault_audit may submit without waiting */
	int audit_submitted; /* submitted; the callback resumes us */
	int audit_done;      /* atomic: the callback ran */
	int audit_rc;        /* atomic: its outcome */
	/* state: set by vault_req_auth. */
	int authed;
	struct vault_token tok;
};

/* Fills r for a request of v (borrowed, all of them, for r's life) and
 * points it at ans; a fresh request id and t0. path: copied (NULL: a path
 * that did not decode). TSI_ERR_ALLOC. Release with vault_request_clear. */
int vault_request_init(struct vault_request *r, struct vault *v,
    const char *method, const char *path, struct vault_answer *ans);
/* Frees what r owns (path, body, the token copy). Not r itself. */
void vault_request_clear(struct vault_request *r);
/* Frees (wipes) the answer's text; a then holds no answer. */
void vault_answer_clear(struct vault_answer *a);

/* A request header (borrowed); NULL when absent or no io. */
const char *vault_req_header(const struct vault_request *r, const char *name);
/* A query argument, decoded; NULL when absent. *err set on bad encoding.
 * Caller frees. */
char *vault_query_arg(struct vault_request *r, const char *name, int *err);
/* Looks up X-Vault-Token. TSI_OK (r->tok filled, r->authed = 1),
 * TSI_ERR_DENIED (missing, unknown or expired: reason says which). */
int vault_req_auth(struct vault_request *r, const char **reason);
/* The token the caller sent (X-Vault-Token, else Authorization: Bearer),
 * borrowed; NULL when none. */
const char *vault_req_token(const struct vault_request *r);

/* Answers into r->ans. body is stolen (may be NULL for an empty body).
 * Always TSI_OK: a handler returns it. */
int vault_respond(struct vault_request *r, unsigned status, json_t *body);
int vault_respond_text(struct vault_request *r, unsigned status,
    const char *content_type, char *text /* stolen, malloc'd */);
int vault_respond_error(struct vault_request *r, unsigned status,
    const char *msg);
/* {"errors":[]} as Vault sends for 404. */
int vault_respond_not_found(struct vault_request *r);
/* The 404 for a path no route serves, with Vault's message. */
int vault_respond_no_route(struct vault_request *r);
/* The Vault envelope: request_id, lease_id, renewable, lease_duration, data,
 * wrap_info, warnings, auth. data and auth are stolen (NULL: null). */
json_t *vault_envelope(const struct vault_request *r, json_t *data,
    json_t *auth);
/* RFC 3339 with nanoseconds in UTC, as Vault prints times. */
void vault_time_str(long long us, char *out, size_t outlen);
long long vault_now_us(void);

#endif /* TSI_VAULT_HTTP_H */
