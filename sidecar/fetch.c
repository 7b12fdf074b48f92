/*
 * The sidecar's HTTP side, with libcurl: the issuer over its Unix socket,
 * tsi-vault over HTTPS. One easy handle per server, so connections (and TLS
 * sessions) are reused between requests.
 *
 * Every response body goes into a bounded, wiping buffer; request bodies and
 * headers that carry the JWT or the client token are wiped after use. Error
 * strings say what failed (status, curl's reason, vault's error text) and
 * never include a token or a secret value.
 */
#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads in flight at once: tsi-vault commits their audit records together
 * (group commit) instead of one fsync per secret. */
#define READ_CONCURRENCY 8

struct tsi_sidecar_http {
	CURL *issuer;
	CURL *vault;       /* login */
	CURLSH *share;     /* connections and TLS sessions to tsi-vault */
	const struct tsi_sidecar_settings *st; /* borrowed, outlives h */
	volatile sig_atomic_t *stop;
	char errbuf[CURL_ERROR_SIZE];
};

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
	if ((h->issuer = curl_easy_init()) == NULL ||
	    (h->vault = curl_easy_init()) == NULL ||
	    (h->share = curl_share_init()) == NULL ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) !=
		CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE,
		CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) !=
		CURLSHE_OK) {
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
	if (h->issuer != NULL)
		curl_easy_cleanup(h->issuer);
	if (h->vault != NULL)
		curl_easy_cleanup(h->vault);
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
configure(struct tsi_sidecar_http *h, CURL *c, const char *url,
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
	if (c == h->issuer) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, st->issuer_socket);
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
transfer_error(struct tsi_sidecar_http *h, CURL *c, CURLcode cc,
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
	if (c == h->issuer)
		tsi_errf(err, errlen, "%s: cannot reach the issuer at %s: %s",
		    what, h->st->issuer_socket, curl_easy_strerror(cc));
	else
		tsi_errf(err, errlen, "%s: %s", what,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
	/* A certificate that does not verify will not verify next time
	 * either; everything else (refused, reset, timeout, DNS) may be
	 * transient. */
	if (cc == CURLE_PEER_FAILED_VERIFICATION ||
	    cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_URL_MALFORMAT ||
	    cc == CURLE_UNSUPPORTED_PROTOCOL)
		return TSI_ERR_BAD_CERT;
	return TSI_ERR_AGAIN;
}

/*
 * One request on c. body (may be NULL) is POSTed as JSON. TSI_OK with
 * *status, or the class of the transport failure (transfer_error).
 */
static int
perform(struct tsi_sidecar_http *h, CURL *c, const char *url,
    struct curl_slist *hdrs, const char *body, struct tsi_buf *resp,
    long *status, const char *what, char *err, size_t errlen)
{
	CURLcode cc;

	curl_easy_reset(c);
	configure(h, c, url, hdrs, body, resp, h->errbuf);
	cc = curl_easy_perform(c);
	/* The options point at our memory; drop them before it goes away. */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	if (cc != CURLE_OK)
		return transfer_error(h, c, cc, h->errbuf, what, err, errlen);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	return TSI_OK;
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
		m = json_string_value(json_array_get(json_object_get(j, "errors"), 0));
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

int
tsi_sidecar_get_token(struct tsi_sidecar_http *h, char **jwt,
    long long *expires_at, char *err, size_t errlen)
{
	struct tsi_buf *resp = NULL;
	json_t *j = NULL;
	char *aud = NULL, url[512];
	const char *tok;
	long status = 0;
	int r;

	if ((resp = tsi_buf_new(64 * 1024)) == NULL ||
	    (aud = curl_easy_escape(h->issuer, h->st->audience, 0)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (snprintf(url, sizeof(url), "http://localhost/v1/token?aud=%s", aud) >=
	    (int)sizeof(url)) {
		tsi_errf(err, errlen, "issuer: audience too long");
		r = TSI_ERR_INVALID_ARG;
		goto out;
	}
	r = perform(h, h->issuer, url, NULL, NULL, resp, &status,
	    "issuer token request", err, errlen);
	if (r != TSI_OK)
		goto out;
	if (status != 200) {
		r = status_error(status, "issuer token request", resp,
		    TSI_ERR_UNIDENTIFIED, err, errlen);
		if (status == 403)
			tsi_errf(err, errlen, "issuer token request: HTTP 403: "
			    "the issuer could not identify this workload");
		goto out;
	}
	j = json_loadb(tsi_buf_str(resp), tsi_buf_len(resp), 0, NULL);
	tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL || tok[0] == '\0') {
		tsi_errf(err, errlen, "issuer token request: no token in the "
		    "response");
		r = TSI_ERR_PARSE;
		goto out;
	}
	if ((*jwt = strdup(tok)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (expires_at != NULL)
		*expires_at = json_integer_value(json_object_get(j, "expires_at"));
	r = TSI_OK;
out:
	json_decref(j);
	curl_free(aud);
	tsi_buf_free(resp);
	return r;
}

int
tsi_sidecar_login(struct tsi_sidecar_http *h, const char *jwt,
    char **client_token, long long *lease_s, char *err, size_t errlen)
{
	struct tsi_buf *resp = NULL;
	struct curl_slist *hdrs = NULL;
	json_t *req = NULL, *j = NULL, *auth;
	char *body = NULL, url[1024];
	const char *base, *tok;
	size_t blen;
	long status = 0;
	int r;

	base = vault_base(h->st, &blen);
	if (snprintf(url, sizeof(url), "%.*s/v1/auth/trusted-identity/login",
	    (int)blen, base) >= (int)sizeof(url)) {
		tsi_errf(err, errlen, "VAULT_ADDR is too long");
		return TSI_ERR_INVALID_ARG;
	}
	if ((resp = tsi_buf_new(64 * 1024)) == NULL ||
	    (req = json_pack("{s:s, s:s}", "role", h->st->role, "jwt", jwt)) ==
		NULL ||
	    (body = json_dumps(req, JSON_COMPACT)) == NULL ||
	    (hdrs = curl_slist_append(NULL, "Content-Type: application/json")) ==
		NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	r = perform(h, h->vault, url, hdrs, body, resp, &status, "login", err,
	    errlen);
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
		tsi_errf(err, errlen, "login: no auth.client_token in the response");
		r = TSI_ERR_PARSE;
		goto out;
	}
	if ((*client_token = strdup(tok)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if (lease_s != NULL)
		*lease_s = json_integer_value(json_object_get(auth, "lease_duration"));
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
		tsi_errf(q->err, sizeof(q->err), "%s: the response has no "
		    "data.data object", what);
		q->r = TSI_ERR_PARSE;
	} else {
		q->version = json_integer_value(
		    json_object_get(json_object_get(d, "metadata"), "version"));
		q->data = json_incref(dd);
		q->r = TSI_OK;
	}
	json_decref(j);
}

struct slot {
	CURL *c;
	struct tsi_buf *resp;
	char errbuf[CURL_ERROR_SIZE];
	char url[2048];
	char what[600];
};

int
tsi_sidecar_read_many(struct tsi_sidecar_http *h, const char *client_token,
    struct tsi_sidecar_read_req *reqs, size_t n)
{
	struct slot *sl = NULL;
	struct tsi_buf *hdr = NULL;
	struct curl_slist *hdrs = NULL;
	CURLM *m = NULL;
	CURLMsg *msg;
	const char *base;
	size_t i, blen;
	long status;
	int running = 0, left, r = TSI_ERR_ALLOC;

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
	    (hdrs = curl_slist_append(NULL, tsi_buf_str(hdr))) == NULL ||
	    (m = curl_multi_init()) == NULL)
		goto out;
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)READ_CONCURRENCY);
	for (i = 0; i < n; i++) {
		struct slot *s = &sl[i];
		(void)snprintf(s->what, sizeof(s->what), "read secret/data/%s",
		    reqs[i].path);
		if (snprintf(s->url, sizeof(s->url), "%.*s/v1/secret/data/%s",
		    (int)blen, base, reqs[i].path) >= (int)sizeof(s->url)) {
			reqs[i].r = TSI_ERR_INVALID_ARG;
			tsi_errf(reqs[i].err, sizeof(reqs[i].err), "%s: URL too "
			    "long", s->what);
			continue;
		}
		if ((s->resp = tsi_buf_new(TSI_SIDECAR_RESPONSE_MAX)) == NULL ||
		    (s->c = curl_easy_init()) == NULL)
			goto out;
		configure(h, s->c, s->url, hdrs, NULL, s->resp, s->errbuf);
		curl_easy_setopt(s->c, CURLOPT_PRIVATE, (char *)s);
		if (curl_multi_add_handle(m, s->c) != CURLM_OK) {
			curl_easy_cleanup(s->c);
			s->c = NULL;
			goto out;
		}
	}
	do {
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			r = TSI_ERR_INTERNAL;
			goto out;
		}
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct slot *s = NULL;
			struct tsi_sidecar_read_req *q;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
			    (char **)&s);
			q = &reqs[s - sl];
			if (msg->data.result != CURLE_OK) {
				q->r = transfer_error(h, s->c, msg->data.result,
				    s->errbuf, s->what, q->err, sizeof(q->err));
			} else {
				status = 0;
				curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE,
				    &status);
				read_result(q, status, s->resp, s->what);
			}
			/* Done with it: the body (a secret) is wiped now. */
			curl_multi_remove_handle(m, s->c);
			curl_easy_cleanup(s->c);
			s->c = NULL;
			tsi_buf_free(s->resp);
			s->resp = NULL;
		}
		/* Waits at most 100 ms; the progress callback aborts the
		 * transfers themselves when told to stop. */
		if (running > 0 &&
		    curl_multi_poll(m, NULL, 0, 100, NULL) != CURLM_OK) {
			r = TSI_ERR_INTERNAL;
			goto out;
		}
	} while (running > 0);
	r = TSI_OK;
out:
	for (i = 0; sl != NULL && i < n; i++) {
		if (sl[i].c != NULL) {
			curl_multi_remove_handle(m, sl[i].c);
			curl_easy_cleanup(sl[i].c);
		}
		tsi_buf_free(sl[i].resp);
	}
	free(sl);
	if (m != NULL)
		curl_multi_cleanup(m);
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
	if ((r = tsi_sidecar_read_many(h, client_token, &q, 1)) != TSI_OK) {
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
