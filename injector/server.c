/*
 * HTTPS front of tsi-injector (libmicrohttpd, TLS 1.2+):
 *   POST /mutate   AdmissionReview v1 -> AdmissionReview v1
 *   GET  /healthz  200 "ok" (liveness and readiness probes)
 */
#include "injector.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/net.h"
#include "tsi/tls.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct tsi_injector_server {
	const struct tsi_injector_conf *conf; /* borrowed */
	struct MHD_Daemon *mhd;
	struct tsi_tls_creds *tls; /* replaced on SIGHUP */
};

struct request {
	struct tsi_buf *body;
	int too_large;
};

/* libmicrohttpd's own messages (TLS handshake failures, ...) as JSON lines. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	tsi_log(TSI_LOG_WARN, "http.error", TSI_LS("detail", msg));
}

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *body,
    const char *ctype)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
	    MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct tsi_injector_server *s = cls;
	struct request *rq = *con_cls;
	char *resp = NULL;
	int status, r;
	enum MHD_Result ret;

	if (rq == NULL) {
		/* First call: headers only. Answering later keeps keep-alive. */
		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (rq->body == NULL &&
		    (rq->body = tsi_buf_new(
		         (size_t)s->conf->max_request_bytes)) == NULL)
			return MHD_NO;
		if (!rq->too_large &&
		    tsi_buf_put(rq->body, upload, *upload_size) != TSI_OK)
			rq->too_large = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/healthz") == 0) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return respond(conn, 405,
			    "{\"errors\":[\"method not allowed\"]}",
			    "application/json");
		return respond(conn, 200, "ok\n", "text/plain");
	}
	if (strcmp(url, "/mutate") != 0)
		return respond(conn, 404, "{\"errors\":[\"not found\"]}",
		    "application/json");
	if (strcmp(method, "POST") != 0)
		return respond(conn, 405,
		    "{\"errors\":[\"method not allowed\"]}",
		    "application/json");
	if (rq->too_large) {
		tsi_log(TSI_LOG_WARN, "admission.too_large",
		    TSI_LI("max", s->conf->max_request_bytes));
		return respond(conn, 413,
		    "{\"errors\":[\"request body too large\"]}",
		    "application/json");
	}
	r = tsi_injector_review(s->conf, rq->body ? tsi_buf_str(rq->body) : "",
	    rq->body ? tsi_buf_len(rq->body) : 0, &resp, &status);
	if (resp == NULL) {
		tsi_log(TSI_LOG_ERROR, "admission.failed",
		    TSI_LS("error", tsi_strerror(r)));
		return respond(conn, 500, "{\"errors\":[\"internal error\"]}",
		    "application/json");
	}
	ret = respond(conn, (unsigned)status, resp, "application/json");
	free(resp);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request *rq = *con_cls;

	if (rq == NULL)
		return;
	tsi_buf_free(rq->body);
	free(rq);
	*con_cls = NULL;
}

int
tsi_injector_server_start(const struct tsi_injector_conf *c,
    struct tsi_injector_server **out)
{
	struct tsi_injector_server *s;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int lfd = -1;
	char err[512] = "";
	unsigned flags =
	    MHD_USE_TLS | MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TSI_ERR_ALLOC;
	s->conf = c;
	if (tsi_net_parse_listen(c->listen, &ss, &sslen) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "injector.listen_invalid",
		    TSI_LS("listen", c->listen));
		r = TSI_ERR_CONFIG;
		goto fail;
	}
	/* The same checks and cipher policy as tsi-vault (lib/tls.c). */
	if ((r = tsi_tls_creds_load(c->tls_cert, c->tls_key, &s->tls, err,
	         sizeof(err))) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "injector.tls_invalid",
		    TSI_LS("error", err));
		goto fail;
	}
	/* Bound here, SO_REUSEADDR only (never SO_REUSEPORT), so that a
	 * second injector on the same address fails and says why. */
	if ((r = tsi_net_listen(c->listen, &lfd, err, sizeof(err))) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "injector.listen_failed",
		    TSI_LS("listen", c->listen), TSI_LS("error", err));
		goto fail;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	tsi_tls_creds_install(s->tls);
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, s,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lfd,
	    MHD_OPTION_HTTPS_CERT_CALLBACK2, &tsi_tls_retrieve,
	    MHD_OPTION_HTTPS_PRIORITIES, TSI_TLS_PRIORITIES,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)64,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)15,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (s->mhd == NULL) {
		tsi_log(TSI_LOG_ERROR, "injector.start_failed",
		    TSI_LS("listen", c->listen));
		close(lfd);
		r = TSI_ERR_IO;
		goto fail;
	}
	tsi_log(TSI_LOG_INFO, "injector.listening", TSI_LS("listen", c->listen),
	    TSI_LI("port", tsi_injector_server_port(s)));
	*out = s;
	return TSI_OK;
fail:
	tsi_injector_server_stop(s);
	return r;
}

int
tsi_injector_server_reload_tls(struct tsi_injector_server *s)
{
	char err[512] = "", fp[65];
	int r;

	if ((r = tsi_tls_creds_reload(s->tls, err, sizeof(err))) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "injector.tls_reload_failed",
		    TSI_LS("error", err),
		    TSI_LS("kept", "previous certificate and key"));
		return r;
	}
	tsi_tls_creds_fingerprint(s->tls, fp);
	tsi_log(TSI_LOG_INFO, "injector.tls_reloaded", TSI_LS("sha256", fp));
	return TSI_OK;
}

unsigned
tsi_injector_server_port(const struct tsi_injector_server *s)
{
	const union MHD_DaemonInfo *i;

	i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	return i != NULL ? i->port : 0;
}

void
tsi_injector_server_stop(struct tsi_injector_server *s)
{
	if (s == NULL)
		return;
	if (s->mhd != NULL) {
		MHD_stop_daemon(s->mhd);
		tsi_tls_creds_install(NULL);
	}
	tsi_tls_creds_free(s->tls);
	free(s);
}
