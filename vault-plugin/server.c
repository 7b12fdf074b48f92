/*
 * server.c - HTTP(S) on libmicrohttpd.
 *
 * Request life: MHD calls handler() first with the headers only; we make the
 * request context, pick the body limit (smaller for login and for callers
 * without a valid token), refuse an oversized Content-Length with 413 right
 * away (the connection is then closed, nothing more is read), and return.
 * Body chunks are appended to a bounded buffer. A chunked body that grows
 * past the limit is wiped and the rest of it read and dropped (drain); its
 * final call answers 413. Otherwise the final call (no more data)
 * dispatches. Answering only from the second call on keeps HTTP
 * keep-alive: MHD closes connections whose response was queued on the first.
 *
 * The URL is percent-decoded exactly once, here (MHD's own unescaping is
 * switched off), with %00 and control bytes refused.
 */
#include "vault.h"

#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

char *
vault_query_arg(struct vault_req *r, const char *name, int *err)
{
	const char *raw;
	char *d = NULL;

	raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
	if (raw == NULL)
		return NULL;
	if (vault_pct_decode(raw, 4096, &d) != TSI_OK) {
		*err = 1;
		return NULL;
	}
	return d;
}

/* MHD's unescaper, replaced by one that leaves the text as it came:
 * decoding happens once, in vault_pct_decode. */
static size_t
no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	tsi_log(TSI_LOG_WARN, "http.mhd", TSI_LS("msg", msg));
}

json_t *
vault_envelope(struct vault_req *r, json_t *data, json_t *auth)
{
	return json_pack("{sssssbsIsososnsnso}", "request_id", r->request_id,
	    "lease_id", "", "renewable", 0, "lease_duration", (json_int_t)0,
	    "data", data ? data : json_null(), "auth", auth ? auth : json_null(),
	    "wrap_info", "warnings", "mount_type",
	    json_string(r->route == VR_KV_DATA || r->route == VR_KV_METADATA ?
	    "kv" : ""));
}

static void
free_body(void *p)
{
	tsi_strfree(p);
}

/* Stores the answer; the access handler queues it (send_stored). */
static enum MHD_Result
queue(struct vault_req *r, unsigned status, const char *ctype, char *text)
{
	if (r->ready) {
		tsi_strfree(text);
		return MHD_YES;
	}
	r->ready = 1;
	r->resp_status = status;
	r->resp_ctype = ctype;
	r->resp_text = text;
	return MHD_YES;
}

/* Queues the stored answer to MHD. Only from the access handler. */
static enum MHD_Result
send_stored(struct vault_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = r->resp_text;
	struct timespec t1;
	long long us;

	r->resp_text = NULL;
	r->sent = 1;
	vault_metrics_request(&r->v->metrics, r->route, r->resp_status);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - r->t0.tv_nsec) / 1000;
	tsi_log(TSI_LOG_DEBUG, "http.request", TSI_LS("request_id",
	    r->request_id), TSI_LS("method", r->method), TSI_LS("route",
	    vault_route_name(r->route)), TSI_LI("status", r->resp_status),
	    TSI_LI("us", us), TSI_LS("remote", r->remote));
	if (text == NULL)
		resp = MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
	else
		resp = MHD_create_response_from_buffer_with_free_callback(
		    strlen(text), text, free_body);
	if (resp == NULL) {
		tsi_strfree(text);
		return MHD_NO;
	}
	if (text != NULL && r->resp_ctype != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    r->resp_ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (r->retry_after > 0) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%u", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (r->too_large)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(r->conn, r->resp_status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
vault_respond(struct vault_req *r, unsigned status, json_t *body)
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
	return queue(r, status, "application/json", text);
}

enum MHD_Result
vault_respond_text(struct vault_req *r, unsigned status,
    const char *content_type, char *text)
{
	return queue(r, status, content_type, text);
}

enum MHD_Result
vault_respond_error(struct vault_req *r, unsigned status, const char *msg)
{
	json_t *body = json_pack("{s[s]}", "errors", msg);

	/* A message quoting the request's path may not be UTF-8 (the path is
	 * bytes, or was cut short): an error still says something, never
	 * nothing. */
	if (body == NULL)
		body = json_pack("{s[s]}", "errors", status == 404 ?
		    "route entry not found" : status == 403 ?
		    "permission denied" : "invalid request");
	return vault_respond(r, status, body);
}

enum MHD_Result
vault_respond_not_found(struct vault_req *r)
{
	return vault_respond(r, 404, json_pack("{s[]}", "errors"));
}

enum MHD_Result
vault_respond_no_route(struct vault_req *r)
{
	char msg[256];
	int n;

	/* Vault's words. A missing secret keeps Vault's empty "errors"; a
	 * path no route serves says so, or a client would take a typo in the
	 * path for a secret not written yet. */
	n = snprintf(msg, sizeof(msg), "no handler for route \"%.160s%s\". "
	    "route entry not found.", r->path != NULL ? r->path : "",
	    r->path != NULL && strlen(r->path) > 160 ? "..." : "");
	if (n < 0 || (size_t)n >= sizeof(msg))
		return vault_respond_error(r, 404, "route entry not found");
	return vault_respond_error(r, 404, msg);
}

const char *
vault_req_token(struct vault_req *r)
{
	const char *tok;

	tok = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "X-Vault-Token");
	if (tok == NULL) {
		/* The vault CLI and libraries also send a bearer token. */
		const char *a = MHD_lookup_connection_value(r->conn,
		    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (a != NULL && strncmp(a, "Bearer ", 7) == 0)
			tok = a + 7;
	}
	return tok;
}

int
vault_req_auth(struct vault_req *r, const char **reason)
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

static enum vault_route
route_of(const char *p)
{
	if (strcmp(p, "auth/trusted-identity/login") == 0)
		return VR_LOGIN;
	if (strncmp(p, "secret/data/", 12) == 0 || strcmp(p, "secret/data") == 0)
		return VR_KV_DATA;
	/* Version operations and the mount's other KV v2 paths: kv.c tells
	 * them apart by their prefix. */
	if (strncmp(p, "secret/delete/", 14) == 0 ||
	    strncmp(p, "secret/undelete/", 16) == 0 ||
	    strncmp(p, "secret/destroy/", 15) == 0 ||
	    strncmp(p, "secret/subkeys/", 15) == 0 ||
	    strcmp(p, "secret/config") == 0)
		return VR_KV_DATA;
	if (strncmp(p, "secret/metadata", 15) == 0 &&
	    (p[15] == '\0' || p[15] == '/'))
		return VR_KV_METADATA;
	if (strcmp(p, "sys/health") == 0)
		return VR_HEALTH;
	if (strcmp(p, "sys/metrics") == 0)
		return VR_METRICS;
	if (strcmp(p, "sys/audit/releases") == 0)
		return VR_AUDIT;
	if (strcmp(p, "sys/seal-status") == 0 || strcmp(p, "sys/init") == 0 ||
	    strcmp(p, "sys/leader") == 0 || strcmp(p, "sys/mounts") == 0 ||
	    strcmp(p, "sys/auth") == 0 ||
	    strncmp(p, "sys/internal/ui/mounts/", 23) == 0)
		return VR_SYS;
	if (strcmp(p, "auth/token/lookup-self") == 0 ||
	    strcmp(p, "auth/token/renew-self") == 0 ||
	    strcmp(p, "auth/token/revoke-self") == 0 ||
	    strcmp(p, "auth/token/create") == 0 ||
	    strcmp(p, "auth/token/lookup") == 0 ||
	    strcmp(p, "auth/token/lookup-accessor") == 0 ||
	    strcmp(p, "auth/token/revoke-accessor") == 0)
		return VR_TOKEN;
	return VR_OTHER;
}

static void
req_free(struct vault_req *r)
{
	if (r == NULL)
		return;
	tsi_buf_free(r->body);
	tsi_strfree(r->resp_text);
	free(r->path);
	vault_token_clear(&r->tok);
	free(r);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct vault *v = cls;

	req_free(*con_cls);
	*con_cls = NULL;
	vault_guard_idle(v, c);
}

static void
remote_of(struct MHD_Connection *c, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	out[0] = '\0';
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)outlen);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    out, (socklen_t)outlen);
}

static struct vault_req *
req_new(struct vault *v, struct MHD_Connection *c, const char *url,
    const char *method)
{
	struct vault_req *r;
	size_t limit;
	const char *reason;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->v = v;
	r->conn = c;
	r->method = method;
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	vault_uuid(r->request_id);
	remote_of(c, r->remote, sizeof(r->remote));
	if (strncmp(url, "/v1/", 4) != 0)
		rc = TSI_ERR_PARSE;
	else
		rc = vault_pct_decode(url + 4, 4 * KV_PATH_MAX, &r->path);
	if (rc != TSI_OK) {
		r->path = NULL;
		r->route = VR_OTHER;
	} else
		r->route = route_of(r->path);
	/* Smaller limits before the caller is known. */
	if (r->route == VR_LOGIN)
		limit = VAULT_LOGIN_MAX_BODY;
	else if (vault_req_auth(r, &reason) == TSI_OK)
		limit = v->set->max_body;
	else
		limit = VAULT_LOGIN_MAX_BODY < v->set->max_body ?
		    VAULT_LOGIN_MAX_BODY : v->set->max_body;
	if ((r->body = tsi_buf_new(limit)) == NULL) {
		req_free(r);
		return NULL;
	}
	return r;
}

/*
 * Request options tsi-vault does not offer, which a Vault client would
 * otherwise believe it got: a response-wrapping request would have the
 * secret come back in clear, a namespace would have the request land in
 * the root one. NULL when the request asks for neither, else the error.
 */
static const char *
unsupported_option(struct vault_req *r)
{
	const char *ns;

	if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "X-Vault-Wrap-TTL") != NULL)
		return "response wrapping is not supported";
	ns = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    "X-Vault-Namespace");
	if (ns != NULL && *ns != '\0' && strcmp(ns, "root") != 0 &&
	    strcmp(ns, "root/") != 0)
		return "namespaces are not supported: only the root namespace "
		    "exists";
	return NULL;
}

static enum MHD_Result
dispatch(struct vault_req *r)
{
	const char *unsup;

	if (r->path == NULL)
		return vault_respond_error(r, 400, "invalid request path");
	if ((unsup = unsupported_option(r)) != NULL)
		return vault_respond_error(r, 400, unsup);
	switch (r->route) {
	case VR_LOGIN:
		return vault_auth_login(r);
	case VR_KV_DATA:
	case VR_KV_METADATA:
		return vault_kv_handle(r);
	case VR_HEALTH:
		return vault_sys_health(r);
	case VR_METRICS:
		return vault_sys_metrics(r);
	case VR_AUDIT:
		return vault_audit_releases(r);
	case VR_SYS:
		return vault_sys_info(r);
	case VR_TOKEN:
		if (strcmp(r->path + strlen(r->path) - 5, "-self") == 0)
			return vault_token_self(r);
		return vault_token_admin(r);
	case VR_OTHER:
	case VR__COUNT:
		break;
	}
	return vault_respond_no_route(r);
}

/* Requests handled on MHD's thread up to their audit record, which is then
 * submitted without waiting (vault_audit): logins and KV reads, whose work
 * (JWT check, policy, LMDB read, decryption) never blocks. */
static int
async_route(const struct vault_req *r)
{
	if (r->route == VR_LOGIN)
		return 1;
	if (r->route != VR_KV_DATA && r->route != VR_KV_METADATA)
		return 0;
	return strcmp(r->method, "GET") == 0 ||
	    (r->route == VR_KV_METADATA && strcmp(r->method, "LIST") == 0);
}

/* Routes that may block and go to a worker: KV writes and deletes (they
 * sync the KV store, and wait for their audit record before acting), the
 * audit query, the token's own endpoints (renew and revoke wait for their
 * audit record). */
static int
blocking_route(enum vault_route rt)
{
	return rt == VR_LOGIN || rt == VR_KV_DATA || rt == VR_KV_METADATA ||
	    rt == VR_AUDIT || rt == VR_TOKEN;
}

int
vault_async_begin(struct vault *v)
{
	int ok;

	pthread_mutex_lock(&v->async_mu);
	ok = !v->async_stopping;
	if (ok)
		v->async_pending++;
	pthread_mutex_unlock(&v->async_mu);
	return ok;
}

void
vault_async_done(void *arg, int rc, uint64_t seq)
{
	struct vault_req *r = arg;
	struct vault *v = r->v;
	struct MHD_Connection *c = r->conn;

	(void)seq;
	if (rc != TSI_OK) {
		__atomic_fetch_add(&v->metrics.audit_append_failures, 1,
		    __ATOMIC_RELAXED);
		tsi_log(TSI_LOG_ERROR, "audit.append_failed",
		    TSI_LS("request_id", r->request_id),
		    TSI_LS("route", vault_route_name(r->route)),
		    TSI_LS("error", tsi_strerror(rc)));
	}
	__atomic_store_n(&r->audit_rc, rc, __ATOMIC_RELEASE);
	__atomic_store_n(&r->audit_done, 1, __ATOMIC_RELEASE);
	/* From here on MHD may answer, close and free r. */
	MHD_resume_connection(c);
	pthread_mutex_lock(&v->async_mu);
	if (--v->async_pending == 0 && v->async_stopping)
		pthread_cond_broadcast(&v->async_cv);
	pthread_mutex_unlock(&v->async_mu);
}

/* After the audit callback: the prepared answer if the record is durable;
 * otherwise it is wiped and 503 sent instead, releasing nothing. */
static enum MHD_Result
send_after_audit(struct vault_req *r)
{
	if (__atomic_load_n(&r->audit_rc, __ATOMIC_ACQUIRE) != TSI_OK) {
		tsi_strfree(r->resp_text);
		r->resp_text = NULL;
		r->ready = 0;
		vault_respond_audit_failed(r);
	} else if (!r->ready) {
		vault_respond_error(r, 500, "internal error");
	}
	return send_stored(r);
}

/* Suspends the connection and hands r to a worker. 0 when the pool is
 * stopping (the caller then handles r itself). */
static int
submit(struct vault *v, struct vault_req *r)
{
	pthread_mutex_lock(&v->wq_mu);
	if (v->wq_stopping || v->n_workers == 0) {
		pthread_mutex_unlock(&v->wq_mu);
		return 0;
	}
	MHD_suspend_connection(r->conn);
	r->next = NULL;
	if (v->wq_tail != NULL)
		v->wq_tail->next = r;
	else
		v->wq_head = r;
	v->wq_tail = r;
	pthread_cond_signal(&v->wq_cv);
	pthread_mutex_unlock(&v->wq_mu);
	return 1;
}

static void *
worker_main(void *arg)
{
	struct vault *v = arg;
	struct vault_req *r;

	for (;;) {
		pthread_mutex_lock(&v->wq_mu);
		while (v->wq_head == NULL && !v->wq_stopping)
			pthread_cond_wait(&v->wq_cv, &v->wq_mu);
		if ((r = v->wq_head) == NULL) {   /* stopping and drained */
			pthread_mutex_unlock(&v->wq_mu);
			return NULL;
		}
		v->wq_head = r->next;
		if (v->wq_head == NULL)
			v->wq_tail = NULL;
		pthread_mutex_unlock(&v->wq_mu);
		dispatch(r);
		if (!r->ready)
			vault_respond_error(r, 500, "internal error");
		/* MHD calls the handler again, which queues the answer; r
		 * belongs to MHD from here on. */
		MHD_resume_connection(r->conn);
	}
}

static int
workers_start(struct vault *v)
{
	size_t i, n = (size_t)v->set->workers;

	v->wq_head = v->wq_tail = NULL;
	v->wq_stopping = 0;
	if ((v->workers = calloc(n, sizeof(*v->workers))) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		if (pthread_create(&v->workers[i], NULL, worker_main, v) != 0)
			break;
		v->n_workers++;
	}
	return v->n_workers == n ? TSI_OK : TSI_ERR_INTERNAL;
}

static void
workers_stop(struct vault *v)
{
	size_t i;

	pthread_mutex_lock(&v->wq_mu);
	v->wq_stopping = 1;
	pthread_cond_broadcast(&v->wq_cv);
	pthread_mutex_unlock(&v->wq_mu);
	for (i = 0; i < v->n_workers; i++)
		pthread_join(v->workers[i], NULL);
	free(v->workers);
	v->workers = NULL;
	v->n_workers = 0;
}

/*
 * The rest of a body over the limit (sent chunked, so its size was not
 * known up front) is read and thrown away so that the 413 can be answered:
 * libmicrohttpd 0.9.75 queues no response while a body is still arriving
 * (MHD_queue_response fails there). Up to VAULT_DRAIN_MAX bytes; a body
 * longer still has the connection dropped unanswered.
 */
static enum MHD_Result
drain(struct vault_req *r, size_t n)
{
	if (n > VAULT_DRAIN_MAX - r->drained) {
		tsi_log(TSI_LOG_WARN, "http.body_dropped",
		    TSI_LS("remote", r->remote),
		    TSI_LS("route", vault_route_name(r->route)),
		    TSI_LS("reason", "body far over the limit"));
		return MHD_NO;
	}
	r->drained += n;
	return MHD_YES;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct vault *v = cls;
	struct vault_req *r = *con_cls;

	if (r == NULL) {
		const char *cl;

		if ((r = req_new(v, c, url, method)) == NULL)
			return MHD_NO;
		*con_cls = r;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL) {
			char *end;
			unsigned long long n;
			errno = 0;
			n = strtoull(cl, &end, 10);
			if (errno != 0 || *end != '\0' ||
			    n > tsi_buf_max(r->body)) {
				/* Answered now: MHD then closes the
				 * connection without reading the body. */
				r->too_large = 1;
				vault_respond_error(r, 413,
				    "request body too large");
				vault_guard_busy(v, c);
				return send_stored(r);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->too_large)
			return drain(r, n);
		if (tsi_buf_put(r->body, upload_data, n) != TSI_OK) {
			/* A chunked body past the limit: the 413 is answered
			 * once the body has ended. What came so far is wiped. */
			r->too_large = 1;
			tsi_buf_free(r->body);
			r->body = NULL;
			tsi_log(TSI_LOG_WARN, "http.body_too_large",
			    TSI_LS("remote", r->remote),
			    TSI_LS("route", vault_route_name(r->route)));
			vault_respond_error(r, 413, "request body too large");
			return drain(r, n);
		}
		return MHD_YES;
	}
	if (r->sent)
		return MHD_YES;
	/* The whole request is in: no receive deadline while it is answered. */
	vault_guard_busy(v, c);
	if (r->audit_submitted) {
		if (!__atomic_load_n(&r->audit_done, __ATOMIC_ACQUIRE))
			return MHD_YES;   /* not resumed by the callback yet */
		return send_after_audit(r);
	}
	if (r->ready)
		return send_stored(r);
	if (async_route(r)) {
		r->audit_async = 1;
		dispatch(r);
		if (r->audit_submitted)
			return MHD_YES;   /* suspended; the callback resumes */
		if (!r->ready)
			vault_respond_error(r, 500, "internal error");
		return send_stored(r);
	}
	if (blocking_route(r->route) && submit(v, r))
		return MHD_YES;
	dispatch(r);
	if (!r->ready)
		vault_respond_error(r, 500, "internal error");
	return send_stored(r);
}

static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return TSI_ERR_PARSE;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return TSI_ERR_PARSE;
		memcpy(host, s + 1, hl);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return TSI_ERR_PARSE;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return TSI_ERR_PARSE;
		memcpy(host, s, hl);
	}
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '\0' || port > 65535)
		return TSI_ERR_PARSE;
	if (hl == 0)
		snprintf(host, sizeof(host), "0.0.0.0");
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)port);
			*len = sizeof(*a4);
			return TSI_OK;
		}
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*a6);
			return TSI_OK;
		}
	}
	return TSI_ERR_PARSE;
}

int
vault_listen_is_loopback(const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (parse_listen(listen, &ss, &len) != TSI_OK)
		return -1;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) ==
		    127;
	return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
}

/*
 * The listening socket, bound here rather than by libmicrohttpd so that a
 * second server on the same address fails with the reason. SO_REUSEADDR
 * only (a restart need not wait for TIME_WAIT); never SO_REUSEPORT, which
 * let a second tsi-vault bind the same port and take half the requests,
 * with its own data, policies and audit chain.
 */
static int
listen_socket(const char *listen_addr, MHD_socket *out, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1;

	if (parse_listen(listen_addr, &ss, &sslen) != TSI_OK) {
		snprintf(err, errlen, "listen: cannot parse address '%s'",
		    listen_addr);
		return TSI_ERR_CONFIG;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", listen_addr,
		    strerror(errno));
		return TSI_ERR_IO;
	}
	if (ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(fd, 1024) != 0) {
		snprintf(err, errlen, "listen %s: %s", listen_addr,
		    errno == EADDRINUSE ? "address in use (is another server "
		    "running there?)" : strerror(errno));
		close(fd);
		return TSI_ERR_IO;
	}
	*out = fd;
	return TSI_OK;
}

int
vault_server_start(struct vault *v, char *err, size_t errlen)
{
	const struct vault_settings *s = v->set;
	MHD_socket lfd = MHD_INVALID_SOCKET;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	int r;

	if (!s->dev) {
		if (v->tls == NULL) {
			snprintf(err, errlen, "no TLS certificate loaded");
			return TSI_ERR_CONFIG;
		}
		flags |= MHD_USE_TLS;
	}
	if ((r = listen_socket(s->listen, &lfd, err, errlen)) != TSI_OK)
		return r;
	pthread_mutex_init(&v->wq_mu, NULL);
	pthread_cond_init(&v->wq_cv, NULL);
	pthread_mutex_init(&v->async_mu, NULL);
	pthread_cond_init(&v->async_cv, NULL);
	v->async_pending = 0;
	v->async_stopping = 0;
	if (workers_start(v) != TSI_OK) {
		snprintf(err, errlen, "cannot start %lld worker threads",
		    s->workers);
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	if (vault_guard_start(v) != TSI_OK) {
		snprintf(err, errlen, "cannot start the connection guard");
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	/* The certificate comes from v->tls at each handshake (lib/tls.c),
	 * so that SIGHUP can replace it (vault_server_tls_reload). */
	tsi_tls_creds_install(v->tls);
	v->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, v,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, v,
	    MHD_OPTION_LISTEN_SOCKET, lfd,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)VAULT_CONN_MEMORY,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->conn_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->per_ip_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->conn_timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, v,
	    MHD_OPTION_NOTIFY_CONNECTION, vault_guard_notify(), v,
	    MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, v,
	    s->dev ? MHD_OPTION_END : MHD_OPTION_HTTPS_CERT_CALLBACK2,
	    &tsi_tls_retrieve,
	    MHD_OPTION_HTTPS_PRIORITIES, TSI_TLS_PRIORITIES,
	    MHD_OPTION_END);
	if (v->mhd == NULL) {
		snprintf(err, errlen, "cannot start the HTTP server on %s",
		    s->listen);
		r = TSI_ERR_IO;
		goto out;
	}
	lfd = MHD_INVALID_SOCKET;   /* MHD's now; closed by MHD_stop_daemon */
	r = TSI_OK;
out:
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	return r;
}

int
vault_server_tls_reload(struct vault *v)
{
	char err[512] = "", fp[65];
	int r;

	if (v->tls == NULL)
		return TSI_OK;
	if ((r = tsi_tls_creds_reload(v->tls, err, sizeof(err))) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "reload.tls_failed", TSI_LS("error", err),
		    TSI_LS("kept", "previous certificate and key"));
		return r;
	}
	tsi_tls_creds_fingerprint(v->tls, fp);
	tsi_log(TSI_LOG_INFO, "reload.tls", TSI_LS("cert", v->set->tls_cert),
	    TSI_LS("sha256", fp));
	return TSI_OK;
}

void
vault_server_stop(struct vault *v)
{
	/* Suspended connections must be resumed before MHD stops. Requests
	 * waiting for their audit callback: no new ones (from now on they wait
	 * for their record), and the callbacks still to come arrive within the
	 * audit bound. Then the workers; requests that arrive meanwhile are
	 * handled inline. */
	if (v->mhd != NULL) {
		pthread_mutex_lock(&v->async_mu);
		v->async_stopping = 1;
		while (v->async_pending > 0)
			pthread_cond_wait(&v->async_cv, &v->async_mu);
		pthread_mutex_unlock(&v->async_mu);
	}
	if (v->workers != NULL)
		workers_stop(v);
	if (v->mhd != NULL) {
		MHD_stop_daemon(v->mhd);
		v->mhd = NULL;
	}
	vault_guard_stop(v);
	tsi_tls_creds_install(NULL);
}
