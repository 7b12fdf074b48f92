/*
 * request.c - what handlers use to read a request and fill its answer
 * (http.h). No libmicrohttpd here: headers and query arguments come
 * through the request's struct vault_io, so a unit test can make a
 * request without a socket.
 */
#include "vault.h"
#include "crypto.h"
#include "parse.h"
#include "http.h"
#include "routes.h"
#include "tokens.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long long
vault_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
vault_time_str(long long us, char *out, size_t outlen)
{
	struct tm tm;
	time_t s = (time_t)(us / 1000000);
	int n;

	gmtime_r(&s, &tm);
	n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld000Z",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, us % 1000000);
	if (n < 0 || (size_t)n >= outlen)
		out[0] = '\0';
}

int
vault_request_init(struct vault_request *r, struct vault *v, const char *method,
    const char *path, struct vault_answer *ans)
{
	memset(r, 0, sizeof(*r));
	r->v = v;
	r->method = method;
	r->ans = ans;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	vault_uuid(r->request_id);
	if (path != NULL && (r->path = strdup(path)) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

void
vault_request_clear(struct vault_request *r)
{
	if (r == NULL)
		return;
	tsi_buf_free(r->body);
	r->body = NULL;
	free(r->path);
	r->path = NULL;
	vault_token_clear(&r->tok);
	r->authed = 0;
}

void
vault_answer_clear(struct vault_answer *a)
{
	tsi_strfree(a->text);
	memset(a, 0, sizeof(*a));
}

const char *
vault_req_header(const struct vault_request *r, const char *name)
{
	if (r->io == NULL || r->io->header == NULL)
		return NULL;
	return r->io->header(r->io_ctx, name);
}

char *
vault_query_arg(struct vault_request *r, const char *name, int *err)
{
	const char *raw = NULL;
	char *d = NULL;

	if (r->io != NULL && r->io->query != NULL)
		raw = r->io->query(r->io_ctx, name);
	if (raw == NULL)
		return NULL;
	if (vault_pct_decode(raw, 4096, &d) != TSI_OK) {
		*err = 1;
		return NULL;
	}
	return d;
}

json_t *
vault_envelope(const struct vault_request *r, json_t *data, json_t *auth)
{
	int kv = r->route != NULL && (r->route->flags & VAULT_ROUTE_KV) != 0;

	return json_pack("{sssssbsIsososnsnso}", "request_id", r->request_id,
	    "lease_id", "", "renewable", 0, "lease_duration", (json_int_t)0,
	    "data", data ? data : json_null(), "auth",
	    auth ? auth : json_null(), "wrap_info", "warnings", "mount_type",
	    json_string(kv ? "kv" : ""));
}

/* The first answer stands: a later one (a handler answering after an
 * error path already did) is dropped. */
static int
answer(struct vault_request *r, unsigned status, const char *ctype, char *text)
{
	struct vault_answer *a = r->ans;

	if (a == NULL || a->ready) {
		tsi_strfree(text);
		return TSI_OK;
	}
	a->ready = 1;
	a->status = status;
	a->ctype = text != NULL ? ctype : NULL;
	a->text = text;
	return TSI_OK;
}

int
vault_respond(struct vault_request *r, unsigned status, json_t *body)
{
	char *text = NULL;

	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		if (text == NULL) {
			status = 500;
			text = strdup("{\"errors\":[\"internal error\"]}");
		}
	}
	return answer(r, status, "application/json", text);
}

int
vault_respond_text(struct vault_request *r, unsigned status,
    const char *content_type, char *text)
{
	return answer(r, status, content_type, text);
}

int
vault_respond_error(struct vault_request *r, unsigned status, const char *msg)
{
	json_t *body = json_pack("{s[s]}", "errors", msg);

	/* A message quoting the request's path may not be UTF-8 (the path is
	 * bytes, or was cut short): an error still says something, never
	 * nothing. */
	if (body == NULL)
		body = json_pack("{s[s]}", "errors",
		    status == 404       ? "route entry not found"
		        : status == 403 ? "permission denied"
		                        : "invalid request");
	return vault_respond(r, status, body);
}

int
vault_respond_not_found(struct vault_request *r)
{
	return vault_respond(r, 404, json_pack("{s[]}", "errors"));
}

int
vault_respond_no_route(struct vault_request *r)
{
	char msg[256];
	int n;

	/* Vault's words. A missing secret keeps Vault's empty "errors"; a
	 * path no route serves says so, or a client would take a typo in the
	 * path for a secret not written yet. */
	n = snprintf(msg, sizeof(msg),
	    "no handler for route \"%.160s%s\". "
	    "route entry not found.",
	    r->path != NULL ? r->path : "",
	    r->path != NULL && strlen(r->path) > 160 ? "..." : "");
	if (n < 0 || (size_t)n >= sizeof(msg))
		return vault_respond_error(r, 404, "route entry not found");
	return vault_respond_error(r, 404, msg);
}

const char *
vault_req_token(const struct vault_request *r)
{
	const char *tok;

	tok = vault_req_header(r, "X-Vault-Token");
	if (tok == NULL) {
		/* The vault CLI and libraries also send a bearer token. */
		const char *a = vault_req_header(r, "Authorization");
		if (a != NULL && strncmp(a, "Bearer ", 7) == 0)
			tok = a + 7;
	}
	return tok;
}

int
vault_req_auth(struct vault_request *r, const char **reason)
{
	const char *tok;
	int rc;

	if (r->authed)
		return TSI_OK;
	tok = vault_req_token(r);
	if (tok == NULL || *tok == '\0') {
		*reason = "missing client token";
		return TSI_ERR_DENIED;
	}
	rc = vault_tokens_lookup(r->v->tokens, tok, &r->tok);
	if (rc == TSI_ERR_EXPIRED) {
		*reason = "token expired";
		return TSI_ERR_DENIED;
	}
	if (rc != TSI_OK) {
		*reason = "unknown token";
		return TSI_ERR_DENIED;
	}
	r->authed = 1;
	return TSI_OK;
}
