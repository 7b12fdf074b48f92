/*
 * routes.c - every URL tsi-vault serves, in one table (after OpenSSH's
 * mon_dispatch_proto20): methods, path, handler, how it runs, metric.
 *
 * The first matching row wins, so a row for some methods of a path comes
 * before the row for the rest of them: KV reads run on the server's
 * thread and submit their audit record without waiting (ASYNC), KV
 * changes wait for theirs on a worker (BLOCKING). A method a handler does
 * not take still reaches it, so that the 405 (or Vault's own answer) is
 * the handler's.
 */
#include "vault.h"
#include "http.h"
#include "routes.h"

#include "tsi/err.h"

#include <stdio.h>
#include <string.h>

#define KV_READ (VAULT_ROUTE_ASYNC | VAULT_ROUTE_TOKEN | VAULT_ROUTE_KV)
#define KV_CHANGE (VAULT_ROUTE_BLOCKING | VAULT_ROUTE_TOKEN | VAULT_ROUTE_KV)
#define TOKEN_WAIT (VAULT_ROUTE_BLOCKING | VAULT_ROUTE_TOKEN)
#define INLINE VAULT_ROUTE_TOKEN

static const struct vault_route routes[] = {
	/* methods, path, match, handler, flags, metric */
	{ VAULT_M_ANY, "auth/trusted-identity/login", VAULT_MATCH_EXACT,
	    vault_auth_login, VAULT_ROUTE_ASYNC | VAULT_ROUTE_SMALL_BODY,
	    "login" },
	{ VAULT_M_GET, "secret/data", VAULT_MATCH_TREE, vault_kv_handle,
	    KV_READ, "kv_data" },
	{ VAULT_M_ANY, "secret/data", VAULT_MATCH_TREE, vault_kv_handle,
	    KV_CHANGE, "kv_data" },
	/* Vault's version operations and the mount's other KV v2 paths:
	 * kv.c tells them apart by their prefix. */
	{ VAULT_M_GET, "secret/delete/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_READ, "kv_data" },
	{ VAULT_M_ANY, "secret/delete/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_CHANGE, "kv_data" },
	{ VAULT_M_GET, "secret/undelete/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_READ, "kv_data" },
	{ VAULT_M_ANY, "secret/undelete/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_CHANGE, "kv_data" },
	{ VAULT_M_GET, "secret/destroy/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_READ, "kv_data" },
	{ VAULT_M_ANY, "secret/destroy/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_CHANGE, "kv_data" },
	{ VAULT_M_GET, "secret/subkeys/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_READ, "kv_data" },
	{ VAULT_M_ANY, "secret/subkeys/", VAULT_MATCH_PREFIX, vault_kv_handle,
	    KV_CHANGE, "kv_data" },
	{ VAULT_M_GET, "secret/config", VAULT_MATCH_EXACT, vault_kv_handle,
	    KV_READ, "kv_data" },
	{ VAULT_M_ANY, "secret/config", VAULT_MATCH_EXACT, vault_kv_handle,
	    KV_CHANGE, "kv_data" },
	{ VAULT_M_GET | VAULT_M_LIST, "secret/metadata", VAULT_MATCH_TREE,
	    vault_kv_handle, KV_READ, "kv_metadata" },
	{ VAULT_M_ANY, "secret/metadata", VAULT_MATCH_TREE, vault_kv_handle,
	    KV_CHANGE, "kv_metadata" },
	{ VAULT_M_ANY, "sys/health", VAULT_MATCH_EXACT, vault_sys_health,
	    INLINE, "health" },
	{ VAULT_M_ANY, "sys/metrics", VAULT_MATCH_EXACT, vault_sys_metrics,
	    INLINE, "metrics" },
	{ VAULT_M_ANY, "sys/audit/releases", VAULT_MATCH_EXACT,
	    vault_audit_releases, TOKEN_WAIT, "audit_releases" },
	{ VAULT_M_ANY, "auth/token/lookup-self", VAULT_MATCH_EXACT,
	    vault_token_self, TOKEN_WAIT, "token" },
	{ VAULT_M_ANY, "auth/token/renew-self", VAULT_MATCH_EXACT,
	    vault_token_self, TOKEN_WAIT, "token" },
	{ VAULT_M_ANY, "auth/token/revoke-self", VAULT_MATCH_EXACT,
	    vault_token_self, TOKEN_WAIT, "token" },
	{ VAULT_M_ANY, "auth/token/create", VAULT_MATCH_EXACT,
	    vault_token_admin, TOKEN_WAIT, "token" },
	{ VAULT_M_ANY, "auth/token/lookup", VAULT_MATCH_EXACT,
	    vault_token_admin, TOKEN_WAIT, "token" },
	{ VAULT_M_ANY, "auth/token/lookup-accessor", VAULT_MATCH_EXACT,
	    vault_token_admin, TOKEN_WAIT, "token" },
	{ VAULT_M_ANY, "auth/token/revoke-accessor", VAULT_MATCH_EXACT,
	    vault_token_admin, TOKEN_WAIT, "token" },
	/* What the vault CLI and client libraries probe. */
	{ VAULT_M_ANY, "sys/seal-status", VAULT_MATCH_EXACT, vault_sys_info,
	    INLINE, "sys" },
	{ VAULT_M_ANY, "sys/init", VAULT_MATCH_EXACT, vault_sys_info, INLINE,
	    "sys" },
	{ VAULT_M_ANY, "sys/leader", VAULT_MATCH_EXACT, vault_sys_info, INLINE,
	    "sys" },
	{ VAULT_M_ANY, "sys/mounts", VAULT_MATCH_EXACT, vault_sys_info, INLINE,
	    "sys" },
	{ VAULT_M_ANY, "sys/auth", VAULT_MATCH_EXACT, vault_sys_info, INLINE,
	    "sys" },
	{ VAULT_M_ANY, "sys/internal/ui/mounts/", VAULT_MATCH_PREFIX,
	    vault_sys_info, INLINE, "sys" },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const char metric_other[] = "other";

static unsigned
method_bit(const char *m)
{
	static const struct {
		const char *name;
		unsigned bit;
	} methods[] = {
		{ "GET", VAULT_M_GET },
		{ "HEAD", VAULT_M_HEAD },
		{ "POST", VAULT_M_POST },
		{ "PUT", VAULT_M_PUT },
		{ "DELETE", VAULT_M_DELETE },
		{ "LIST", VAULT_M_LIST },
		{ "PATCH", VAULT_M_PATCH },
	};
	size_t i;

	for (i = 0; m != NULL && i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(m, methods[i].name) == 0)
			return methods[i].bit;
	return VAULT_M_OTHER;
}

static int
path_matches(const struct vault_route *rt, const char *p)
{
	size_t n = strlen(rt->path);

	switch (rt->match) {
	case VAULT_MATCH_EXACT: return strcmp(p, rt->path) == 0;
	case VAULT_MATCH_PREFIX: return strncmp(p, rt->path, n) == 0;
	case VAULT_MATCH_TREE:
		return strncmp(p, rt->path, n) == 0 &&
		    (p[n] == '\0' || p[n] == '/');
	}
	return 0;
}

const struct vault_route *
vault_route_find(const char *method, const char *path)
{
	unsigned bit = method_bit(method);
	size_t i;

	if (path == NULL)
		return NULL;
	for (i = 0; i < NROUTES; i++)
		if ((routes[i].methods & bit) != 0 &&
		    path_matches(&routes[i], path))
			return &routes[i];
	return NULL;
}

const char *
vault_route_metric(const struct vault_route *rt)
{
	return rt != NULL ? rt->metric : metric_other;
}

size_t
vault_route_metrics(const char **names, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < NROUTES; i++) {
		for (j = 0; j < n; j++)
			if (strcmp(names[j], routes[i].metric) == 0)
				break;
		if (j == n && n < max)
			names[n++] = routes[i].metric;
	}
	if (n < max)
		names[n++] = metric_other;
	return n;
}

/*
 * Request options tsi-vault does not offer, which a Vault client would
 * otherwise believe it got: a response-wrapping request would have the
 * secret come back in clear, a namespace would have the request land in
 * the root one. NULL when the request asks for neither, else the error.
 */
static const char *
unsupported_option(const struct vault_request *r)
{
	const char *ns;

	if (vault_req_header(r, "X-Vault-Wrap-TTL") != NULL)
		return "response wrapping is not supported";
	ns = vault_req_header(r, "X-Vault-Namespace");
	if (ns != NULL && *ns != '\0' && strcmp(ns, "root") != 0 &&
	    strcmp(ns, "root/") != 0)
		return "namespaces are not supported: only the root namespace "
		       "exists";
	return NULL;
}

int
vault_route_call(struct vault *v, struct vault_request *rq,
    struct vault_answer *ans)
{
	const char *unsup;

	rq->ans = ans;
	if (rq->path == NULL)
		return vault_respond_error(rq, 400, "invalid request path");
	if ((unsup = unsupported_option(rq)) != NULL)
		return vault_respond_error(rq, 400, unsup);
	if (rq->route == NULL)
		return vault_respond_no_route(rq);
	return rq->route->handler(v, rq, ans);
}
