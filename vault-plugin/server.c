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
#include "settings.h"
#include "metrics.h"
#include "guard.h"
#include "parse.h"
#include "server.h"
#include "auditlog.h"
#include "http.h"
#include "routes.h"
#include "store.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/net.h"
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

/*
 * One request as the server holds it: what the handler sees (rq), what it
 * answers (ans), and the connection's own state.
 */
struct vault_http_req {
	struct vault_request rq;
	struct vault_answer ans;
	struct MHD_Connection *conn;
	int too_large;  /* 413 decided; the body is not kept */
	size_t drained; /* bytes thrown away since (drain) */
	int sent;
	struct vault_http_req *next; /* worker queue link */
};

static const char *
io_header(void *ctx, const char *name)
{
	struct vault_http_req *h = ctx;

	return MHD_lookup_connection_value(h->conn, MHD_HEADER_KIND, name);
}

static const char *
io_query(void *ctx, const char *name)
{
	struct vault_http_req *h = ctx;

	return MHD_lookup_connection_value(h->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

struct each_arg {
	int (*fn)(void *arg, const char *name);
	void *arg;
};

static enum MHD_Result
each_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct each_arg *e = cls;

	return e->fn(e->arg, key) == 0 ? MHD_YES : MHD_NO;
}

static void
io_query_each(void *ctx, int (*fn)(void *arg, const char *name), void *arg)
{
	struct vault_http_req *h = ctx;
	struct each_arg e = { fn, arg };

	MHD_get_connection_values(h->conn, MHD_GET_ARGUMENT_KIND, each_cb, &e);
}

static void
io_suspend(void *ctx)
{
	struct vault_http_req *h = ctx;

	MHD_suspend_connection(h->conn);
}

static void
io_resume(void *ctx)
{
	struct vault_http_req *h = ctx;

	MHD_resume_connection(h->conn);
}

static const struct vault_io mhd_io = {
	io_header,
	io_query,
	io_query_each,
	io_suspend,
	io_resume,
};

static void
free_body(void *p)
{
	tsi_strfree(p);
}

/* Queues the answer to MHD. Only from the access handler. */
static enum MHD_Result
send_stored(struct vault_http_req *h)
{
	struct vault_request *r = &h->rq;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = h->ans.text;
	struct timespec t1;
	long long us;

	h->ans.text = NULL;
	h->sent = 1;
	vault_metrics_request(&r->v->metrics, vault_route_metric(r->route),
	    h->ans.status);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - r->t0.tv_nsec) / 1000;
	tsi_log(TSI_LOG_DEBUG, "http.request",
	    TSI_LS("request_id", r->request_id), TSI_LS("method", r->method),
	    TSI_LS("route", vault_route_metric(r->route)),
	    TSI_LI("status", h->ans.status), TSI_LI("us", us),
	    TSI_LS("remote", r->remote));
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
	if (text != NULL && h->ans.ctype != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    h->ans.ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	if (h->ans.retry_after > 0) {
		char ra[16];

		snprintf(ra, sizeof(ra), "%u", h->ans.retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (h->too_large)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
		    "close");
	ret = MHD_queue_response(h->conn, h->ans.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
req_free(struct vault_http_req *h)
{
	if (h == NULL)
		return;
	vault_request_clear(&h->rq);
	vault_answer_clear(&h->ans);
	free(h);
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
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		    (socklen_t)outlen);
}

static struct vault_http_req *
req_new(struct vault *v, struct MHD_Connection *c, const char *url,
    const char *method)
{
	struct vault_http_req *h;
	struct vault_request *r;
	size_t limit;
	const char *reason;
	char *path = NULL;
	int rc;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->conn = c;
	r = &h->rq;
	if (vault_request_init(r, v, method, NULL, &h->ans) != TSI_OK) {
		free(h);
		return NULL;
	}
	r->io = &mhd_io;
	r->io_ctx = h;
	remote_of(c, r->remote, sizeof(r->remote));
	if (strncmp(url, "/v1/", 4) != 0)
		rc = TSI_ERR_PARSE;
	else
		rc = vault_pct_decode(url + 4, 4 * KV_PATH_MAX, &path);
	r->path = rc == TSI_OK ? path : NULL;
	r->route = vault_route_find(method, r->path);
	/* Smaller limits before the caller is known. */
	if (r->route != NULL && (r->route->flags & VAULT_ROUTE_SMALL_BODY))
		limit = VAULT_LOGIN_MAX_BODY;
	else if (vault_req_auth(r, &reason) == TSI_OK)
		limit = v->set->max_body;
	else
		limit = VAULT_LOGIN_MAX_BODY < v->set->max_body
		    ? VAULT_LOGIN_MAX_BODY
		    : v->set->max_body;
	if ((r->body = tsi_buf_new(limit)) == NULL) {
		req_free(h);
		return NULL;
	}
	return h;
}

/* Runs the request's handler (through the route table) and makes sure
 * there is an answer unless one waits for its audit record. */
static void
dispatch(struct vault_http_req *h)
{
	if (vault_route_call(h->rq.v, &h->rq, &h->ans) != TSI_OK &&
	    !h->ans.ready && !h->rq.audit_submitted)
		vault_respond_error(&h->rq, 500, "internal error");
}

/* After the audit callback: the prepared answer if the record is durable;
 * otherwise it is wiped and 503 sent instead, releasing nothing. */
static enum MHD_Result
send_after_audit(struct vault_http_req *h)
{
	if (__atomic_load_n(&h->rq.audit_rc, __ATOMIC_ACQUIRE) != TSI_OK) {
		vault_answer_clear(&h->ans);
		vault_respond_audit_failed(&h->rq);
	} else if (!h->ans.ready) {
		vault_respond_error(&h->rq, 500, "internal error");
	}
	return send_stored(h);
}

/* Suspends the connection and hands h to a worker. 0 when the pool is
 * stopping (the caller then handles h itself). */
static int
submit(struct vault *v, struct vault_http_req *h)
{
	pthread_mutex_lock(&v->wq_mu);
	if (v->wq_stopping || v->n_workers == 0) {
		pthread_mutex_unlock(&v->wq_mu);
		return 0;
	}
	MHD_suspend_connection(h->conn);
	h->next = NULL;
	if (v->wq_tail != NULL)
		v->wq_tail->next = h;
	else
		v->wq_head = h;
	v->wq_tail = h;
	pthread_cond_signal(&v->wq_cv);
	pthread_mutex_unlock(&v->wq_mu);
	return 1;
}

static void *
worker_main(void *arg)
{
	struct vault *v = arg;
	struct vault_http_req *h;

	for (;;) {
		pthread_mutex_lock(&v->wq_mu);
		while (v->wq_head == NULL && !v->wq_stopping)
			pthread_cond_wait(&v->wq_cv, &v->wq_mu);
		if ((h = v->wq_head) == NULL) { /* stopping and drained */
			pthread_mutex_unlock(&v->wq_mu);
			return NULL;
		}
		v->wq_head = h->next;
		if (v->wq_head == NULL)
			v->wq_tail = NULL;
		pthread_mutex_unlock(&v->wq_mu);
		dispatch(h);
		if (!h->ans.ready)
			vault_respond_error(&h->rq, 500, "internal error");
		/* MHD calls the handler again, which queues the answer; h
		 * belongs to MHD from here on. */
		MHD_resume_connection(h->conn);
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
drain(struct vault_http_req *h, size_t n)
{
	if (n > VAULT_DRAIN_MAX - h->drained) {
		tsi_log(TSI_LOG_WARN, "http.body_dropped",
		    TSI_LS("remote", h->rq.remote),
		    TSI_LS("route", vault_route_metric(h->rq.route)),
		    TSI_LS("reason", "body far over the limit"));
		return MHD_NO;
	}
	h->drained += n;
	return MHD_YES;
}

/* The first call, with the headers only: the request is made, and an
 * oversized Content-Length answered 413 at once (MHD then closes the
 * connection without reading the body). */
static enum MHD_Result
on_headers(struct vault *v, struct MHD_Connection *c, const char *url,
    const char *method, void **con_cls)
{
	struct vault_http_req *h;
	const char *cl;
	unsigned long long n;
	char *end;

	if ((h = req_new(v, c, url, method)) == NULL)
		return MHD_NO;
	*con_cls = h;
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl == NULL)
		return MHD_YES;
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno == 0 && *end == '\0' && n <= tsi_buf_max(h->rq.body))
		return MHD_YES;
	h->too_large = 1;
	vault_respond_error(&h->rq, 413, "request body too large");
	vault_guard_busy(v, c);
	return send_stored(h);
}

/* A chunk of the body, into the bounded buffer. */
static enum MHD_Result
on_body(struct vault_http_req *h, const char *data, size_t n)
{
	if (h->too_large)
		return drain(h, n);
	if (tsi_buf_put(h->rq.body, data, n) == TSI_OK)
		return MHD_YES;
	/* A chunked body past the limit: the 413 is answered once the body
	 * has ended. What came so far is wiped. */
	h->too_large = 1;
	tsi_buf_free(h->rq.body);
	h->rq.body = NULL;
	tsi_log(TSI_LOG_WARN, "http.body_too_large",
	    TSI_LS("remote", h->rq.remote),
	    TSI_LS("route", vault_route_metric(h->rq.route)));
	vault_respond_error(&h->rq, 413, "request body too large");
	return drain(h, n);
}

/* The whole request is in: run its handler where its row says (ASYNC on
 * this thread up to its audit record, BLOCKING on a worker, else here),
 * or send what is ready. */
static enum MHD_Result
on_complete(struct vault *v, struct vault_http_req *h)
{
	unsigned flags;

	if (h->rq.audit_submitted) {
		if (!__atomic_load_n(&h->rq.audit_done, __ATOMIC_ACQUIRE))
			return MHD_YES; /* not resumed by the callback yet */
		return send_after_audit(h);
	}
	if (h->ans.ready)
		return send_stored(h);
	flags = h->rq.route != NULL ? h->rq.route->flags : 0;
	if (flags & VAULT_ROUTE_ASYNC) {
		h->rq.audit_async = 1;
		dispatch(h);
		if (h->rq.audit_submitted)
			return MHD_YES; /* suspended; the callback resumes */
	} else if ((flags & VAULT_ROUTE_BLOCKING) && submit(v, h))
		return MHD_YES;
	else
		dispatch(h);
	if (!h->ans.ready)
		vault_respond_error(&h->rq, 500, "internal error");
	return send_stored(h);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct vault *v = cls;
	struct vault_http_req *h = *con_cls;

	if (h == NULL)
		return on_headers(v, c, url, method, con_cls);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		return on_body(h, upload_data, n);
	}
	if (h->sent)
		return MHD_YES;
	/* No receive deadline while it is answered. */
	vault_guard_busy(v, c);
	return on_complete(v, h);
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
	/* Bound here rather than by libmicrohttpd, never with SO_REUSEPORT:
	 * a second server on the same address fails with the reason instead
	 * of taking half the requests with its own data and audit chain. */
	if ((r = tsi_net_listen(s->listen, &lfd, err, errlen)) != TSI_OK)
		return r;
	pthread_mutex_init(&v->wq_mu, NULL);
	pthread_cond_init(&v->wq_cv, NULL);
	vault_audit_async_init(v);
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
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, v, MHD_OPTION_LISTEN_SOCKET,
	    lfd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)VAULT_CONN_MEMORY,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->conn_limit,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->per_ip_limit,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->conn_timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, v,
	    MHD_OPTION_NOTIFY_CONNECTION, vault_guard_notify(), v,
	    MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, v,
	    s->dev ? MHD_OPTION_END : MHD_OPTION_HTTPS_CERT_CALLBACK2,
	    &tsi_tls_retrieve, MHD_OPTION_HTTPS_PRIORITIES, TSI_TLS_PRIORITIES,
	    MHD_OPTION_END);
	if (v->mhd == NULL) {
		snprintf(err, errlen, "cannot start the HTTP server on %s",
		    s->listen);
		r = TSI_ERR_IO;
		goto out;
	}
	lfd = MHD_INVALID_SOCKET; /* MHD's now; closed by MHD_stop_daemon */
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
		tsi_log(TSI_LOG_ERROR, "reload.tls_failed",
		    TSI_LS("error", err),
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
	if (v->mhd != NULL)
		vault_audit_async_quiesce(v);
	if (v->workers != NULL)
		workers_stop(v);
	if (v->mhd != NULL) {
		MHD_stop_daemon(v->mhd);
		v->mhd = NULL;
	}
	vault_guard_stop(v);
	tsi_tls_creds_install(NULL);
}
