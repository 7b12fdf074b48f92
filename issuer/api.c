/*
 * api.c - HTTP over the issuer's Unix socket (see api.h).
 */
#include "issuer/api.h"
#include "issuer/api_mhd.h"
#include "issuer/priv_proto.h"
#include "issuer/privsep.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

struct tsi_api {
	const struct tsi_issuer_config *cfg;
	struct tsi_minter *minter;
	struct tsi_resolver *resolver;
	struct tsi_monitor *monitor;
	struct tsi_front *front; /* privsep: the signer mints */
	struct MHD_Daemon *daemon;
	int fd;
	int own_socket; /* bound here: unlinked at stop */
	/* Connections wait at accept until the API is opened (the front
	 * end's sandbox is in place before it reads a byte from the network). */
	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cv;
	int open;
};

/* Who is on the other end, taken once when the connection is accepted. */
struct peer {
	int ok;
	struct tsi_peer id;           /* checked again for every request */
	uint32_t handle;              /* privsep: the signer's name for it */
	struct tsi_claims_memo *memo; /* this caller's encoded claims */
	/* A request whose resolution waits for work on another thread
	 * (hashing an executable) is suspended, not left holding its
	 * event-loop thread; the worker's wake resumes it. suspended and
	 * woken under mu: a wake before the suspension is remembered. */
	struct MHD_Connection *conn;
	pthread_mutex_t mu;
	int suspended, woken;
	struct tsi_resolve_state rs;
};

static int request_marker;

/* A response body that may hold a token: wiped when MHD frees it. */
struct body {
	size_t len;
	char text[];
};

static void
body_free(void *cls)
{
	struct body *b = cls;

	tsi_freezero(b, sizeof(*b) + b->len);
}

/* Queues status with the first len bytes of b (taken: freed on every path). */
static enum MHD_Result
queue_body(struct MHD_Connection *c, unsigned int status, struct body *b,
    size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer_with_free_callback_cls(len,
	    b->text, body_free, b);
	if (resp == NULL) {
		body_free(b);
		return MHD_NO;
	}
	(void)MHD_add_response_header(resp, "Content-Type", "application/json");
	(void)MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned int status, const char *text,
    size_t len)
{
	struct body *b;

	if ((b = malloc(sizeof(*b) + len)) == NULL)
		return MHD_NO;
	b->len = len;
	memcpy(b->text, text, len);
	return queue_body(c, status, b, len);
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, json_t *body)
{
	enum MHD_Result ret;
	char *text;
	size_t len;

	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL)
		return MHD_NO;
	len = strlen(text);
	ret = reply_text(c, status, text, len);
	tsi_freezero(text, len); /* may hold a token */
	return ret;
}

/*
 * {"token":"<jwt>","expires_at":N} without a JSON library round trip: a
 * compact JWS is base64url and '.', nothing in it needs escaping (checked,
 * not assumed), so the body is one copy of the token.
 */
static enum MHD_Result
reply_token(struct MHD_Connection *c, const char *token, long long exp)
{
	static const char head[] = "{\"token\":\"";
	/* The base64url alphabet and '.': one table lookup per byte of a
	 * token of a few KiB (the x5c chain is in its header). */
	static const char jws_chars[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_.";
	struct body *b;
	size_t tl = strlen(token), off, cap;
	int n;

	if (strspn(token, jws_chars) != tl)
		return MHD_NO;
	/* head, token, "\",\"expires_at\":" (16), up to 20 digits, "}" */
	cap = sizeof(head) - 1 + tl + 16 + 21 + 1;
	if ((b = malloc(sizeof(*b) + cap)) == NULL)
		return MHD_NO;
	b->len = cap;
	memcpy(b->text, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	memcpy(b->text + off, token, tl);
	off += tl;
	n = snprintf(b->text + off, cap - off, "\",\"expires_at\":%lld}", exp);
	if (n < 0 || (size_t)n >= cap - off) {
		body_free(b);
		return MHD_NO;
	}
	off += (size_t)n;
	return queue_body(c, MHD_HTTP_OK, b, off);
}

static enum MHD_Result
reply_error(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	json_t *b = json_pack("{s:s}", "error", msg);
	enum MHD_Result ret = reply(c, status, b);

	json_decref(b);
	return ret;
}

struct args {
	int n_aud, n_other;
	const char *aud;
};

static enum MHD_Result
count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct args *a = cls;

	if (key != NULL && strcmp(key, "aud") == 0) {
		a->n_aud++;
		a->aud = value;
	} else
		a->n_other++;
	return MHD_YES;
}

static void
notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct tsi_api *api = cls;
	const union MHD_ConnectionInfo *ci;
	struct peer *p;

	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		p = *socket_context;
		if (p != NULL) {
			if (api->front != NULL && p->ok)
				tsi_front_release(api->front, p->handle);
			tsi_claims_memo_free(p->memo);
			tsi_peer_release(&p->id);
			/* Never suspended here: a suspended connection is
			 * not closed, so no work on it is in flight. */
			tsi_resolve_state_clear(&p->rs);
			pthread_mutex_destroy(&p->mu);
		}
		free(p);
		*socket_context = NULL;
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		return;
	}
	p->conn = c;
	p->memo = tsi_claims_memo_new(); /* NULL: no reuse, still correct */
	p->id.stat_fd = -1;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (api->front != NULL) {
		/* The signer identifies the caller itself (privsep.h). */
		if (ci != NULL &&
		    tsi_front_identify(api->front, ci->connect_fd, &p->id,
		        &p->handle) == TSI_OK)
			p->ok = 1;
	} else if (ci != NULL &&
	    tsi_peer_take(api->cfg->proc_root, api->cfg->resolver,
	        ci->connect_fd, &p->id) == TSI_OK)
		p->ok = 1;
	*socket_context = p;
}

/* The wake of a request waiting for a resolver's worker (any thread). */
static void
peer_wake(void *arg)
{
	struct peer *p = arg;

	pthread_mutex_lock(&p->mu);
	if (p->suspended) {
		p->suspended = 0;
		MHD_resume_connection(p->conn);
	} else
		p->woken = 1;
	pthread_mutex_unlock(&p->mu);
}

/* After the resolver said TSI_ERR_AGAIN: 1 when the connection was
 * suspended (its wake will resume it), 0 when the wake already came. */
static int
peer_suspend(struct peer *p, struct MHD_Connection *c)
{
	int suspended = 0;

	pthread_mutex_lock(&p->mu);
	if (p->woken)
		p->woken = 0;
	else {
		p->suspended = 1;
		MHD_suspend_connection(c);
		suspended = 1;
	}
	pthread_mutex_unlock(&p->mu);
	return suspended;
}

static struct peer *
conn_peer(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/*
 * The token in privsep mode: the front end resolves a Kubernetes caller
 * through the kubelet (suspended while the pod list is fetched) and the
 * signer mints, for the caller it identified; a host caller is resolved by
 * the signer (suspended while it hashes the executable).
 */
static enum MHD_Result
token_front(struct tsi_api *api, struct MHD_Connection *c, struct peer *p,
    const char *aud)
{
	struct tsi_wake wake;
	struct tsi_workload *w = NULL;
	char reason[TSI_PRIV_EXE_MAX + 1], *token = NULL;
	long long exp = 0;
	enum MHD_Result ret;
	int r = TSI_OK;

	wake.fn = peer_wake;
	wake.arg = p;
	if (api->cfg->resolver == TSI_RESOLVER_KUBELET)
		while ((r = tsi_resolver_resolve(api->resolver, &p->id, &p->rs,
		            &wake, &w)) == TSI_ERR_AGAIN)
			if (peer_suspend(p, c))
				return MHD_YES;
	if (r == TSI_OK)
		while ((r = tsi_front_sign(api->front, p->handle, aud,
		            p->id.container, w, &wake, &token, &exp, reason,
		            sizeof(reason))) == TSI_ERR_AGAIN)
			if (peer_suspend(p, c)) {
				tsi_workload_free(w);
				return MHD_YES;
			}
	if (r == TSI_ERR_TPM_UNAVAILABLE || r == TSI_ERR_TPM) {
		tsi_log(TSI_LOG_WARN, "token.unavailable",
		    TSI_LI("pid", p->id.pid), TSI_LS("reason", reason));
		ret = reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "TPM unavailable, retry later");
		goto out;
	}
	if (r == TSI_ERR_UNIDENTIFIED || r == TSI_ERR_PARSE ||
	    r == TSI_ERR_NOT_FOUND || r == TSI_ERR_DENIED) {
		tsi_log(TSI_LOG_WARN, "token.denied", TSI_LI("pid", p->id.pid),
		    TSI_LI("uid", p->id.uid),
		    TSI_LS("reason", tsi_strerror(r)));
		ret = reply_error(c, MHD_HTTP_FORBIDDEN,
		    "caller not identifiable");
		goto out;
	}
	if (r == TSI_ERR_IO || r == TSI_ERR_TOO_LARGE) {
		tsi_log(TSI_LOG_ERROR, "token.resolve_failed",
		    TSI_LI("pid", p->id.pid), TSI_LS("error", tsi_strerror(r)));
		ret = reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "workload lookup unavailable, retry later");
		goto out;
	}
	if (r != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "token.mint_failed",
		    TSI_LS("error", tsi_strerror(r)));
		ret = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "internal error");
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "token.issued", TSI_LI("pid", p->id.pid),
	    TSI_LI("uid", p->id.uid), TSI_LS("aud", aud),
	    TSI_LS("namespace", w != NULL && w->namespace ? w->namespace : ""),
	    TSI_LS("pod", w != NULL && w->pod ? w->pod : ""),
	    TSI_LS("exe", w == NULL ? reason : ""), TSI_LI("exp", exp));
	ret = reply_token(c, token, exp);
out:
	tsi_strfree(token);
	tsi_workload_free(w);
	return ret;
}

static enum MHD_Result
handle_token(struct tsi_api *api, struct MHD_Connection *c)
{
	struct tsi_wake wake;
	struct peer *p;
	struct tsi_workload *w = NULL;
	struct args a = { 0, 0, NULL };
	char reason[256], *token = NULL;
	long long exp = 0;
	enum MHD_Result ret;
	int r;

	(void)MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_arg,
	    &a);
	if (a.n_other > 0)
		return reply_error(c, MHD_HTTP_BAD_REQUEST,
		    "only the aud parameter may be given");
	if (a.n_aud != 1 || !tsi_aud_ok(a.aud))
		return reply_error(c, MHD_HTTP_BAD_REQUEST,
		    "aud is required: 1-256 printable characters, no spaces");
	p = conn_peer(c);
	if (p == NULL || !p->ok) {
		tsi_log(TSI_LOG_WARN, "token.denied",
		    TSI_LS("reason", "no peer credentials"));
		return reply_error(c, MHD_HTTP_FORBIDDEN,
		    "caller not identifiable");
	}
	if (api->front != NULL)
		return token_front(api, c, p, a.aud);
	if (tsi_monitor_status(api->monitor, reason, sizeof(reason)) !=
	    TSI_OK) {
		tsi_log(TSI_LOG_WARN, "token.unavailable",
		    TSI_LI("pid", p->id.pid), TSI_LS("reason", reason));
		return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "TPM unavailable, retry later");
	}
	wake.fn = peer_wake;
	wake.arg = p;
	while ((r = tsi_resolver_resolve(api->resolver, &p->id, &p->rs, &wake,
	            &w)) == TSI_ERR_AGAIN)
		if (peer_suspend(p, c))
			return MHD_YES; /* asked again once resumed */
	/* The pid must still be the process that connected, running what
	 * it ran then, after everything was read about it. */
	if (r == TSI_OK)
		r = tsi_peer_check(api->cfg->proc_root, &p->id);
	if (r == TSI_ERR_UNIDENTIFIED || r == TSI_ERR_PARSE ||
	    r == TSI_ERR_NOT_FOUND) {
		tsi_log(TSI_LOG_WARN, "token.denied", TSI_LI("pid", p->id.pid),
		    TSI_LI("uid", p->id.uid),
		    TSI_LS("reason", tsi_strerror(r)));
		ret = reply_error(c, MHD_HTTP_FORBIDDEN,
		    "caller not identifiable");
		goto out;
	}
	if (r != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "token.resolve_failed",
		    TSI_LI("pid", p->id.pid), TSI_LS("error", tsi_strerror(r)));
		ret = reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "workload lookup unavailable, retry later");
		goto out;
	}
	r = tsi_minter_mint_memo(api->minter, w, a.aud, p->memo, &token, &exp);
	if (r == TSI_ERR_TPM_UNAVAILABLE || r == TSI_ERR_TPM) {
		tsi_monitor_report(api->monitor, r,
		    "signing failed: TPM unavailable");
		ret = reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "TPM unavailable, retry later");
		goto out;
	}
	if (r != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "token.mint_failed",
		    TSI_LS("error", tsi_strerror(r)));
		ret = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "internal error");
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "token.issued", TSI_LI("pid", p->id.pid),
	    TSI_LI("uid", p->id.uid), TSI_LS("aud", a.aud),
	    TSI_LS("namespace", w->namespace ? w->namespace : ""),
	    TSI_LS("pod", w->pod ? w->pod : ""),
	    TSI_LS("exe", w->exe ? w->exe : ""), TSI_LI("exp", exp));
	ret = reply_token(c, token, exp);
out:
	tsi_strfree(token);
	tsi_workload_free(w);
	return ret;
}

static enum MHD_Result
handle_jwks(struct tsi_api *api, struct MHD_Connection *c)
{
	json_t *jwks = NULL;
	enum MHD_Result ret;
	int r;

	if ((r = api->front != NULL
	            ? tsi_front_jwks(api->front, &jwks)
	            : tsi_minter_jwks(api->minter, &jwks)) != TSI_OK)
		return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "internal error");
	ret = reply(c, MHD_HTTP_OK, jwks);
	json_decref(jwks);
	return ret;
}

static enum MHD_Result
handle_health(struct tsi_api *api, struct MHD_Connection *c)
{
	char reason[256], kid[44], cluster[129], dc[129];
	const struct tsi_location *loc;
	enum MHD_Result ret;
	json_t *b;
	int r;

	if (api->front != NULL)
		r = tsi_front_health(api->front, reason, sizeof(reason), kid,
		    cluster, dc);
	else {
		loc = tsi_minter_location(api->minter);
		if ((r = tsi_monitor_status(api->monitor, reason,
		         sizeof(reason))) == TSI_OK) {
			if (tsi_minter_kid(api->minter, kid) != TSI_OK)
				kid[0] = '\0';
			(void)snprintf(cluster, sizeof(cluster), "%s",
			    loc->cluster_name);
			(void)snprintf(dc, sizeof(dc), "%s", loc->datacenter);
		}
	}
	if (r != TSI_OK)
		b = json_pack("{s:s, s:s}", "tpm", "unavailable", "reason",
		    reason);
	else
		b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "tpm", "ok",
		    "signing",
		    api->cfg->signing == TSI_SIGNING_TPM ? "tpm" : "delegated",
		    "resolver",
		    api->cfg->resolver == TSI_RESOLVER_UNIX ? "unix"
		                                            : "kubelet",
		    "kid", kid, "cluster-name", cluster, "datacenter", dc);
	ret = reply(c,
	    json_object_get(b, "reason") ? MHD_HTTP_SERVICE_UNAVAILABLE
	                                 : MHD_HTTP_OK,
	    b);
	json_decref(b);
	return ret;
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **req_ctx)
{
	struct tsi_api *api = cls;

	/* Answer on the second call: a response queued on the first call
	 * makes libmicrohttpd close the connection (no keep-alive). */
	if (*req_ctx == NULL) {
		struct peer *p = conn_peer(c);
		/* A new request: nothing of the last one's resolution. */
		if (p != NULL)
			tsi_resolve_state_clear(&p->rs);
		*req_ctx = &request_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed");
	if (strcmp(url, "/v1/token") == 0)
		return handle_token(api, c);
	if (strcmp(url, "/v1/jwks") == 0)
		return handle_jwks(api, c);
	if (strcmp(url, "/v1/health") == 0)
		return handle_health(api, c);
	return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

int
tsi_api_socket_in_use(const char *path)
{
	struct sockaddr_un sa;
	int fd, in_use;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	/* A live listener accepts (or its backlog does); a stale file gives
	 * ECONNREFUSED, a missing one ENOENT. */
	in_use = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	    errno == EAGAIN;
	close(fd);
	return in_use;
}

int
tsi_api_bind(const struct tsi_issuer_config *cfg, int *out)
{
	struct sockaddr_un sa;
	struct stat st;
	struct group *gr;
	mode_t old;
	int fd, r = TSI_ERR_IO;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(cfg->socket) >= sizeof(sa.sun_path))
		return TSI_ERR_TOO_LARGE;
	memcpy(sa.sun_path, cfg->socket, strlen(cfg->socket) + 1);
	/* A leftover socket from a previous run is replaced; any other file
	 * at that path is not ours to delete, and neither is the socket of an
	 * issuer still running (two issuers would split the node's callers). */
	if (lstat(cfg->socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			tsi_log(TSI_LOG_ERROR, "api.socket",
			    TSI_LS("path", cfg->socket),
			    TSI_LS("error", "exists and is not a socket"));
			return TSI_ERR_EXISTS;
		}
		if (tsi_api_socket_in_use(cfg->socket)) {
			tsi_log(TSI_LOG_ERROR, "api.socket",
			    TSI_LS("path", cfg->socket),
			    TSI_LS("error",
			        "address in use: "
			        "another tsi-issuer serves it"));
			return TSI_ERR_EXISTS;
		}
		(void)unlink(cfg->socket);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	old = umask(0177); /* no window with a wider mode than configured */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (cfg->socket_group != NULL) {
		if ((gr = getgrnam(cfg->socket_group)) == NULL) {
			tsi_log(TSI_LOG_ERROR, "api.socket",
			    TSI_LS("group", cfg->socket_group),
			    TSI_LS("error", "no such group"));
			r = TSI_ERR_CONFIG;
			goto fail_unlink;
		}
		if (chown(cfg->socket, (uid_t)-1, gr->gr_gid) != 0)
			goto fail_unlink;
	}
	if (chmod(cfg->socket, cfg->socket_mode) != 0 || listen(fd, 128) != 0)
		goto fail_unlink;
	*out = fd;
	return TSI_OK;
fail_unlink:
	(void)unlink(cfg->socket);
fail:
	tsi_log(TSI_LOG_ERROR, "api.socket", TSI_LS("path", cfg->socket),
	    TSI_LS("error", strerror(errno)));
	if (fd >= 0)
		close(fd);
	return r;
}

/* Holds a new connection until the API is opened. */
static enum MHD_Result
gate(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct tsi_api *a = cls;

	(void)addr;
	(void)len;
	if (__atomic_load_n(&a->open, __ATOMIC_ACQUIRE))
		return MHD_YES;
	pthread_mutex_lock(&a->gate_mu);
	while (!a->open)
		pthread_cond_wait(&a->gate_cv, &a->gate_mu);
	pthread_mutex_unlock(&a->gate_mu);
	return MHD_YES;
}

static int
start(const struct tsi_issuer_config *cfg, struct tsi_minter *minter,
    struct tsi_resolver *resolver, struct tsi_monitor *monitor,
    struct tsi_front *front, int fd, int own_socket, struct tsi_api **out)
{
	struct tsi_api *a;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		close(fd);
		return TSI_ERR_ALLOC;
	}
	a->cfg = cfg;
	a->minter = minter;
	a->resolver = resolver;
	a->monitor = monitor;
	a->front = front;
	a->fd = fd;
	a->own_socket = own_socket;
	a->open = front == NULL;
	if (pthread_mutex_init(&a->gate_mu, NULL) != 0 ||
	    pthread_cond_init(&a->gate_cv, NULL) != 0) {
		close(fd);
		free(a);
		return TSI_ERR_INTERNAL;
	}
	/* Every setting that shapes a request's cost comes from api_mhd.h,
	 * shared with the benchmark's floor (bench/issuer_hello.c); the
	 * connection notifier is ours (peer credentials at accept). */
	a->daemon = MHD_start_daemon(TSI_ISSUER_MHD_FLAGS, 0, gate, a, handler,
	    a, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)a->fd,
	    MHD_OPTION_THREAD_POOL_SIZE,
	    front != NULL ? tsi_issuer_front_threads()
	                  : tsi_issuer_mhd_threads(),
	    MHD_OPTION_NOTIFY_CONNECTION, notify_conn, a,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_clients,
	    MHD_OPTION_CONNECTION_TIMEOUT, TSI_ISSUER_CONN_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, TSI_ISSUER_CONN_MEMORY,
	    MHD_OPTION_END);
	if (a->daemon == NULL) {
		tsi_log(TSI_LOG_ERROR, "api.start",
		    TSI_LS("path", cfg->socket));
		close(a->fd);
		if (own_socket)
			(void)unlink(cfg->socket);
		pthread_cond_destroy(&a->gate_cv);
		pthread_mutex_destroy(&a->gate_mu);
		free(a);
		return TSI_ERR_IO;
	}
	tsi_log(TSI_LOG_INFO, "api.listening", TSI_LS("socket", cfg->socket));
	*out = a;
	return TSI_OK;
}

int
tsi_api_start(const struct tsi_issuer_config *cfg, struct tsi_minter *minter,
    struct tsi_resolver *resolver, struct tsi_monitor *monitor,
    struct tsi_api **out)
{
	int fd, r;

	if ((r = tsi_api_bind(cfg, &fd)) != TSI_OK)
		return r;
	return start(cfg, minter, resolver, monitor, NULL, fd, 1, out);
}

int
tsi_api_start_front(const struct tsi_issuer_config *cfg,
    struct tsi_front *front, struct tsi_resolver *resolver, int listen_fd,
    struct tsi_api **out)
{
	return start(cfg, NULL, resolver, NULL, front, listen_fd, 0, out);
}

void
tsi_api_open(struct tsi_api *a)
{
	pthread_mutex_lock(&a->gate_mu);
	__atomic_store_n(&a->open, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&a->gate_cv);
	pthread_mutex_unlock(&a->gate_mu);
}

void
tsi_api_stop(struct tsi_api *a)
{
	if (a == NULL)
		return;
	/* A connection held at the gate must not hold the daemon's stop. */
	tsi_api_open(a);
	/* libmicrohttpd must not stop with a suspended connection: every
	 * waiting request is woken first, and none waits after this. */
	tsi_resolver_stop(a->resolver);
	if (a->daemon != NULL)
		MHD_stop_daemon(a->daemon); /* closes the listen socket */
	else if (a->fd >= 0)
		close(a->fd);
	if (a->own_socket)
		(void)unlink(a->cfg->socket);
	pthread_cond_destroy(&a->gate_cv);
	pthread_mutex_destroy(&a->gate_mu);
	free(a);
}
