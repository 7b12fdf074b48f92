/*
 * http.c - libmicrohttpd glue: collects a bounded body, turns the request
 * into a struct attest_req, dispatches, sends the answer.
 *
 * A Content-Length over the limit is answered 413 at once (MHD then closes
 * the connection without reading the body); a chunked body that grows past
 * it is dropped and answered 413 when it ends.
 */
#include "attest.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/file.h"
#include "tsi/log.h"
#include "tsi/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn_ctx {
	struct tsi_buf *body;
	int too_large;
};

static enum MHD_Result
send_answer(struct MHD_Connection *c, struct attest_answer *ans)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *text = ans->text;
	const char *ctype = ans->content_type;

	if (text == NULL) {
		text = ans->json ? json_dumps(ans->json, JSON_COMPACT) : NULL;
		ctype = "application/json";
		if (text == NULL) {
			text = strdup("{\"errors\":[\"internal error\"]}");
			ans->status = 500;
		}
	} else
		ans->text = NULL;
	if (text == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, ans->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
remote_of(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	out[0] = '\0';
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		    (socklen_t)len);
}

/* An oversized body is refused like any other bad input: logged and
 * audited, with the route it was sent to. */
static void
note_too_large(struct attest *a, struct MHD_Connection *c, const char *url)
{
	struct attest_req req;
	char remote[INET6_ADDRSTRLEN + 1];
	const char *op = strcmp(url, "/v1/enroll/start") == 0 ? "enroll.start"
	    : strcmp(url, "/v1/enroll/finish") == 0           ? "enroll.finish"
	                                                      : "http.request";

	remote_of(c, remote, sizeof(remote));
	tsi_log(TSI_LOG_WARN, "http.body_too_large", TSI_LS("path", url),
	    TSI_LS("remote", remote), TSI_LI("max", ATTEST_BODY_MAX));
	memset(&req, 0, sizeof(req));
	req.remote = remote;
	(void)attest_audit(a, &req, op, url, "deny", "request body too large",
	    NULL);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct attest *a = cls;
	struct conn_ctx *cc = *con_cls;
	struct attest_req req;
	struct attest_answer ans;
	const char *auth;
	char remote[INET6_ADDRSTRLEN + 1];
	uint8_t rid[16];
	enum MHD_Result ret;

	(void)version;
	if (cc == NULL) {
		const char *cl;

		if ((cc = calloc(1, sizeof(*cc))) == NULL ||
		    (cc->body = tsi_buf_new(ATTEST_BODY_MAX)) == NULL) {
			free(cc);
			return MHD_NO;
		}
		*con_cls = cc;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL) {
			char *end;
			unsigned long long n;

			errno = 0;
			n = strtoull(cl, &end, 10);
			if (errno != 0 || *end != '\0' || n > ATTEST_BODY_MAX) {
				note_too_large(a, c, url);
				memset(&ans, 0, sizeof(ans));
				cc->too_large = 1;
				attest_answer_error(&ans, 413,
				    "request body too large");
				ret = send_answer(c, &ans);
				attest_answer_clear(&ans);
				return ret;
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!cc->too_large &&
		    tsi_buf_put(cc->body, upload_data, *upload_data_size) !=
		        TSI_OK) {
			cc->too_large = 1;
			tsi_buf_reset(cc->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	memset(&ans, 0, sizeof(ans));
	remote_of(c, remote, sizeof(remote));
	if (cc->too_large) {
		note_too_large(a, c, url);
		attest_answer_error(&ans, 413, "request body too large");
		ret = send_answer(c, &ans);
		attest_answer_clear(&ans);
		return ret;
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.body = tsi_buf_str(cc->body);
	req.body_len = tsi_buf_len(cc->body);
	req.remote = remote;
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
		req.token = auth + 7;
	if (RAND_bytes(rid, sizeof(rid)) == 1)
		tsi_hex_encode(rid, sizeof(rid), req.request_id);
	attest_dispatch(a, &req, &ans);
	ret = send_answer(c, &ans);
	attest_answer_clear(&ans);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct conn_ctx *cc = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (cc != NULL) {
		tsi_buf_free(cc->body);
		free(cc);
		*con_cls = NULL;
	}
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
	char *out = NULL;

	(void)tsi_file_read(path, 1 << 20, 0, &out, NULL, err, errlen);
	return out;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	(void)cls;
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	msg[strcspn(msg, "\n")] = '\0';
	tsi_log(TSI_LOG_WARN, "http.mhd", TSI_LS("message", msg));
}

int
attest_http_start(struct attest *a, char *err, size_t errlen)
{
	const struct attest_settings *s = a->set;
	char *cert = NULL, *key = NULL;
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	int r, lfd = -1;

	/* Bound here, not by libmicrohttpd (whose address reuse option is
	 * SO_REUSEPORT on Linux: a second tsi-attest on the port would share
	 * it), so that a second server fails with the reason. */
	if ((r = tsi_net_listen(s->listen, &lfd, err, errlen)) != TSI_OK)
		return r;
	r = TSI_ERR_CONFIG;
	if (!s->dev) {
		if ((cert = read_file(s->tls_cert, err, errlen)) == NULL ||
		    (key = read_file(s->tls_key, err, errlen)) == NULL)
			goto out;
		flags |= MHD_USE_TLS;
	}
	a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, a,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, MHD_OPTION_LISTEN_SOCKET,
	    (MHD_socket)lfd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->threads,
	    MHD_OPTION_CONNECTION_LIMIT, 256u,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_NOTIFY_COMPLETED,
	    completed, a, cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
	    cert, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_PRIORITIES,
	    "SECURE256:+SECURE128:-VERS-ALL:"
	    "+VERS-TLS1.3:+VERS-TLS1.2",
	    MHD_OPTION_END);
	if (a->mhd == NULL) {
		tsi_errf(err, errlen,
		    "cannot start HTTP server on %s (bad TLS "
		    "certificate/key?)",
		    s->listen);
		r = TSI_ERR_IO;
		goto out;
	}
	lfd = -1; /* MHD's now; closed by MHD_stop_daemon */
	r = TSI_OK;
out:
	if (lfd >= 0)
		close(lfd);
	tsi_strfree(key);
	free(cert);
	return r;
}

void
attest_http_stop(struct attest *a)
{
	if (a->mhd != NULL)
		MHD_stop_daemon(a->mhd);
	a->mhd = NULL;
}
