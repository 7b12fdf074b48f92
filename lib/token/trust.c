/*
 * trust.c - the verifier's trust store: CA anchors, revocations, the parsed
 * certificate cache, and the re-check of a chain remembered by a caller
 * (tsi_trust_chain_check). jwt.c decides with it; see docs/token-core.md.
 */
#include "tsi/jwt.h"
#include "tsi/err.h"
#include "tsi/x509.h"
#include "jwt_int.h"

#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REVOKED_MAX 100000

/* ---- trust anchors and revocations ---- */

int
tsi_trust_new(struct tsi_trust **out)
{
	struct tsi_trust *t;
	int ret;

	if (out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return TSI_ERR_ALLOC;
	if ((t->store = X509_STORE_new()) == NULL ||
	    (t->cache = calloc(1, sizeof(*t->cache))) == NULL) {
		X509_STORE_free(t->store);
		free(t);
		return TSI_ERR_ALLOC;
	}
	if (pthread_mutex_init(&t->cache->mu, NULL) != 0) {
		X509_STORE_free(t->store);
		free(t->cache);
		free(t);
		return TSI_ERR_INTERNAL;
	}
	if ((ret = jwt_cache_new(&t->verdicts)) != TSI_OK) {
		tsi_trust_free(t);
		return ret;
	}
	*out = t;
	return TSI_OK;
}

static void
cache_free(struct cert_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < CERT_CACHE_SIZE; i++) {
		free(c->slot[i].der);
		X509_free(c->slot[i].x);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/*
 * The certificate encoded by exactly der[0..len), parsed once. Returns a new
 * reference (caller X509_free) or NULL when der is not one whole DER
 * certificate.
 */
X509 *
trust_cache_parse(struct cert_cache *c, const unsigned char *der, size_t len)
{
	unsigned char h[32];
	const unsigned char *p = der;
	struct cert_slot *victim;
	unsigned char *copy;
	X509 *x;
	size_t i;

	if (len == 0 || len > TSI_JWT_MAX_BYTES ||
	    EVP_Digest(der, len, h, NULL, EVP_sha256(), NULL) != 1)
		return NULL;
	pthread_mutex_lock(&c->mu);
	for (i = 0; i < CERT_CACHE_SIZE; i++) {
		struct cert_slot *sl = &c->slot[i];
		if (sl->x != NULL && sl->len == len &&
		    memcmp(sl->h, h, sizeof(h)) == 0 &&
		    memcmp(sl->der, der, len) == 0 && X509_up_ref(sl->x) == 1) {
			sl->used = ++c->tick;
			x = sl->x;
			pthread_mutex_unlock(&c->mu);
			return x;
		}
	}
	pthread_mutex_unlock(&c->mu);

	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		return NULL;
	}
	/* Compute the cached extension data now, before the object is shared. */
	(void)X509_get_extension_flags(x);
	if ((copy = malloc(len)) == NULL || X509_up_ref(x) != 1) {
		free(copy);
		return x; /* usable, just not cached */
	}
	memcpy(copy, der, len);
	pthread_mutex_lock(&c->mu);
	victim = &c->slot[0];
	for (i = 0; i < CERT_CACHE_SIZE; i++) {
		if (c->slot[i].x == NULL) {
			victim = &c->slot[i];
			break;
		}
		if (c->slot[i].used < victim->used)
			victim = &c->slot[i];
	}
	free(victim->der);
	X509_free(victim->x); /* holders keep their own references */
	victim->der = copy;
	victim->len = len;
	memcpy(victim->h, h, sizeof(h));
	victim->x = x; /* the extra reference taken above */
	victim->used = ++c->tick;
	pthread_mutex_unlock(&c->mu);
	return x;
}

void
tsi_trust_free(struct tsi_trust *t)
{
	size_t i;

	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	cache_free(t->cache);
	jwt_cache_free(t->verdicts);
	for (i = 0; i < t->nrevoked; i++)
		free(t->revoked[i]);
	free(t->revoked);
	free(t->ca_sha256);
	free(t);
}

/* Remembers the CA's DER hash, so that a path verified earlier can later be
 * told whether its anchor is still trusted (tsi_trust_chain_check). */
static int
remember_ca(struct tsi_trust *t, X509 *x)
{
	unsigned char h[32], (*n)[32];
	unsigned int hl = sizeof(h);

	if (X509_digest(x, EVP_sha256(), h, &hl) != 1 || hl != sizeof(h)) {
		ERR_clear_error();
		return TSI_ERR_CRYPTO;
	}
	if ((n = realloc(t->ca_sha256, (t->nca_sha256 + 1) * sizeof(*n))) ==
	    NULL)
		return TSI_ERR_ALLOC;
	t->ca_sha256 = n;
	memcpy(t->ca_sha256[t->nca_sha256++], h, sizeof(h));
	return TSI_OK;
}

static int
is_trusted_ca(const struct tsi_trust *t, const unsigned char h[32])
{
	size_t i;

	for (i = 0; i < t->nca_sha256; i++)
		if (memcmp(t->ca_sha256[i], h, 32) == 0)
			return 1;
	return 0;
}

static int
add_cas(struct tsi_trust *t, STACK_OF(X509) *sk)
{
	int i, ret;

	t->gen++; /* even a partial change invalidates every verdict */
	for (i = 0; i < sk_X509_num(sk); i++) {
		if (X509_STORE_add_cert(t->store, sk_X509_value(sk, i)) != 1) {
			/* Adding the same CA twice is harmless. */
			unsigned long e = ERR_peek_last_error();
			if (ERR_GET_REASON(e) !=
			    X509_R_CERT_ALREADY_IN_HASH_TABLE) {
				ERR_clear_error();
				return TSI_ERR_CRYPTO;
			}
			ERR_clear_error();
		}
		if ((ret = remember_ca(t, sk_X509_value(sk, i))) != TSI_OK)
			return ret;
		t->ncas++;
	}
	return TSI_OK;
}

int
tsi_trust_add_ca_file(struct tsi_trust *t, const char *path)
{
	STACK_OF(X509) *sk = NULL;
	int ret;

	if (t == NULL || path == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ret = tsi_x509_load_chain_file(path, &sk)) != TSI_OK)
		return ret;
	ret = add_cas(t, sk);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

int
tsi_trust_add_ca_pem(struct tsi_trust *t, const char *pem, size_t len)
{
	STACK_OF(X509) *sk = NULL;
	int ret;

	if (t == NULL || pem == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ret = tsi_x509_load_chain_pem(pem, len, &sk)) != TSI_OK)
		return ret;
	ret = add_cas(t, sk);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

/* Lower-case hex without colons or a "serial=" prefix; NULL if not hex. */
static char *
normalize_hex(const char *in)
{
	size_t i, n = 0, len;
	char *o;

	if (strncmp(in, "serial=", 7) == 0)
		in += 7;
	len = strnlen(in, 256);
	if (len == 0 || len >= 256 || (o = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (in[i] == ':')
			continue;
		if (!isxdigit((unsigned char)in[i])) {
			free(o);
			return NULL;
		}
		o[n++] = (char)tolower((unsigned char)in[i]);
	}
	o[n] = '\0';
	if (n == 0) {
		free(o);
		return NULL;
	}
	return o;
}

int
tsi_trust_revoke(struct tsi_trust *t, const char *serial_or_fingerprint)
{
	char *h, **nr;

	if (t == NULL || serial_or_fingerprint == NULL)
		return TSI_ERR_INVALID_ARG;
	if (t->nrevoked >= REVOKED_MAX)
		return TSI_ERR_TOO_LARGE;
	if ((h = normalize_hex(serial_or_fingerprint)) == NULL)
		return TSI_ERR_PARSE;
	if ((nr = realloc(t->revoked, (t->nrevoked + 1) * sizeof(*nr))) ==
	    NULL) {
		free(h);
		return TSI_ERR_ALLOC;
	}
	t->revoked = nr;
	t->revoked[t->nrevoked++] = h;
	t->gen++; /* no verdict made before this revocation is used again */
	return TSI_OK;
}

static const char *
skip_zeros(const char *s)
{
	while (s[0] == '0' && s[1] != '\0')
		s++;
	return s;
}

/* Nonzero when cert is revoked by serial or by fingerprint. */
int
trust_is_revoked(const struct tsi_trust *t, X509 *cert)
{
	char fp[65], *serial = NULL, *p;
	BIGNUM *bn = NULL;
	size_t i;
	int hit = 0;

	if (t->nrevoked == 0)
		return 0;
	if (tsi_x509_fingerprint(cert, fp) != TSI_OK)
		return 1; /* cannot tell: refuse */
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL)) ==
	        NULL ||
	    (serial = BN_bn2hex(bn)) == NULL) {
		BN_free(bn);
		return 1;
	}
	for (p = serial; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (i = 0; i < t->nrevoked && !hit; i++)
		hit = strcmp(t->revoked[i], fp) == 0 ||
		    strcmp(skip_zeros(t->revoked[i]), skip_zeros(serial)) == 0;
	OPENSSL_free(serial);
	BN_free(bn);
	return hit;
}

/* The identity of cert for tsi_trust_chain_check. */
int
trust_chain_cert_of(const struct tsi_trust *t, X509 *cert,
    struct tsi_chain_cert *out)
{
	unsigned int hl = sizeof(out->sha256);
	BIGNUM *bn = NULL;
	char *serial = NULL;
	const char *s;
	size_t i;
	int n, ret = TSI_ERR_CRYPTO;

	memset(out, 0, sizeof(*out));
	if (X509_digest(cert, EVP_sha256(), out->sha256, &hl) != 1 ||
	    hl != sizeof(out->sha256))
		goto out;
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL)) ==
	        NULL ||
	    (serial = BN_bn2hex(bn)) == NULL)
		goto out;
	s = skip_zeros(serial);
	n = snprintf(out->serial, sizeof(out->serial), "%s", s);
	if (n < 0 || (size_t)n >= sizeof(out->serial))
		goto out; /* longer than RFC 5280's 20 octets */
	for (i = 0; out->serial[i] != '\0'; i++)
		out->serial[i] = (char)tolower((unsigned char)out->serial[i]);
	out->trusted = is_trusted_ca(t, out->sha256);
	ret = TSI_OK;
out:
	ERR_clear_error();
	OPENSSL_free(serial);
	BN_free(bn);
	return ret;
}

int
tsi_trust_chain_check(const struct tsi_trust *t,
    const struct tsi_chain_cert *chain, size_t n, char *detail, size_t detlen)
{
	char fp[65];
	size_t i, j, k;

	if (detail != NULL && detlen > 0)
		detail[0] = '\0';
	if (t == NULL || (chain == NULL && n > 0))
		return TSI_ERR_INVALID_ARG;
	for (i = 0; i < n; i++) {
		for (k = 0; k < 32; k++)
			snprintf(fp + 2 * k, 3, "%02x", chain[i].sha256[k]);
		for (j = 0; j < t->nrevoked; j++)
			if (strcmp(t->revoked[j], fp) == 0 ||
			    strcmp(skip_zeros(t->revoked[j]),
			        chain[i].serial) == 0) {
				if (detail != NULL)
					snprintf(detail, detlen,
					    "certificate "
					    "sha256:%s at depth %zu is revoked",
					    fp, i);
				return TSI_ERR_BAD_TOKEN;
			}
		if (chain[i].trusted && !is_trusted_ca(t, chain[i].sha256)) {
			if (detail != NULL)
				snprintf(detail, detlen,
				    "CA sha256:%s at depth "
				    "%zu is no longer trusted",
				    fp, i);
			return TSI_ERR_BAD_TOKEN;
		}
	}
	return TSI_OK;
}

/* ---- parsing ---- */

void
tsi_trust_cache_stats(const struct tsi_trust *t,
    struct tsi_trust_cache_stats *st)
{
	if (st == NULL)
		return;
	memset(st, 0, sizeof(*st));
	if (t == NULL)
		return;
	jwt_cache_stats(t->verdicts, &st->hits, &st->misses, &st->entries,
	    &st->evictions);
}
