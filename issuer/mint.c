/*
 * mint.c - claims and signatures of identity JWTs (see mint.h).
 */
#include "issuer/mint.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/log.h"
#include "tsi/signer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define TSI_ISS "tsi-issuer"
#define SKEW 60

struct session {
	int refs; /* the minter's slot plus signers in flight */
	struct tsi_jwt_header *hdr; /* JWS header: fixed per key */
	EVP_PKEY *key;
	struct tsi_signer *signer;
	X509 *cert;
	STACK_OF(X509) *chain; /* [session cert, node cert] */
	time_t not_after;
	time_t rotate_at;
};

struct tsi_minter {
	const struct tsi_issuer_config *cfg;
	struct tsi_tpm *tpm;
	struct tsi_signer *tpm_signer;
	X509 *node;
	STACK_OF(X509) *node_chain;      /* [node cert] */
	struct tsi_jwt_header *node_hdr; /* JWS header for TPM signing */
	char *loc_claims; /* "cluster-name":...,... (no braces) */
	time_t node_not_after;
	struct tsi_location loc;
	/* Guards cur and prev (not their use). Read-locked by every token
	 * (readers never sleep on each other), write-locked to rotate. */
	pthread_rwlock_t mu;
	struct session *cur, *prev;
};

static int
asn1_to_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(a, &tm) != 1)
		return TSI_ERR_BAD_CERT;
	*out = timegm(&tm);
	return TSI_OK;
}

static void
session_free(struct session *s)
{
	if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	tsi_jwt_header_free(s->hdr);
	tsi_signer_free(s->signer);
	EVP_PKEY_free(s->key); /* OpenSSL clears private key memory */
	sk_X509_pop_free(s->chain, X509_free);
	X509_free(s->cert);
	free(s);
}

int
tsi_aud_ok(const char *aud)
{
	size_t i, n;

	if (aud == NULL || (n = strlen(aud)) == 0 || n > TSI_AUD_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)aud[i] <= 0x20 ||
		    (unsigned char)aud[i] >= 0x7f)
			return 0;
	return 1;
}

static int members(json_t *obj, char **out);
static int loc_members(const struct tsi_location *loc, char **out);

int
tsi_minter_new(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    X509 *node_cert, struct tsi_minter **out)
{
	struct tsi_minter *m;
	int r;

	if (cfg == NULL || tpm == NULL || node_cert == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return TSI_ERR_ALLOC;
	if (pthread_rwlock_init(&m->mu, NULL) != 0) {
		free(m);
		return TSI_ERR_INTERNAL;
	}
	m->cfg = cfg;
	m->tpm = tpm;
	X509_up_ref(node_cert);
	m->node = node_cert;
	if (tsi_x509_key_matches(node_cert, tsi_tpm_pub(tpm)) != 1) {
		r = TSI_ERR_BAD_CERT;
		goto out;
	}
	if ((r = tsi_x509_location(node_cert, &m->loc)) != TSI_OK)
		goto out;
	if ((r = asn1_to_time(X509_get0_notAfter(node_cert),
	         &m->node_not_after)) != TSI_OK)
		goto out;
	if ((r = tsi_tpm_signer(tpm, &m->tpm_signer)) != TSI_OK)
		goto out;
	r = TSI_ERR_ALLOC;
	if ((m->node_chain = sk_X509_new_null()) == NULL)
		goto out;
	X509_up_ref(node_cert);
	if (!sk_X509_push(m->node_chain, node_cert)) {
		X509_free(node_cert);
		goto out;
	}
	if ((r = tsi_jwt_header_new(tsi_tpm_pub(tpm), m->node_chain,
	         &m->node_hdr)) != TSI_OK)
		goto out;
	if ((r = loc_members(&m->loc, &m->loc_claims)) != TSI_OK)
		goto out;
	*out = m;
	m = NULL;
	r = TSI_OK;
out:
	tsi_minter_free(m);
	return r;
}

void
tsi_minter_free(struct tsi_minter *m)
{
	if (m == NULL)
		return;
	session_free(m->cur);
	session_free(m->prev);
	tsi_signer_free(m->tpm_signer);
	sk_X509_pop_free(m->node_chain, X509_free);
	tsi_jwt_header_free(m->node_hdr);
	free(m->loc_claims);
	X509_free(m->node);
	tsi_location_clear(&m->loc);
	pthread_rwlock_destroy(&m->mu);
	free(m);
}

const struct tsi_location *
tsi_minter_location(const struct tsi_minter *m)
{
	return &m->loc;
}

/* A new session key certified by the TPM key. Called locked. */
static int
rotate_locked(struct tsi_minter *m, time_t now)
{
	struct session *s;
	time_t latest;
	int r = TSI_ERR_CRYPTO;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TSI_ERR_ALLOC;
	s->refs = 1;
	if ((s->key = EVP_EC_gen("P-256")) == NULL) {
		tsi_log_openssl(TSI_LOG_ERROR, "session.keygen");
		goto out;
	}
	if ((r = tsi_signer_new_soft(s->key, &s->signer)) != TSI_OK)
		goto out;
	if ((r = tsi_x509_issue_session_cert(m->tpm_signer, m->node, s->key,
	         m->cfg->session_ttl, &s->cert)) != TSI_OK)
		goto out;
	if ((r = asn1_to_time(X509_get0_notAfter(s->cert), &s->not_after)) !=
	    TSI_OK)
		goto out;
	if (s->not_after - now <= SKEW) {
		tsi_log(TSI_LOG_ERROR, "session.too_short",
		    TSI_LS("reason",
		        "the node certificate expires too soon to certify a "
		        "session key"));
		r = TSI_ERR_EXPIRED;
		goto out;
	}
	/* Half life, and soon enough that a full-length token still fits
	 * inside the certificate. */
	s->rotate_at = now + (s->not_after - now) / 2;
	latest = s->not_after - m->cfg->token_ttl - SKEW;
	if (latest < s->rotate_at)
		s->rotate_at = latest > now ? latest : now;
	r = TSI_ERR_ALLOC;
	if ((s->chain = sk_X509_new_null()) == NULL)
		goto out;
	X509_up_ref(s->cert);
	if (!sk_X509_push(s->chain, s->cert)) {
		X509_free(s->cert);
		goto out;
	}
	X509_up_ref(m->node);
	if (!sk_X509_push(s->chain, m->node)) {
		X509_free(m->node);
		goto out;
	}
	if ((r = tsi_jwt_header_new(s->key, s->chain, &s->hdr)) != TSI_OK)
		goto out;
	session_free(m->prev);
	m->prev = m->cur;
	m->cur = s;
	s = NULL;
	{
		char kid[44];
		if (tsi_signer_kid(m->cur->signer, kid) == TSI_OK)
			tsi_log(TSI_LOG_INFO, "session.rotated",
			    TSI_LS("kid", kid),
			    TSI_LI("not_after", (long long)m->cur->not_after),
			    TSI_LI("rotate_at", (long long)m->cur->rotate_at));
	}
	r = TSI_OK;
out:
	session_free(s);
	return r;
}

int
tsi_minter_refresh(struct tsi_minter *m)
{
	time_t now = time(NULL);
	int r = TSI_OK;

	if (m->cfg->signing == TSI_SIGNING_TPM)
		return TSI_OK;
	pthread_rwlock_wrlock(&m->mu);
	if (m->cur == NULL || now >= m->cur->rotate_at)
		r = rotate_locked(m, now);
	pthread_rwlock_unlock(&m->mu);
	return r;
}

/*
 * The claims are written as text once per token (no JSON object built and
 * dumped): the parts that never change (iss, the location) are encoded once
 * per minter, the workload's part once per token with the JSON library, and
 * the numbers and the random jti need no escaping. tsi_minter_claims parses
 * this same text, so there is one serialisation to keep right.
 */

/* The members of a JSON object as compact text without the braces. */
static int
members(json_t *obj, char **out)
{
	char *text;
	size_t n;

	if (obj == NULL || (text = json_dumps(obj, JSON_COMPACT)) == NULL)
		return TSI_ERR_ALLOC;
	n = strlen(text);
	if (n < 2 || text[0] != '{' || text[n - 1] != '}') {
		free(text);
		return TSI_ERR_INTERNAL;
	}
	memmove(text, text + 1, n - 2);
	text[n - 2] = '\0';
	*out = text;
	return TSI_OK;
}

static int
loc_members(const struct tsi_location *loc, char **out)
{
	json_t *o;
	int r;

	o = json_pack("{s:s, s:s, s:s}", "cluster-name", loc->cluster_name,
	    "region", loc->region, "datacenter", loc->datacenter);
	if (o != NULL && loc->node != NULL &&
	    json_object_set_new(o, "node", json_string(loc->node)) != 0) {
		json_decref(o);
		return TSI_ERR_ALLOC;
	}
	r = members(o, out);
	json_decref(o);
	return r;
}

static json_t *
str_array(char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* sub, images, images-names and the workload's own members. */
static int
workload_members(const struct tsi_minter *m, const struct tsi_workload *w,
    char **out)
{
	const char *td = m->cfg->trust_domain;
	char sub[1024], uid[32];
	json_t *o;
	int r, n;

	if (w->kind == TSI_WORKLOAD_K8S)
		n = snprintf(sub, sizeof(sub), "spiffe://%s/ns/%s/sa/%s", td,
		    w->namespace, w->service_account);
	else
		n = snprintf(sub, sizeof(sub), "spiffe://%s/uid/%lu", td,
		    (unsigned long)w->uid);
	if (n < 0 || (size_t)n >= sizeof(sub))
		return TSI_ERR_TOO_LARGE;
	if (w->kind == TSI_WORKLOAD_K8S)
		o = json_pack("{s:s, s:o, s:o, s:s, s:s, s:s}", "sub", sub,
		    "images", str_array(w->images, w->n_images), "images-names",
		    str_array(w->image_names, w->n_image_names), "namespace",
		    w->namespace, "pod", w->pod, "service-account",
		    w->service_account);
	else {
		(void)snprintf(uid, sizeof(uid), "%lu", (unsigned long)w->uid);
		o = json_pack("{s:s, s:o, s:o, s:s, s:s}", "sub", sub, "images",
		    str_array(w->images, w->n_images), "images-names",
		    str_array(w->image_names, w->n_image_names), "uid", uid,
		    "exe", w->exe);
	}
	r = members(o, out);
	json_decref(o);
	return r;
}

/*
 * The memo: the workload's encoded members, kept with the exact bytes of
 * everything they were made from (a length-prefixed concatenation of the
 * workload's fields), so a later token for an identical workload reuses the
 * text and a workload that differs in any byte is encoded afresh.
 */
struct tsi_claims_memo {
	struct tsi_buf *key;
	char *members;
};

static int
key_str(struct tsi_buf *b, const char *v)
{
	size_t n = v != NULL ? strlen(v) : (size_t)-1;
	int r;

	if ((r = tsi_buf_put(b, &n, sizeof(n))) != TSI_OK || v == NULL)
		return r;
	return tsi_buf_put(b, v, n);
}

static int
workload_key(const struct tsi_workload *w, struct tsi_buf *b)
{
	unsigned long long uid = (unsigned long long)w->uid;
	int kind = (int)w->kind, r;
	size_t i;

	if ((r = tsi_buf_put(b, &kind, sizeof(kind))) != TSI_OK ||
	    (r = tsi_buf_put(b, &uid, sizeof(uid))) != TSI_OK ||
	    (r = key_str(b, w->namespace)) != TSI_OK ||
	    (r = key_str(b, w->pod)) != TSI_OK ||
	    (r = key_str(b, w->service_account)) != TSI_OK ||
	    (r = key_str(b, w->exe)) != TSI_OK ||
	    (r = tsi_buf_put(b, &w->n_images, sizeof(w->n_images))) != TSI_OK)
		return r;
	for (i = 0; i < w->n_images; i++)
		if ((r = key_str(b, w->images[i])) != TSI_OK)
			return r;
	if ((r = tsi_buf_put(b, &w->n_image_names, sizeof(w->n_image_names))) !=
	    TSI_OK)
		return r;
	for (i = 0; i < w->n_image_names; i++)
		if ((r = key_str(b, w->image_names[i])) != TSI_OK)
			return r;
	return TSI_OK;
}

struct tsi_claims_memo *
tsi_claims_memo_new(void)
{
	return calloc(1, sizeof(struct tsi_claims_memo));
}

void
tsi_claims_memo_free(struct tsi_claims_memo *memo)
{
	if (memo == NULL)
		return;
	tsi_buf_free(memo->key);
	free(memo->members);
	free(memo);
}

/* The workload's members, from memo when it was made from the same bytes.
 * *out is borrowed from memo, or owned (*owned set) without one. */
static int
workload_members_memo(const struct tsi_minter *m, const struct tsi_workload *w,
    struct tsi_claims_memo *memo, const char **out, char **owned)
{
	struct tsi_buf *key;
	char *wm = NULL;
	int r;

	*owned = NULL;
	if (memo == NULL) {
		if ((r = workload_members(m, w, &wm)) != TSI_OK)
			return r;
		*out = *owned = wm;
		return TSI_OK;
	}
	if ((key = tsi_buf_new(TSI_JWT_MAX_BYTES)) == NULL)
		return TSI_ERR_ALLOC;
	if ((r = workload_key(w, key)) != TSI_OK)
		goto out;
	if (memo->key != NULL && memo->members != NULL &&
	    tsi_buf_len(memo->key) == tsi_buf_len(key) &&
	    memcmp(tsi_buf_ptr(memo->key), tsi_buf_ptr(key),
	        tsi_buf_len(key)) == 0) {
		*out = memo->members;
		r = TSI_OK;
		goto out;
	}
	if ((r = workload_members(m, w, &wm)) != TSI_OK)
		goto out;
	tsi_buf_free(memo->key);
	free(memo->members);
	memo->key = key;
	memo->members = wm;
	key = NULL;
	*out = wm;
out:
	tsi_buf_free(key);
	return r;
}

/* Appends n bytes at *off in buf (cap bytes); TSI_ERR_TOO_LARGE past cap. */
static int
put(char *buf, size_t cap, size_t *off, const char *p, size_t n)
{
	if (cap - *off < n)
		return TSI_ERR_TOO_LARGE;
	memcpy(buf + *off, p, n);
	*off += n;
	return TSI_OK;
}

/*
 * 128 random bits for a jti. OpenSSL's generator makes a getpid() system
 * call on every RAND_bytes (its fork check), and a system call costs about
 * 2 us on a virtualised host: each thread draws JTI_BATCH jtis at once.
 * The bytes are not secret (they are published in the token), only
 * unique; a forked child starts with an empty batch, so it never repeats
 * its parent's jtis.
 */
#define JTI_BYTES 16
#define JTI_BATCH 32

static __thread unsigned char jti_pool[JTI_BATCH * JTI_BYTES];
static __thread unsigned int jti_left;
static pthread_once_t jti_once = PTHREAD_ONCE_INIT;

static void
jti_forget(void)
{
	jti_left = 0; /* the child's only thread: the one that forked */
}

static void
jti_init(void)
{
	(void)pthread_atfork(NULL, NULL, jti_forget);
}

static int
jti_random(unsigned char out[JTI_BYTES])
{
	(void)pthread_once(&jti_once, jti_init);
	if (jti_left == 0) {
		if (RAND_bytes(jti_pool, sizeof(jti_pool)) != 1)
			return TSI_ERR_CRYPTO;
		jti_left = JTI_BATCH;
	}
	jti_left--;
	memcpy(out, jti_pool + (size_t)jti_left * JTI_BYTES, JTI_BYTES);
	/* Used bytes are cleared so that no two tokens share a jti even if
	 * the count were wrong. */
	memset(jti_pool + (size_t)jti_left * JTI_BYTES, 0, JTI_BYTES);
	return TSI_OK;
}

/* The claims of a token as compact JSON text. *out: tsi_strfree. */
static int
claims_text(const struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, time_t now, int ttl, struct tsi_claims_memo *memo,
    char **out)
{
	static const char iss[] = "{\"iss\":\"" TSI_ISS "\",";
	unsigned char rnd[JTI_BYTES];
	char *jti = NULL, *owned = NULL, *aud_json = NULL, *buf = NULL;
	char nums[160];
	const char *wm = NULL;
	size_t cap, off = 0;
	json_t *a;
	int r, n;

	if (!tsi_aud_ok(aud) || ttl < 1 || ttl > TSI_TOKEN_TTL_MAX)
		return TSI_ERR_INVALID_ARG;
	if ((r = jti_random(rnd)) != TSI_OK)
		return r;
	if ((r = tsi_b64url_encode(rnd, sizeof(rnd), &jti)) != TSI_OK)
		return r;
	if ((r = workload_members_memo(m, w, memo, &wm, &owned)) != TSI_OK)
		goto out;
	/* aud is printable ASCII (tsi_aud_ok): only '"' and '\\' need
	 * escaping, and then the JSON library does it. */
	if (strpbrk(aud, "\"\\") != NULL) {
		r = TSI_ERR_ALLOC;
		if ((a = json_string(aud)) == NULL)
			goto out;
		aud_json = json_dumps(a, JSON_ENCODE_ANY);
		json_decref(a);
		if (aud_json == NULL)
			goto out;
	}
	/* jti is base64url and the numbers are digits: nothing to escape. */
	n = snprintf(nums, sizeof(nums),
	    ",\"iat\":%lld,\"nbf\":%lld,"
	    "\"exp\":%lld,\"jti\":\"%s\",",
	    (long long)now, (long long)now, (long long)now + ttl, jti);
	if (n < 0 || (size_t)n >= sizeof(nums)) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	cap = sizeof(iss) + 7 + strlen(aud) + 2 +
	    (aud_json != NULL ? strlen(aud_json) : 0) + 1 + strlen(wm) +
	    (size_t)n + strlen(m->loc_claims) + 2;
	if (cap > TSI_JWT_MAX_BYTES) {
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	if ((buf = malloc(cap)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if ((r = put(buf, cap, &off, iss, sizeof(iss) - 1)) != TSI_OK ||
	    (r = put(buf, cap, &off, "\"aud\":", 6)) != TSI_OK)
		goto out;
	if (aud_json != NULL)
		r = put(buf, cap, &off, aud_json, strlen(aud_json));
	else if ((r = put(buf, cap, &off, "\"", 1)) == TSI_OK &&
	    (r = put(buf, cap, &off, aud, strlen(aud))) == TSI_OK)
		r = put(buf, cap, &off, "\"", 1);
	if (r != TSI_OK || (r = put(buf, cap, &off, ",", 1)) != TSI_OK ||
	    (r = put(buf, cap, &off, wm, strlen(wm))) != TSI_OK ||
	    (r = put(buf, cap, &off, nums, (size_t)n)) != TSI_OK ||
	    (r = put(buf, cap, &off, m->loc_claims, strlen(m->loc_claims))) !=
	        TSI_OK ||
	    (r = put(buf, cap, &off, "}", 2)) != TSI_OK)
		goto out;
	*out = buf;
	buf = NULL;
out:
	free(buf);
	free(aud_json);
	tsi_strfree(owned);
	free(jti);
	return r;
}

int
tsi_minter_claims(const struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, time_t now, int ttl, json_t **out)
{
	char *text = NULL;
	json_t *c;
	int r;

	if ((r = claims_text(m, w, aud, now, ttl, NULL, &text)) != TSI_OK)
		return r;
	c = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	tsi_strfree(text);
	if (c == NULL)
		return TSI_ERR_INTERNAL;
	*out = c;
	return TSI_OK;
}

/* Rotates when due (write-locked) and takes a reference on the current
 * session. Sign outside the lock: concurrent requests sign in parallel;
 * the reference keeps the key alive across a rotation. */
static int
session_due(struct tsi_minter *m, time_t now, struct session **out)
{
	int r;

	pthread_rwlock_wrlock(&m->mu);
	if (m->cur == NULL || now >= m->cur->rotate_at) {
		r = rotate_locked(m, now);
		/* A failed rotation is survivable while the current
		 * session certificate still covers a token. */
		if (r != TSI_OK &&
		    (m->cur == NULL || m->cur->not_after - now <= SKEW)) {
			pthread_rwlock_unlock(&m->mu);
			tsi_log(TSI_LOG_ERROR, "session.rotate_failed",
			    TSI_LS("error", tsi_strerror(r)));
			return r;
		}
		if (r != TSI_OK)
			tsi_log(TSI_LOG_WARN, "session.rotate_failed",
			    TSI_LS("error", tsi_strerror(r)));
	}
	*out = m->cur;
	__atomic_add_fetch(&m->cur->refs, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&m->mu);
	return TSI_OK;
}

int
tsi_minter_mint(struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, char **token, long long *expires_at)
{
	return tsi_minter_mint_memo(m, w, aud, NULL, token, expires_at);
}

int
tsi_minter_mint_memo(struct tsi_minter *m, const struct tsi_workload *w,
    const char *aud, struct tsi_claims_memo *memo, char **token,
    long long *expires_at)
{
	const struct tsi_signer *signer;
	struct session *sess = NULL;
	const struct tsi_jwt_header *hdr;
	char *claims = NULL;
	time_t now = time(NULL), limit;
	int ttl = m->cfg->token_ttl, r;

	if (!tsi_aud_ok(aud))
		return TSI_ERR_INVALID_ARG;
	if (m->cfg->signing == TSI_SIGNING_TPM) {
		signer = m->tpm_signer;
		hdr = m->node_hdr;
		limit = m->node_not_after;
	} else {
		/* The usual case: a current session that is not due. */
		pthread_rwlock_rdlock(&m->mu);
		if (m->cur != NULL && now < m->cur->rotate_at) {
			sess = m->cur;
			__atomic_add_fetch(&sess->refs, 1, __ATOMIC_ACQ_REL);
		}
		pthread_rwlock_unlock(&m->mu);
		if (sess == NULL && (r = session_due(m, now, &sess)) != TSI_OK)
			return r;
		signer = sess->signer;
		hdr = sess->hdr;
		limit = sess->not_after;
	}
	if (limit - now < ttl)
		ttl = (int)(limit - now);
	if (ttl < 1) {
		tsi_log(TSI_LOG_ERROR, "token.cert_expired");
		r = TSI_ERR_EXPIRED;
		goto out;
	}
	if ((r = claims_text(m, w, aud, now, ttl, memo, &claims)) != TSI_OK)
		goto out;
	if ((r = tsi_jwt_sign_claims(signer, hdr, claims, token)) != TSI_OK)
		goto out;
	*expires_at = (long long)now + ttl;
	r = TSI_OK;
out:
	session_free(sess);
	tsi_strfree(claims);
	return r;
}

static int
coord(EVP_PKEY *pk, const char *name, char **out)
{
	unsigned char bin[32];
	BIGNUM *bn = NULL;
	int r = TSI_ERR_CRYPTO;

	if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1 ||
	    BN_bn2binpad(bn, bin, sizeof(bin)) != (int)sizeof(bin))
		goto out;
	r = tsi_b64url_encode(bin, sizeof(bin), out);
out:
	BN_free(bn);
	return r;
}

static int
jwk(EVP_PKEY *pk, STACK_OF(X509) *chain, json_t *keys)
{
	char kid[44], *x = NULL, *y = NULL;
	json_t *k = NULL, *x5c = NULL;
	int r;

	if ((r = tsi_key_thumbprint(pk, kid)) != TSI_OK ||
	    (r = coord(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x)) != TSI_OK ||
	    (r = coord(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) != TSI_OK)
		goto out;
	if ((r = tsi_jwt_x5c(chain, &x5c)) != TSI_OK)
		goto out;
	k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "kty", "EC",
	    "crv", "P-256", "x", x, "y", y, "kid", kid, "use", "sig", "alg",
	    "ES256", "x5c", x5c);
	if (k == NULL || json_array_append_new(keys, k) != 0) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	r = TSI_OK;
out:
	json_decref(x5c);
	free(x);
	free(y);
	return r;
}

int
tsi_minter_jwks(struct tsi_minter *m, json_t **out)
{
	json_t *keys = json_array();
	time_t now = time(NULL);
	int r = TSI_OK;

	if (keys == NULL)
		return TSI_ERR_ALLOC;
	if (m->cfg->signing == TSI_SIGNING_TPM) {
		r = jwk(tsi_tpm_pub(m->tpm), m->node_chain, keys);
	} else {
		pthread_rwlock_rdlock(&m->mu);
		/* Tokens signed by the previous session key stay valid until
		 * its certificate ends. */
		if (m->cur != NULL)
			r = jwk(m->cur->key, m->cur->chain, keys);
		if (r == TSI_OK && m->prev != NULL && m->prev->not_after > now)
			r = jwk(m->prev->key, m->prev->chain, keys);
		pthread_rwlock_unlock(&m->mu);
	}
	if (r != TSI_OK) {
		json_decref(keys);
		return r;
	}
	if ((*out = json_pack("{s:o}", "keys", keys)) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

int
tsi_minter_kid(struct tsi_minter *m, char kid[44])
{
	int r;

	if (m->cfg->signing == TSI_SIGNING_TPM)
		return tsi_key_thumbprint(tsi_tpm_pub(m->tpm), kid);
	pthread_rwlock_rdlock(&m->mu);
	r = m->cur != NULL ? tsi_signer_kid(m->cur->signer, kid)
	                   : TSI_ERR_NOT_FOUND;
	pthread_rwlock_unlock(&m->mu);
	return r;
}
