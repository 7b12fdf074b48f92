/*
 * routes.h - the one table of tsi-vault's routes (routes.c) and the
 * handlers it names.
 *
 * A row says which requests it takes (methods, exact path or prefix), the
 * handler that answers them, how the server runs it (flags) and the
 * metric label it is counted under. The first row that matches wins; a
 * request no row takes is answered 404 by vault_route_call. Adding a
 * route: docs/internals/add-a-route.md.
 */
#ifndef TSI_VAULT_ROUTES_H
#define TSI_VAULT_ROUTES_H

#include <stddef.h>

#include "http.h"

/* Methods, as a row's mask. */
#define VAULT_M_GET 0x01u
#define VAULT_M_HEAD 0x02u
#define VAULT_M_POST 0x04u
#define VAULT_M_PUT 0x08u
#define VAULT_M_DELETE 0x10u
#define VAULT_M_LIST 0x20u
#define VAULT_M_PATCH 0x40u
#define VAULT_M_OTHER 0x80u /* any other method: the handler says 405 */
#define VAULT_M_ANY 0xffu

/* How a row's path matches. */
enum vault_route_match {
	VAULT_MATCH_EXACT,  /* the path itself */
	VAULT_MATCH_PREFIX, /* any path starting with it */
	VAULT_MATCH_TREE,   /* the path itself, or it followed by '/' */
};

/* Row flags. */
/* Run on the server's own thread up to the audit record, which is then
 * submitted without waiting (the connection suspended until it is
 * durable): work that never blocks (JWT check, policy, an LMDB read). */
#define VAULT_ROUTE_ASYNC 0x01u
/* May block (a store sync, an audit record waited for, the audit query):
 * run on a worker while the connection is suspended. */
#define VAULT_ROUTE_BLOCKING 0x02u
/* The caller's token is looked up when the headers arrive: a valid one
 * gets the full body limit (max_body), others the login limit. */
#define VAULT_ROUTE_TOKEN 0x04u
/* Before any token: the login body limit whoever calls. */
#define VAULT_ROUTE_SMALL_BODY 0x08u
/* Answers carry Vault's "mount_type": "kv". */
#define VAULT_ROUTE_KV 0x10u

/* Fills ans from rq (the request is v's; everything borrowed for the
 * call). Returns TSI_OK once ans holds the answer, or when the answer
 * waits for an audit record (rq->audit_submitted); anything else makes the
 * server answer 500. */
typedef int vault_handler_fn(struct vault *v, struct vault_request *rq,
    struct vault_answer *ans);

struct vault_route {
	unsigned methods; /* VAULT_M_* mask */
	const char *path; /* without "/v1/" */
	enum vault_route_match match;
	vault_handler_fn *handler;
	unsigned flags;     /* VAULT_ROUTE_* */
	const char *metric; /* label of tsi_vault_requests_total */
};

/* The row that takes method on path (both borrowed), or NULL. path NULL:
 * NULL. The row is static. */
const struct vault_route *vault_route_find(const char *method,
    const char *path);
/* Runs the request's row (rq->route; NULL: the 404 of an unknown path)
 * after the checks every route shares (a path that did not decode, the
 * options tsi-vault does not offer). Sets rq->ans = ans. */
int vault_route_call(struct vault *v, struct vault_request *rq,
    struct vault_answer *ans);
/* The metric label of a request's row ("other" for NULL). Static. */
const char *vault_route_metric(const struct vault_route *rt);
/* The distinct metric labels of the table, in table order, "other" last:
 * up to max of them into names (static strings). Returns how many. */
size_t vault_route_metrics(const char **names, size_t max);

/* ---- handlers (one per file or family; each is a row's handler) ---- */
vault_handler_fn vault_auth_login;     /* auth.c */
vault_handler_fn vault_kv_handle;      /* kv.c: every secret/ path */
vault_handler_fn vault_sys_health;     /* sys.c */
vault_handler_fn vault_sys_info;       /* sys.c: seal-status, init, ... */
vault_handler_fn vault_token_self;     /* sys.c: {lookup,renew,revoke}-self */
vault_handler_fn vault_sys_metrics;    /* sys_metrics.c */
vault_handler_fn vault_audit_releases; /* auditlog.c */
vault_handler_fn vault_token_admin;    /* token_admin.c */

#endif /* TSI_VAULT_ROUTES_H */
