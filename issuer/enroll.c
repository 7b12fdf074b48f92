/*
 * enroll.c - attested enrollment, the node's side: the two requests of the
 * protocol over HTTPS (libcurl) and their JSON, with the evidence and the
 * certificate's installation from a struct tsi_enroll_node (the local TPM
 * and files, or the signer's, from the unprivileged front end). See
 * enroll.h and docs/attestation.md.
 */
#include "issuer/enroll.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/jwt.h"
#include "tsi/log.h"
#include "tsi/signer.h"
#include "tsi/x509.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define REASON_MAX 200 /* of a server's error text we repeat */
#define PEM_MAX (32 * 1024)
#define HTTP_TIMEOUT_S 30L
#define CONNECT_TIMEOUT_S 10L

static int fail(char *reason, size_t reasonlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(char *reason, size_t reasonlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (reason != NULL && reasonlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(reason, reasonlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* Standard base64 (tsi_b64_decode: canonical padding, no whitespace) of
 * at most max decoded bytes. */
static int
b64_decode(const char *s, size_t max, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s);
	unsigned char *buf = NULL;
	size_t len = 0;

	if (n == 0 || n / 4 * 3 > max + 2 ||
	    tsi_b64_decode(s, n, &buf, &len) != TSI_OK)
		return -1;
	if (len > max) {
		tsi_freezero(buf, len);
		return -1;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

void
tsi_enroll_challenge_clear(struct tsi_enroll_challenge *c)
{
	if (c == NULL)
		return;
	free(c->blob);
	free(c->secret);
	explicit_bzero(c, sizeof(*c));
}

void
tsi_enroll_result_clear(struct tsi_enroll_result *res)
{
	if (res == NULL)
		return;
	free(res->cert_pem);
	free(res->ca_pem);
	free(res->node);
	memset(res, 0, sizeof(*res));
}

static const char *
str_member(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int
tsi_enroll_parse_start(const char *body, size_t len,
    struct tsi_enroll_challenge *out, char *reason, size_t reasonlen)
{
	json_t *root = NULL, *sel, *v, *e;
	const char *s, *bank;
	json_error_t jerr;
	size_t i;
	int r = TSI_ERR_PARSE;

	memset(out, 0, sizeof(*out));
	if (len > TSI_ENROLL_BODY_MAX)
		return fail(reason, reasonlen, TSI_ERR_TOO_LARGE,
		    "the answer is larger than %d bytes", TSI_ENROLL_BODY_MAX);
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	        NULL ||
	    !json_is_object(root)) {
		fail(reason, reasonlen, r, "the answer is not a JSON object");
		goto out;
	}
	if ((s = str_member(root, "session")) == NULL ||
	    tsi_hex_decode(s, NULL, 16, 0) != TSI_OK) {
		fail(reason, reasonlen, r, "'session' is not 32 hex digits");
		goto out;
	}
	memcpy(out->session, s, 33);
	if ((s = str_member(root, "nonce")) == NULL ||
	    tsi_hex_decode(s, out->nonce, sizeof(out->nonce), 0) != TSI_OK) {
		fail(reason, reasonlen, r, "'nonce' is not 64 hex digits");
		goto out;
	}
	memcpy(out->nonce_hex, s, 65);
	if ((s = str_member(root, "credential_blob")) == NULL ||
	    b64_decode(s, TSI_ENROLL_BLOB_MAX, &out->blob, &out->blob_len) !=
	        0) {
		fail(reason, reasonlen, r,
		    "'credential_blob' is not base64 of "
		    "at most %d bytes",
		    TSI_ENROLL_BLOB_MAX);
		goto out;
	}
	if ((s = str_member(root, "encrypted_secret")) == NULL ||
	    b64_decode(s, TSI_ENROLL_BLOB_MAX, &out->secret,
	        &out->secret_len) != 0) {
		fail(reason, reasonlen, r,
		    "'encrypted_secret' is not base64 of "
		    "at most %d bytes",
		    TSI_ENROLL_BLOB_MAX);
		goto out;
	}
	sel = json_object_get(root, "pcr_selection");
	if (!json_is_object(sel) || json_object_size(sel) == 0) {
		fail(reason, reasonlen, r,
		    "'pcr_selection' is not an object "
		    "naming a PCR bank");
		goto out;
	}
	json_object_foreach (sel, bank, v) {
		if (strcmp(bank, "sha256") != 0) {
			r = TSI_ERR_UNSUPPORTED;
			fail(reason, reasonlen, r,
			    "'pcr_selection' asks for the "
			    "PCR bank '%.32s'; this issuer quotes sha256 only",
			    bank);
			goto out;
		}
		if (!json_is_array(v) || json_array_size(v) == 0) {
			fail(reason, reasonlen, r,
			    "'pcr_selection.sha256' is not "
			    "a list of PCR numbers");
			goto out;
		}
		json_array_foreach (v, i, e) {
			json_int_t pcr;
			if (!json_is_integer(e) ||
			    (pcr = json_integer_value(e)) < 0 ||
			    pcr >= TSI_TPM_PCRS ||
			    (out->pcr_mask & (1u << pcr))) {
				fail(reason, reasonlen, r,
				    "'pcr_selection.sha256' "
				    "holds something other than distinct PCR "
				    "numbers 0..%d",
				    TSI_TPM_PCRS - 1);
				goto out;
			}
			out->pcr_mask |= 1u << pcr;
		}
	}
	v = json_object_get(root, "expires_in");
	if (v != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) <= 0 ||
	        json_integer_value(v) > 3600)) {
		fail(reason, reasonlen, r,
		    "'expires_in' is not a number of "
		    "seconds");
		goto out;
	}
	out->expires_in = v != NULL ? (int)json_integer_value(v) : 0;
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_enroll_challenge_clear(out);
	json_decref(root);
	return r;
}

int
tsi_enroll_parse_finish(const char *body, size_t len,
    struct tsi_enroll_result *out, char *reason, size_t reasonlen)
{
	json_t *root = NULL, *v;
	json_error_t jerr;
	const char *cert, *ca, *node;
	int r = TSI_ERR_PARSE;

	memset(out, 0, sizeof(*out));
	if (len > TSI_ENROLL_BODY_MAX)
		return fail(reason, reasonlen, TSI_ERR_TOO_LARGE,
		    "the answer is larger than %d bytes", TSI_ENROLL_BODY_MAX);
	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	        NULL ||
	    !json_is_object(root)) {
		fail(reason, reasonlen, r, "the answer is not a JSON object");
		goto out;
	}
	cert = str_member(root, "certificate");
	ca = str_member(root, "ca");
	node = str_member(root, "node");
	v = json_object_get(root, "expires_at");
	if (cert == NULL ||
	    strstr(cert, "-----BEGIN CERTIFICATE-----") == NULL ||
	    strlen(cert) > PEM_MAX) {
		fail(reason, reasonlen, r,
		    "'certificate' is not a PEM "
		    "certificate");
		goto out;
	}
	if (ca == NULL || strstr(ca, "-----BEGIN CERTIFICATE-----") == NULL ||
	    strlen(ca) > PEM_MAX) {
		fail(reason, reasonlen, r, "'ca' is not a PEM certificate");
		goto out;
	}
	if (node == NULL || !tsi_location_value_ok(node)) {
		fail(reason, reasonlen, r, "'node' is not a node name");
		goto out;
	}
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		fail(reason, reasonlen, r, "'expires_at' is not a time");
		goto out;
	}
	r = TSI_ERR_ALLOC;
	if ((out->cert_pem = strdup(cert)) == NULL ||
	    (out->ca_pem = strdup(ca)) == NULL ||
	    (out->node = strdup(node)) == NULL)
		goto out;
	out->expires_at = json_integer_value(v);
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_enroll_result_clear(out);
	json_decref(root);
	return r;
}

/* HTTP */

struct resp {
	struct tsi_buf *body;
	int too_large;
};

struct stopper {
	int (*fn)(void *);
	void *arg;
};

/* Lets a stopping issuer abandon a request instead of waiting out its
 * timeout (SIGTERM must not wait for tsi-attest). */
static int
progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	const struct stopper *st = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return st->fn != NULL && st->fn(st->arg) != 0;
}

static size_t
collect(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *rs = ud;

	if (tsi_buf_put(rs->body, p, sz * n) != TSI_OK) {
		rs->too_large = 1;
		return 0;
	}
	return sz * n;
}

/* The server's first error text, printable ASCII only, bounded. */
static void
server_reason(const struct tsi_buf *body, char *out, size_t outlen)
{
	json_t *root, *errs;
	const char *s = NULL;
	size_t i, n = 0;

	out[0] = '\0';
	root = json_loadb((const char *)tsi_buf_ptr(body), tsi_buf_len(body), 0,
	    NULL);
	errs = json_object_get(root, "errors");
	if (json_is_array(errs) && json_is_string(json_array_get(errs, 0)))
		s = json_string_value(json_array_get(errs, 0));
	for (i = 0;
	     s != NULL && s[i] != '\0' && n + 1 < outlen && i < REASON_MAX; i++)
		out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[n] = '\0';
	if (n == 0)
		(void)snprintf(out, outlen, "no reason given");
	json_decref(root);
}

/* POSTs body to attest_url + path. *status: the HTTP status; answer: the
 * body (at most TSI_ENROLL_BODY_MAX). Transport failures: TSI_ERR_IO. */
static int
post(const struct tsi_issuer_config *cfg, const struct stopper *stop,
    const char *path, const char *body, long *status, struct tsi_buf *answer,
    char *reason, size_t reasonlen)
{
	struct curl_slist *hdrs = NULL;
	struct resp rs = { answer, 0 };
	char url[2048];
	size_t base = strlen(cfg->attest_url);
	CURLcode cc;
	CURL *c = NULL;
	int n, r = TSI_ERR_IO;

	while (base > 0 && cfg->attest_url[base - 1] == '/')
		base--;
	n = snprintf(url, sizeof(url), "%.*s%s", (int)base, cfg->attest_url,
	    path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return fail(reason, reasonlen, TSI_ERR_CONFIG,
		    "attest_url is too long");
	if ((c = curl_easy_init()) == NULL ||
	    (hdrs = curl_slist_append(NULL,
	         "Content-Type: application/json")) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	tsi_buf_reset(answer);
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* Never anything but what attest_url says: no redirects, no other
	 * scheme, TLS verified against attest_ca (or the system store). */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
	    strncmp(url, "https://", 8) == 0 ? "https" : "http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->attest_ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->attest_ca);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &rs);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		if (cc == CURLE_ABORTED_BY_CALLBACK)
			r = fail(reason, reasonlen, TSI_ERR_AGAIN,
			    "enrollment abandoned: the issuer is stopping");
		else if (rs.too_large)
			r = fail(reason, reasonlen, TSI_ERR_TOO_LARGE,
			    "tsi-attest answered %s with more than %d bytes",
			    path, TSI_ENROLL_BODY_MAX);
		else if (cc == CURLE_SSL_CACERT_BADFILE &&
		    cfg->attest_ca != NULL)
			/* With privilege separation the front end reads it,
			 * as front_user. */
			r = fail(reason, reasonlen, TSI_ERR_CONFIG,
			    "cannot load attest_ca %s: it must exist and be "
			    "readable by the front end's user (front_user), "
			    "with every directory above it",
			    cfg->attest_ca);
		else
			r = fail(reason, reasonlen, TSI_ERR_IO,
			    "cannot reach tsi-attest at %s: %s", url,
			    curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	r = TSI_OK;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return r;
}

/* What an operator can do about a 403, from the server's reason
 * (docs/attestation.md lists them). */
static const char *
refusal_hint(const char *why)
{
	if (strstr(why, "not registered") != NULL)
		return "an operator must register this node's EK (tsi node "
		       "register)";
	if (strstr(why, "no longer registered") != NULL)
		return "the node was removed from the inventory while it "
		       "enrolled; an operator must register it again (tsi node "
		       "register)";
	if (strstr(why, "revoked") != NULL)
		return "the node is registered but revoked; an operator must "
		       "trust it again (tsi node trust)";
	if (strstr(why, "policy") != NULL)
		return "see tsi node show for the quoted PCRs";
	return "see tsi-attest's log and audit records for this TPM";
}

/* Maps a refusal to an error and a reason. */
static int
refused(const char *step, long status, const struct tsi_buf *answer,
    char *reason, size_t reasonlen)
{
	char why[REASON_MAX + 1];

	server_reason(answer, why, sizeof(why));
	switch (status) {
	case 400:
		return fail(reason, reasonlen, TSI_ERR_PARSE,
		    "tsi-attest "
		    "refused %s as malformed (400): %s",
		    step, why);
	case 403:
		/* tsi-attest answers 403 for every refusal: an unregistered EK
		 * at start, but also a revoked node, a rejected EK certificate
		 * or AK, bad evidence, a PCR policy. The hint follows the
		 * server's reason so that the operator is sent to the right
		 * command, never told to register a node that is registered. */
		return fail(reason, reasonlen, TSI_ERR_DENIED,
		    "tsi-attest "
		    "refused %s at %s (403): %s; %s",
		    strstr(step, "start") != NULL ? "enrollment"
		                                  : "this TPM's evidence",
		    step, why, refusal_hint(why));
	case 410:
		return fail(reason, reasonlen, TSI_ERR_EXPIRED,
		    "tsi-attest "
		    "no longer knows the enrollment session (410: unknown, "
		    "expired or used): %s; enrollment starts again",
		    why);
	case 413:
		return fail(reason, reasonlen, TSI_ERR_TOO_LARGE,
		    "tsi-attest "
		    "refused %s as too large (413): %s",
		    step, why);
	case 503:
		return fail(reason, reasonlen, TSI_ERR_AGAIN,
		    "tsi-attest is "
		    "unavailable (503): %s; retry later",
		    why);
	default:
		return fail(reason, reasonlen, TSI_ERR_IO,
		    "tsi-attest answered "
		    "%s with HTTP %ld: %s",
		    step, status, why);
	}
}

/* The pieces of one enrollment, freed together. */
struct attempt {
	uint8_t *ek_cert, *ek_pub, *ak_pub, *key_pub;
	size_t ek_cert_len, ek_pub_len, ak_pub_len, key_pub_len;
	uint8_t *c_attest, *c_sig, *q_attest, *q_sig;
	size_t c_attest_len, c_sig_len, q_attest_len, q_sig_len;
	uint8_t pcrs[TSI_TPM_PCRS][32];
	uint8_t secret[64];
	size_t secret_len;
	char *csr;
	char *ek_pem;
	char *body;
	struct tsi_buf *answer;
	struct tsi_enroll_challenge ch;
	struct tsi_enroll_result res;
};

static void
attempt_free(struct attempt *a)
{
	free(a->ek_cert);
	free(a->ek_pub);
	free(a->ak_pub);
	free(a->key_pub);
	free(a->c_attest);
	free(a->c_sig);
	free(a->q_attest);
	free(a->q_sig);
	free(a->csr);
	free(a->ek_pem);
	free(a->body);
	tsi_buf_free(a->answer);
	tsi_enroll_challenge_clear(&a->ch);
	tsi_enroll_result_clear(&a->res);
	explicit_bzero(a, sizeof(*a));
}

/* A JSON string member holding base64 of p. */
static int
set_b64(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	char *s = NULL;
	int ok;

	if (tsi_b64_encode(p, n, &s) != TSI_OK)
		return TSI_ERR_ALLOC;
	ok = json_object_set_new(o, key, json_string(s)) == 0;
	free(s);
	return ok ? TSI_OK : TSI_ERR_ALLOC;
}

static int
dump(json_t *o, char **out)
{
	if ((*out = json_dumps(o, JSON_COMPACT)) == NULL)
		return TSI_ERR_ALLOC;
	if (strlen(*out) > TSI_ENROLL_BODY_MAX) {
		free(*out);
		*out = NULL;
		return TSI_ERR_TOO_LARGE;
	}
	return TSI_OK;
}

static int
ek_cert_pem(const uint8_t *der, size_t len, char **out)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	int r;

	*out = NULL;
	if (x == NULL || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		return TSI_ERR_PARSE;
	}
	r = tsi_x509_to_pem(x, out);
	X509_free(x);
	return r;
}

static int
start_body(const struct tsi_enroll_node *node, struct attempt *a, char *reason,
    size_t reasonlen)
{
	json_t *o = NULL;
	int r;

	if ((r = node->key(node->ctx, &a->key_pub, &a->key_pub_len, &a->csr)) !=
	    TSI_OK)
		return fail(reason, reasonlen, r,
		    r == TSI_ERR_UNSUPPORTED
		        ? "the signing key can leave the TPM (not fixedTPM|"
		          "fixedParent): it cannot be attested"
		        : "cannot read the signing key or make its CSR: %s",
		    tsi_strerror(r));
	if ((r = node->ek(node->ctx, &a->ek_cert, &a->ek_cert_len, &a->ek_pub,
	         &a->ek_pub_len)) != TSI_OK)
		return fail(reason, reasonlen, r,
		    "cannot read the TPM's "
		    "endorsement key: %s",
		    tsi_strerror(r));
	if ((r = node->ak_pub(node->ctx, &a->ak_pub, &a->ak_pub_len)) != TSI_OK)
		return fail(reason, reasonlen, r,
		    "cannot make the attestation "
		    "key: %s",
		    tsi_strerror(r));
	/* Without a certificate (a vTPM), the EK hash alone identifies the
	 * node if the inventory entry allows that. */
	if (a->ek_cert != NULL &&
	    ek_cert_pem(a->ek_cert, a->ek_cert_len, &a->ek_pem) != TSI_OK)
		tsi_log(TSI_LOG_WARN, "enroll.ek_cert_unreadable",
		    TSI_LS("reason",
		        "the EK certificate in NV does not parse; sending the "
		        "EK "
		        "public key alone"));
	r = TSI_ERR_ALLOC;
	if ((o = json_object()) == NULL ||
	    (a->ek_pem != NULL &&
	        json_object_set_new(o, "ek_cert", json_string(a->ek_pem)) !=
	            0) ||
	    set_b64(o, "ek_pub", a->ek_pub, a->ek_pub_len) != TSI_OK ||
	    set_b64(o, "ak_pub", a->ak_pub, a->ak_pub_len) != TSI_OK ||
	    set_b64(o, "key_pub", a->key_pub, a->key_pub_len) != TSI_OK ||
	    json_object_set_new(o, "csr", json_string(a->csr)) != 0)
		goto out;
	r = dump(o, &a->body);
out:
	json_decref(o);
	if (r != TSI_OK)
		fail(reason, reasonlen, r, "cannot build the request: %s",
		    tsi_strerror(r));
	return r;
}

static int
evidence(json_t *o, const char *key, const uint8_t *attest, size_t alen,
    const uint8_t *sig, size_t slen, json_t **out)
{
	json_t *e = json_object();

	if (e == NULL || json_object_set_new(o, key, e) != 0)
		return TSI_ERR_ALLOC;
	if (set_b64(e, "attest", attest, alen) != TSI_OK ||
	    set_b64(e, "signature", sig, slen) != TSI_OK)
		return TSI_ERR_ALLOC;
	if (out != NULL)
		*out = e;
	return TSI_OK;
}

static int
finish_body(const struct tsi_enroll_node *node, struct attempt *a, char *reason,
    size_t reasonlen)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	char msg[32 + 64 + 1], proof[2 * 32 + 1], hex[65], num[4];
	size_t maclen = 0;
	json_t *o = NULL, *q, *pcrs, *bank;
	int r, i;

	if ((r = node->activate(node->ctx, a->ch.blob, a->ch.blob_len,
	         a->ch.secret, a->ch.secret_len, a->secret, sizeof(a->secret),
	         &a->secret_len)) != TSI_OK)
		return fail(reason, reasonlen, r,
		    r == TSI_ERR_PARSE
		        ? "tsi-attest's credential is not a TPM credential"
		        : r == TSI_ERR_TPM
		        ? "the TPM refused to activate the "
		          "credential (made for another TPM or another key?)"
		        : "cannot activate the credential: %s",
		    tsi_strerror(r));
	(void)snprintf(msg, sizeof(msg), "%s%s", a->ch.session,
	    a->ch.nonce_hex);
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, a->secret,
	        a->secret_len, (const unsigned char *)msg, strlen(msg), mac,
	        sizeof(mac), &maclen) == NULL ||
	    maclen != 32) {
		explicit_bzero(mac, sizeof(mac));
		return fail(reason, reasonlen, TSI_ERR_CRYPTO,
		    "cannot compute "
		    "the activation proof");
	}
	tsi_hex_encode(mac, 32, proof);
	explicit_bzero(mac, sizeof(mac));
	if ((r = node->certify(node->ctx, a->ch.nonce, sizeof(a->ch.nonce),
	         &a->c_attest, &a->c_attest_len, &a->c_sig, &a->c_sig_len)) !=
	    TSI_OK)
		return fail(reason, reasonlen, r,
		    "cannot certify the signing "
		    "key with the AK: %s",
		    tsi_strerror(r));
	if ((r = node->quote(node->ctx, a->ch.nonce, sizeof(a->ch.nonce),
	         a->ch.pcr_mask, &a->q_attest, &a->q_attest_len, &a->q_sig,
	         &a->q_sig_len, a->pcrs)) != TSI_OK)
		return fail(reason, reasonlen, r, "cannot quote the PCRs: %s",
		    tsi_strerror(r));
	r = TSI_ERR_ALLOC;
	if ((o = json_object()) == NULL ||
	    json_object_set_new(o, "session", json_string(a->ch.session)) !=
	        0 ||
	    json_object_set_new(o, "proof", json_string(proof)) != 0 ||
	    evidence(o, "certify", a->c_attest, a->c_attest_len, a->c_sig,
	        a->c_sig_len, NULL) != TSI_OK ||
	    evidence(o, "quote", a->q_attest, a->q_attest_len, a->q_sig,
	        a->q_sig_len, &q) != TSI_OK ||
	    (pcrs = json_object()) == NULL ||
	    json_object_set_new(q, "pcrs", pcrs) != 0 ||
	    (bank = json_object()) == NULL ||
	    json_object_set_new(pcrs, "sha256", bank) != 0)
		goto out;
	for (i = 0; i < TSI_TPM_PCRS; i++) {
		if (!(a->ch.pcr_mask & (1u << i)))
			continue;
		(void)snprintf(num, sizeof(num), "%d", i);
		tsi_hex_encode(a->pcrs[i], 32, hex);
		if (json_object_set_new(bank, num, json_string(hex)) != 0)
			goto out;
	}
	free(a->body);
	a->body = NULL;
	r = dump(o, &a->body);
out:
	explicit_bzero(proof, sizeof(proof));
	json_decref(o);
	if (r != TSI_OK)
		fail(reason, reasonlen, r, "cannot build the request: %s",
		    tsi_strerror(r));
	return r;
}

int
tsi_enroll_run(const struct tsi_issuer_config *cfg,
    const struct tsi_enroll_node *node, int (*stop)(void *), void *stop_arg,
    char *reason, size_t reasonlen)
{
	struct stopper st = { stop, stop_arg };
	struct attempt a;
	char why[256];
	long status = 0;
	int r;

	if (reason != NULL && reasonlen > 0)
		reason[0] = '\0';
	if (cfg == NULL || node == NULL)
		return TSI_ERR_INVALID_ARG;
	if (cfg->attest_url == NULL)
		return fail(reason, reasonlen, TSI_ERR_CONFIG,
		    "no attest_url "
		    "in the configuration");
	memset(&a, 0, sizeof(a));
	if ((a.answer = tsi_buf_new(TSI_ENROLL_BODY_MAX)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "enroll.start",
	    TSI_LS("attest_url", cfg->attest_url));
	if ((r = start_body(node, &a, reason, reasonlen)) != TSI_OK ||
	    (r = post(cfg, &st, "/v1/enroll/start", a.body, &status, a.answer,
	         reason, reasonlen)) != TSI_OK)
		goto out;
	if (status != 200) {
		r = refused("/v1/enroll/start", status, a.answer, reason,
		    reasonlen);
		goto out;
	}
	if ((r = tsi_enroll_parse_start((const char *)tsi_buf_ptr(a.answer),
	         tsi_buf_len(a.answer), &a.ch, why, sizeof(why))) != TSI_OK) {
		r = fail(reason, reasonlen, r,
		    "malformed answer from "
		    "tsi-attest to /v1/enroll/start: %s",
		    why);
		goto out;
	}
	if ((r = finish_body(node, &a, reason, reasonlen)) != TSI_OK ||
	    (r = post(cfg, &st, "/v1/enroll/finish", a.body, &status, a.answer,
	         reason, reasonlen)) != TSI_OK)
		goto out;
	if (status != 200) {
		r = refused("/v1/enroll/finish", status, a.answer, reason,
		    reasonlen);
		goto out;
	}
	if ((r = tsi_enroll_parse_finish((const char *)tsi_buf_ptr(a.answer),
	         tsi_buf_len(a.answer), &a.res, why, sizeof(why))) != TSI_OK) {
		r = fail(reason, reasonlen, r,
		    "malformed answer from "
		    "tsi-attest to /v1/enroll/finish: %s",
		    why);
		goto out;
	}
	if ((r = node->install(node->ctx, a.res.cert_pem, a.res.ca_pem, reason,
	         reasonlen)) != TSI_OK)
		goto out;
	tsi_log(TSI_LOG_INFO, "enroll.done", TSI_LS("node", a.res.node),
	    TSI_LS("node_cert", cfg->node_cert),
	    TSI_LI("expires_at", a.res.expires_at));
	r = TSI_OK;
out:
	if (r != TSI_OK)
		tsi_log(TSI_LOG_ERROR, "enroll.failed",
		    TSI_LS("error", tsi_strerror(r)),
		    TSI_LS("reason",
		        reason != NULL && reasonlen > 0 ? reason : ""));
	attempt_free(&a);
	return r;
}

int
tsi_enroll_until(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    int (*stop)(void *), void *stop_arg, char *reason, size_t reasonlen)
{
	struct tsi_enroll_local l;
	struct tsi_enroll_node node;

	if (tpm == NULL)
		return TSI_ERR_INVALID_ARG;
	tsi_enroll_node_local(&l, cfg, tpm, &node);
	return tsi_enroll_run(cfg, &node, stop, stop_arg, reason, reasonlen);
}

int
tsi_enroll(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    char *reason, size_t reasonlen)
{
	return tsi_enroll_until(cfg, tpm, NULL, NULL, reason, reasonlen);
}

/* The keeper: enrolls again when due, with backoff on failure. */

struct tsi_enroll_keeper {
	const struct tsi_issuer_config *cfg;
	struct tsi_enroll_node node;
	void (*renewed)(void *);
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

static int
keeper_stopping(void *arg)
{
	struct tsi_enroll_keeper *k = arg;

	return __atomic_load_n(&k->stop, __ATOMIC_ACQUIRE);
}

/* Sleeps until deadline (monotonic) or stop; 1 when stopped. */
static int
keeper_wait(struct tsi_enroll_keeper *k, long long secs)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)secs;
	pthread_mutex_lock(&k->mu);
	while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &ts) == 0)
		;
	stop = k->stop;
	pthread_mutex_unlock(&k->mu);
	return stop;
}

static void *
keeper_main(void *arg)
{
	struct tsi_enroll_keeper *k = arg;
	long long backoff = TSI_ENROLL_BACKOFF_MIN_S, wait;
	char reason[512];
	time_t renew_at, now;
	int valid, r;
	uint32_t jitter;

	/* Started right after a failed enrollment at start-up: the first
	 * retry waits like any other. */
	if (k->node.state(k->node.ctx, time(NULL), &valid, &renew_at) &&
	    keeper_wait(k, backoff))
		return NULL;
	for (;;) {
		now = time(NULL);
		if (!k->node.state(k->node.ctx, now, &valid, &renew_at)) {
			backoff = TSI_ENROLL_BACKOFF_MIN_S;
			/* Wake at renew_at, and at least hourly in case the
			 * file was replaced by hand. */
			wait = (long long)(renew_at - now);
			if (wait > 3600)
				wait = 3600;
			if (wait < 1)
				wait = 1;
			if (keeper_wait(k, wait))
				break;
			continue;
		}
		r = tsi_enroll_run(k->cfg, &k->node, keeper_stopping, k, reason,
		    sizeof(reason));
		if (r == TSI_OK) {
			backoff = TSI_ENROLL_BACKOFF_MIN_S;
			if (k->renewed != NULL)
				k->renewed(k->arg);
			continue;
		}
		/* Jitter keeps a fleet that failed together from retrying
		 * together. */
		if (RAND_bytes((unsigned char *)&jitter, sizeof(jitter)) != 1)
			jitter = 0;
		wait =
		    backoff + (long long)(jitter % (uint32_t)(backoff / 4 + 1));
		tsi_log(TSI_LOG_WARN, "enroll.retry", TSI_LI("in_s", wait),
		    TSI_LS("certificate_valid", valid ? "yes" : "no"));
		if (keeper_wait(k, wait))
			break;
		backoff = backoff * 2 > TSI_ENROLL_BACKOFF_MAX_S
		    ? TSI_ENROLL_BACKOFF_MAX_S
		    : backoff * 2;
	}
	return NULL;
}

int
tsi_enroll_keeper_start(const struct tsi_issuer_config *cfg,
    const struct tsi_enroll_node *node, void (*renewed)(void *), void *arg,
    struct tsi_enroll_keeper **out)
{
	struct tsi_enroll_keeper *k;
	pthread_condattr_t ca;

	if (cfg == NULL || node == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return TSI_ERR_ALLOC;
	k->cfg = cfg;
	k->node = *node;
	k->renewed = renewed;
	k->arg = arg;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&k->mu, NULL) != 0 ||
	    pthread_cond_init(&k->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		free(k);
		return TSI_ERR_INTERNAL;
	}
	pthread_condattr_destroy(&ca);
	if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		free(k);
		return TSI_ERR_INTERNAL;
	}
	*out = k;
	return TSI_OK;
}

void
tsi_enroll_keeper_stop(struct tsi_enroll_keeper *k)
{
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	__atomic_store_n(&k->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}
