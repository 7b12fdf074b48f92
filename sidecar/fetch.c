/*
 * The sidecar's HTTP side, with libcurl: the issuer over its Unix socket,
 * tsi-vault over HTTPS. Every vault request (the login and the reads) runs
 * on one multi handle that lives as long as the sidecar, with a share handle
 * for connections, TLS sessions and DNS: the CA file is parsed once, the
 * login's connection carries a read, and a refresh reuses the connections
 * of the last one.
 *
 * Every response body goes into a bounded, wiping buffer; request bodies and
 * headers that carry the JWT or the client token are wiped after use. Error
 * strings say what failed (status, curl's reason, vault's error text) and
 * never include a token or a secret value.
 */
#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/curlmsg.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads in flight at once (one connection each, HTTP/1.1 has no usable
 * pipelining): tsi-vault commits the audit records of the requests that
 * reach it together in one group, so the more arrive at once the fewer
 * commits the batch waits for. 10 secrets need 2 commits at 16 and 3-4 at
 * 8 (bench/run's sidecar figure). */
#define READ_CONCURRENCY 16

struct slot;

struct tsi_sidecar_http {
	CURLM *multi;  /* every request, the issuer's and the vault's */
	CURLSH *share; /* connections and TLS sessions to tsi-vault */
	const struct tsi_sidecar_settings *st; /* borrowed, outlives h */
	volatile sig_atomic_t *stop;
	struct slot *warm; /* READ_CONCURRENCY warm-up requests, or NULL */
	int warm_pending;  /* of those, not finished yet */
	size_t warm_want;  /* warm-ups asked for, not started yet */
};

static void warm_end(struct tsi_sidecar_http *h);
static void warm_start(struct tsi_sidecar_http *h);

int
tsi_sidecar_is_final(int r)
{
	return r != TSI_OK && r != TSI_ERR_AGAIN && r != TSI_ERR_TIMEOUT;
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct tsi_buf *b = arg;
	size_t n = size * nmemb;

	/* Returning less than n makes curl fail with CURLE_WRITE_ERROR. */
	if (tsi_buf_put(b, p, n) != TSI_OK)
		return 0;
	return n;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct tsi_sidecar_http *h = arg;

	return (h->stop != NULL && *h->stop) ? 1 : 0;
}

int
tsi_sidecar_http_new(const struct tsi_sidecar_settings *st,
    volatile sig_atomic_t *stop, struct tsi_sidecar_http **out)
{
	struct tsi_sidecar_http *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return TSI_ERR_ALLOC;
	h->st = st;
	h->stop = stop;
	if ((h->multi = curl_multi_init()) == NULL ||
	    (h->share = curl_share_init()) == NULL ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE,
	        CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE,
	        CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) !=
	        CURLSHE_OK ||
	    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	        (long)READ_CONCURRENCY) != CURLM_OK ||
	    /* Keep them all between the login and the reads (the default
	     * keeps 4 per transfer in flight, which may be 1 then). */
	    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
	        (long)READ_CONCURRENCY + 1) != CURLM_OK) {
		tsi_sidecar_http_free(h);
		return TSI_ERR_ALLOC;
	}
	*out = h;
	return TSI_OK;
}

void
tsi_sidecar_http_free(struct tsi_sidecar_http *h)
{
	if (h == NULL)
		return;
	warm_end(h);
	/* No easy handle is left in it (each request removes its own). */
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	/* Last: the easy handles using it are gone. */
	if (h->share != NULL)
		curl_share_cleanup(h->share);
	free(h);
}

/* Frees a header list after wiping every header (they carry the token). */
static void
slist_free_wiped(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p != NULL; p = p->next)
		if (p->data != NULL)
			explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Options of one request on c (freshly made or reset). */
static void
configure(struct tsi_sidecar_http *h, CURL *c, int issuer, const char *url,
    struct curl_slist *hdrs, const char *body, struct tsi_buf *resp,
    char *errbuf)
{
	const struct tsi_sidecar_settings *st = h->st;

	errbuf[0] = '\0';
	tsi_buf_reset(resp);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, st->http_timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	    st->http_timeout_ms < 5000 ? st->http_timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tsi-sidecar/" TSI_VERSION);
	/* The answers are small (a token, a secret): a 4 KiB receive buffer
	 * per request instead of 16, fewer pages to fault in and to wipe.
	 * Bigger answers only take more reads. */
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 4096L);
	if (issuer) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH,
		    st->issuer_socket);
	} else {
		curl_easy_setopt(c, CURLOPT_SHARE, h->share);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
		if (st->cacert != NULL)
			curl_easy_setopt(c, CURLOPT_CAINFO, st->cacert);
	}
	if (hdrs != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
}

/* Maps a failed transfer to an error class, with the reason in err. */
static int
transfer_error(struct tsi_sidecar_http *h, int issuer, CURLcode cc,
    const char *errbuf, const char *what, char *err, size_t errlen)
{
	if (h->stop != NULL && *h->stop) {
		tsi_errf(err, errlen, "%s: interrupted", what);
		return TSI_ERR_INTERNAL;
	}
	if (cc == CURLE_WRITE_ERROR) {
		tsi_errf(err, errlen, "%s: response larger than %d bytes", what,
		    TSI_SIDECAR_RESPONSE_MAX);
		return TSI_ERR_TOO_LARGE;
	}
	if (issuer)
		tsi_errf(err, errlen, "%s: cannot reach the issuer at %s: %s",
		    what, h->st->issuer_socket, curl_easy_strerror(cc));
	else {
		char why[512];

		tsi_errf(err, errlen, "%s: %s", what,
		    tsi_curl_explain((int)cc, errbuf, h->st->vault_addr,
		        "VAULT_CACERT (vault_cacert)", why, sizeof(why)));
	}
	/* A certificate that does not verify will not verify next time
	 * either; everything else (refused, reset, timeout, DNS) may be
	 * transient. */
	if (cc == CURLE_PEER_FAILED_VERIFICATION ||
	    cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_URL_MALFORMAT ||
	    cc == CURLE_UNSUPPORTED_PROTOCOL)
		return TSI_ERR_BAD_CERT;
	return TSI_ERR_AGAIN;
}

/* Vault's {"errors": [...]} first message, sanitized for a log line. */
static void
vault_error(const struct tsi_buf *resp, char *out, size_t outlen)
{
	json_t *j = json_loadb(tsi_buf_str(resp), tsi_buf_len(resp), 0, NULL);
	const char *m = NULL;
	size_t i;

	out[0] = '\0';
	if (j != NULL)
		m = json_string_value(
		    json_array_get(json_object_get(j, "errors"), 0));
	if (m != NULL && snprintf(out, outlen, "%s", m) >= 0) {
		for (i = 0; out[i] != '\0'; i++)
			if ((unsigned char)out[i] < 0x20)
				out[i] = ' ';
	}
	json_decref(j);
}

/* Maps a non-200 status to an error class with a message. */
static int
status_error(long status, const char *what, const struct tsi_buf *resp,
    int forbidden, char *err, size_t errlen)
{
	char detail[160];

	vault_error(resp, detail, sizeof(detail));
	tsi_errf(err, errlen, "%s: HTTP %ld%s%s", what, status,
	    detail[0] ? ": " : "", detail);
	if (status == 403)
		return forbidden;
	if (status == 404)
		return TSI_ERR_NOT_FOUND;
	if (status == 429 || status == 408 || status >= 500)
		return TSI_ERR_AGAIN;
	return TSI_ERR_PARSE;
}

static const char *
vault_base(const struct tsi_sidecar_settings *st, size_t *len)
{
	size_t n = strlen(st->vault_addr);

	while (n > 0 && st->vault_addr[n - 1] == '/')
		n--;
	*len = n;
	return st->vault_addr;
}

/* One request on h->multi. */
struct slot {
	CURL *c;              /* NULL once finished (or never started) */
	int issuer;           /* to the issuer (else tsi-vault) */
	struct tsi_buf *resp; /* the body; wiped when freed */
	CURLcode cc;          /* when finished: the transfer's result */
	long status;          /* when finished without error: HTTP status */
	/* Called when it finishes (the handle already ended, the body still
	 * in resp); then *pending is decremented. */
	void (*fin)(void *arg, struct slot *s);
	void *arg;
	int *pending;
	char errbuf[CURL_ERROR_SIZE];
	char url[2048];
	char what[600];
};

/* Starts request s (url, what, resp, fin, arg, pending set) on h->multi and
 * counts it in *s->pending. */
static int
slot_start(struct tsi_sidecar_http *h, struct slot *s, struct curl_slist *hdrs,
    const char *body)
{
	if ((s->c = curl_easy_init()) == NULL)
		return TSI_ERR_ALLOC;
	configure(h, s->c, s->issuer, s->url, hdrs, body, s->resp, s->errbuf);
	curl_easy_setopt(s->c, CURLOPT_PRIVATE, (char *)s);
	if (curl_multi_add_handle(h->multi, s->c) != CURLM_OK) {
		curl_easy_cleanup(s->c);
		s->c = NULL;
		return TSI_ERR_ALLOC;
	}
	(*s->pending)++;
	return TSI_OK;
}

/* Ends a request, finished or not: its handle leaves the multi. */
static void
slot_end(struct tsi_sidecar_http *h, struct slot *s)
{
	if (s->c != NULL) {
		curl_multi_remove_handle(h->multi, s->c);
		curl_easy_cleanup(s->c);
		s->c = NULL;
		(*s->pending)--;
	}
}

/*
 * Runs the requests on h->multi until *pending (the caller's own) drops to
 * zero; others in flight (warm-ups) progress meanwhile. As each request
 * finishes, its cc and status are set, its handle ended and its fin
 * called. TSI_ERR_INTERNAL when the multi itself fails; the caller then
 * ends what is left.
 */
static int
drive(struct tsi_sidecar_http *h, const int *pending)
{
	CURLMsg *msg;
	int running = 0, left;

	while (*pending > 0) {
		if (curl_multi_perform(h->multi, &running) != CURLM_OK)
			return TSI_ERR_INTERNAL;
		while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
			struct slot *s = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&s);
			s->cc = msg->data.result;
			s->status = 0;
			if (s->cc == CURLE_OK)
				curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE,
				    &s->status);
			/* fin needs nothing of the handle; ending it first
			 * returns its connection to the pool at once. */
			slot_end(h, s);
			if (s->fin != NULL)
				s->fin(s->arg, s);
		}
		if (*pending == 0)
			break;
		if (running == 0)
			return TSI_ERR_INTERNAL; /* ours neither run nor ended */
		/* Waits at most 100 ms; the progress callback aborts the
		 * transfers themselves when told to stop. */
		if (curl_multi_poll(h->multi, NULL, 0, 100, NULL) != CURLM_OK)
			return TSI_ERR_INTERNAL;
	}
	return TSI_OK;
}

/*
 * One request (the issuer's token, the login) on the shared multi handle:
 * TSI_OK with *status, or the class of the transport failure.
 */
static int
perform(struct tsi_sidecar_http *h, struct slot *s, struct curl_slist *hdrs,
    const char *body, long *status, char *err, size_t errlen)
{
	int pending = 0, r;

	s->pending = &pending;
	if ((r = slot_start(h, s, hdrs, body)) != TSI_OK)
		return r;
	if (h->warm_want > 0) {
		int running;

		/* This request leaves first (a Unix socket connects at
		 * once); the warm-ups' connections are made while it is
		 * answered. */
		(void)curl_multi_perform(h->multi, &running);
		warm_start(h);
	}
	r = drive(h, &pending);
	slot_end(h, s);
	if (r != TSI_OK) {
		tsi_errf(err, errlen, "%s: %s", s->what, tsi_strerror(r));
		return r;
	}
	if (s->cc != CURLE_OK)
		return transfer_error(h, s->issuer, s->cc, s->errbuf, s->what,
		    err, errlen);
	*status = s->status;
	return TSI_OK;
}

/* A warm-up request finished: its answer does not matter, its connection
 * is in the pool now. */
static void
fin_warm(void *arg, struct slot *s)
{
	(void)arg;
	tsi_buf_free(s->resp);
	s->resp = NULL;
}

/* Ends the warm-up requests still in flight. */
static void
warm_end(struct tsi_sidecar_http *h)
{
	size_t i;

	for (i = 0; h->warm != NULL && i < READ_CONCURRENCY; i++) {
		slot_end(h, &h->warm[i]);
		tsi_buf_free(h->warm[i].resp);
	}
	free(h->warm);
	h->warm = NULL;
}

void
tsi_sidecar_warm_up(struct tsi_sidecar_http *h, size_t n)
{
	if (h->warm == NULL)
		h->warm_want = n; /* started by the next request */
}

/* Starts the warm-up requests asked for by tsi_sidecar_warm_up. */
static void
warm_start(struct tsi_sidecar_http *h)
{
	const char *base;
	size_t i, blen, n = h->warm_want;
	int running;

	h->warm_want = 0;
	if (h->warm != NULL || n == 0)
		return; /* once per process */
	/* One for each read: the login borrows one of them and gives it
	 * back before the reads start (with n - 1 the last read opened its
	 * connection only when the others were already sent). */
	n = n < READ_CONCURRENCY ? n : READ_CONCURRENCY;
	if ((h->warm = calloc(READ_CONCURRENCY, sizeof(*h->warm))) == NULL)
		return; /* only slower */
	base = vault_base(h->st, &blen);
	for (i = 0; i < n; i++) {
		struct slot *s = &h->warm[i];
		s->fin = fin_warm;
		s->pending = &h->warm_pending;
		(void)snprintf(s->what, sizeof(s->what), "warm-up");
		if (snprintf(s->url, sizeof(s->url), "%.*s/v1/sys/health",
		        (int)blen, base) >= (int)sizeof(s->url) ||
		    (s->resp = tsi_buf_new(64 * 1024)) == NULL ||
		    slot_start(h, s, NULL, NULL) != TSI_OK)
			break;
	}
	/* Sends the connection requests; the rest happens while the issuer
	 * and the login are waited for. */
	(void)curl_multi_perform(h->multi, &running);
}

int
tsi_sidecar_get_token(struct tsi_sidecar_http *h, char **jwt,
    long long *expires_at, char *err, size_t errlen)
{
	struct slot s;
	struct tsi_buf *resp = NULL;
	json_t *j = NULL;
	char *aud = NULL;
	const char *tok;
	long status = 0;
	int r;

	memset(&s, 0, sizeof(s));
	s.issuer = 1;
	(void)snprintf(s.what, sizeof(s.what), "issuer token request");
	if ((resp = tsi_buf_new(64 * 1024)) == NULL ||
	    (aud = curl_easy_escape(NULL, h->st->audience, 0)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (snprintf(s.url, sizeof(s.url), "http://localhost/v1/token?aud=%s",
	        aud) >= (int)sizeof(s.url)) {
		tsi_errf(err, errlen, "issuer: audience too long");
		r = TSI_ERR_INVALID_ARG;
		goto out;
	}
	s.resp = resp;
	r = perform(h, &s, NULL, NULL, &status, err, errlen);
	if (r != TSI_OK)
		goto out;
	if (status != 200) {
		r = status_error(status, "issuer token request", resp,
		    TSI_ERR_UNIDENTIFIED, err, errlen);
		if (status == 403)
			tsi_errf(err, errlen,
			    "issuer token request: HTTP 403: "
			    "the issuer could not identify this workload");
		goto out;
	}
	j = json_loadb(tsi_buf_str(resp), tsi_buf_len(resp), 0, NULL);
	tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL || tok[0] == '\0') {
		tsi_errf(err, errlen,
		    "issuer token request: no token in the "
		    "response");
		r = TSI_ERR_PARSE;
		goto out;
	}
	if ((*jwt = strdup(tok)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (expires_at != NULL)
		*expires_at =
		    json_integer_value(json_object_get(j, "expires_at"));
	r = TSI_OK;
out:
	json_decref(j);
	curl_free(aud);
	tsi_buf_free(resp);
	return r;
}

int
tsi_sidecar_token_ok(const char *tok)
{
	size_t i;

	for (i = 0; tok[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)tok[i];
		if (i >= TSI_SIDECAR_TOKEN_MAX)
			return 0;
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		        (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		        ch == '-'))
			return 0;
	}
	return i > 0;
}

int
tsi_sidecar_login(struct tsi_sidecar_http *h, const char *jwt,
    char **client_token, long long *lease_s, char *err, size_t errlen)
{
	struct slot s;
	struct tsi_buf *resp = NULL;
	struct curl_slist *hdrs = NULL;
	json_t *req = NULL, *j = NULL, *auth;
	char *body = NULL;
	const char *base, *tok;
	size_t blen;
	long status = 0;
	int r;

	memset(&s, 0, sizeof(s));
	(void)snprintf(s.what, sizeof(s.what), "login");
	base = vault_base(h->st, &blen);
	if (snprintf(s.url, sizeof(s.url),
	        "%.*s/v1/auth/trusted-identity/login", (int)blen,
	        base) >= (int)sizeof(s.url)) {
		tsi_errf(err, errlen, "VAULT_ADDR is too long");
		return TSI_ERR_INVALID_ARG;
	}
	if ((resp = tsi_buf_new(64 * 1024)) == NULL ||
	    (req = json_pack("{s:s, s:s}", "role", h->st->role, "jwt", jwt)) ==
	        NULL ||
	    (body = json_dumps(req, JSON_COMPACT)) == NULL ||
	    (hdrs = curl_slist_append(NULL,
	         "Content-Type: application/json")) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	s.resp = resp;
	r = perform(h, &s, hdrs, body, &status, err, errlen);
	if (r != TSI_OK)
		goto out;
	if (status != 200) {
		r = status_error(status, "login", resp, TSI_ERR_DENIED, err,
		    errlen);
		/* A rejected login (bad role, token refused) will be
		 * rejected again with the same token: final. */
		if (status == 400)
			r = TSI_ERR_DENIED;
		goto out;
	}
	j = json_loadb(tsi_buf_str(resp), tsi_buf_len(resp), 0, NULL);
	auth = json_object_get(j, "auth");
	tok = json_string_value(json_object_get(auth, "client_token"));
	if (tok == NULL || tok[0] == '\0') {
		tsi_errf(err, errlen,
		    "login: no auth.client_token in the response");
		r = TSI_ERR_PARSE;
		goto out;
	}
	/* It goes into the X-Vault-Token header of every read: a CR or LF
	 * from a hostile or impersonated server would add headers. */
	if (!tsi_sidecar_token_ok(tok)) {
		tsi_errf(err, errlen,
		    "login: auth.client_token is not a Vault "
		    "token (1 to %d characters of A-Z a-z 0-9 . _ -)",
		    TSI_SIDECAR_TOKEN_MAX);
		r = TSI_ERR_PARSE;
		goto out;
	}
	if ((*client_token = strdup(tok)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (lease_s != NULL)
		*lease_s =
		    json_integer_value(json_object_get(auth, "lease_duration"));
	r = TSI_OK;
out:
	json_decref(j);
	json_decref(req);
	tsi_strfree(body);
	curl_slist_free_all(hdrs);
	tsi_buf_free(resp);
	return r;
}

/* A finished read: status and body into the request's result. */
static void
read_result(struct tsi_sidecar_read_req *q, long status,
    const struct tsi_buf *resp, const char *what)
{
	json_t *j = NULL, *d, *dd;

	if (status != 200) {
		q->r = status_error(status, what, resp, TSI_ERR_DENIED, q->err,
		    sizeof(q->err));
		return;
	}
	j = json_loadb(tsi_buf_str(resp), tsi_buf_len(resp), 0, NULL);
	d = json_object_get(j, "data");
	dd = json_object_get(d, "data");
	if (!json_is_object(dd)) {
		tsi_errf(q->err, sizeof(q->err),
		    "%s: the response has no "
		    "data.data object",
		    what);
		q->r = TSI_ERR_PARSE;
	} else {
		q->version = json_integer_value(
		    json_object_get(json_object_get(d, "metadata"), "version"));
		q->data = json_incref(dd);
		q->r = TSI_OK;
	}
	json_decref(j);
}

struct read_batch {
	struct tsi_sidecar_http *h;
	struct slot *sl;
	struct tsi_sidecar_read_req *reqs;
	tsi_sidecar_read_fn done;
	void *arg;
};

static void
fin_read(void *arg, struct slot *s)
{
	struct read_batch *b = arg;
	size_t i = (size_t)(s - b->sl);
	struct tsi_sidecar_read_req *q = &b->reqs[i];

	if (s->cc != CURLE_OK)
		q->r = transfer_error(b->h, 0, s->cc, s->errbuf, s->what,
		    q->err, sizeof(q->err));
	else
		read_result(q, s->status, s->resp, s->what);
	/* Done with it: the body (a secret) is wiped now. */
	tsi_buf_free(s->resp);
	s->resp = NULL;
	if (b->done != NULL)
		b->done(b->arg, i, q);
}

int
tsi_sidecar_read_many(struct tsi_sidecar_http *h, const char *client_token,
    struct tsi_sidecar_read_req *reqs, size_t n, tsi_sidecar_read_fn done,
    void *arg)
{
	struct read_batch b;
	struct slot *sl = NULL;
	struct tsi_buf *hdr = NULL;
	struct curl_slist *hdrs = NULL;
	const char *base;
	size_t i, blen;
	int pending = 0, r = TSI_ERR_ALLOC;

	for (i = 0; i < n; i++) {
		reqs[i].r = TSI_ERR_INTERNAL;
		reqs[i].data = NULL;
		reqs[i].version = 0;
		tsi_errf(reqs[i].err, sizeof(reqs[i].err), "not attempted");
	}
	if (n == 0)
		return TSI_OK;
	base = vault_base(h->st, &blen);
	if ((sl = calloc(n, sizeof(*sl))) == NULL ||
	    (hdr = tsi_buf_new(8192)) == NULL ||
	    tsi_buf_putf(hdr, "X-Vault-Token: %s", client_token) != TSI_OK ||
	    (hdrs = curl_slist_append(NULL, tsi_buf_str(hdr))) == NULL)
		goto out;
	b.h = h;
	b.sl = sl;
	b.reqs = reqs;
	b.done = done;
	b.arg = arg;
	for (i = 0; i < n; i++) {
		struct slot *s = &sl[i];
		s->fin = fin_read;
		s->arg = &b;
		s->pending = &pending;
		(void)snprintf(s->what, sizeof(s->what), "read secret/data/%s",
		    reqs[i].path);
		if (snprintf(s->url, sizeof(s->url), "%.*s/v1/secret/data/%s",
		        (int)blen, base, reqs[i].path) >= (int)sizeof(s->url)) {
			reqs[i].r = TSI_ERR_INVALID_ARG;
			tsi_errf(reqs[i].err, sizeof(reqs[i].err),
			    "%s: URL too "
			    "long",
			    s->what);
			if (done != NULL)
				done(arg, i, &reqs[i]);
			continue;
		}
		if ((s->resp = tsi_buf_new(TSI_SIDECAR_RESPONSE_MAX)) == NULL ||
		    slot_start(h, s, hdrs, NULL) != TSI_OK)
			goto out;
	}
	r = drive(h, &pending);
out:
	for (i = 0; sl != NULL && i < n; i++) {
		slot_end(h, &sl[i]);
		tsi_buf_free(sl[i].resp);
	}
	free(sl);
	slist_free_wiped(hdrs);
	tsi_buf_free(hdr);
	return r;
}

int
tsi_sidecar_read(struct tsi_sidecar_http *h, const char *client_token,
    const char *path, json_t **data, long long *version, char *err,
    size_t errlen)
{
	struct tsi_sidecar_read_req q;
	int r;

	memset(&q, 0, sizeof(q));
	q.path = path;
	if ((r = tsi_sidecar_read_many(h, client_token, &q, 1, NULL, NULL)) !=
	    TSI_OK) {
		tsi_errf(err, errlen, "read secret/data/%s: %s", path,
		    tsi_strerror(r));
		return r;
	}
	if (q.r == TSI_OK) {
		*data = q.data;
		if (version != NULL)
			*version = q.version;
	} else {
		tsi_errf(err, errlen, "%s", q.err);
	}
	return q.r;
}
