/*
 * jwt.c - identity JWT verification, exactly as CONTRACT "Trust model" says.
 *
 * The order of the checks is part of the contract (docs/token-core.md):
 * size, structure, JSON (duplicate keys refused), alg, x5c, chain to a trusted
 * CA, revocation, node certificate, signature, kid, times, audience, location.
 * Every refusal names one enum tsi_jwt_reason and one line of detail. There
 * is no fallback: nothing here ever accepts a token on a second path.
 *
 * Signatures are checked with OpenSSL directly, not libjwt: libjwt 1.10.2
 * takes the algorithm from the token header (HS256 with the public key as the
 * HMAC secret verifies), treats a NULL key as "no verification", and needs a
 * PEM round trip for a key we already hold. Here the algorithm is fixed
 * (ECDSA P-256 with SHA-256), the key is the x5c leaf's and r, s are
 * range-checked before OpenSSL sees them.
 */
#include "tsi/jwt.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/signer.h"
#include "tsi/x509.h"
#include "jwt_int.h"

#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define X5C_MAX JWT_X5C_MAX
#define MAX_NUMERIC_DATE JWT_MAX_NUMERIC_DATE

const char *
tsi_jwt_reason_name(enum tsi_jwt_reason r)
{
	switch (r) {
	case TSI_JWT_OK: return "ok";
	case TSI_JWT_MALFORMED: return "malformed";
	case TSI_JWT_TOO_LARGE: return "too_large";
	case TSI_JWT_DUPLICATE_KEY: return "duplicate_key";
	case TSI_JWT_BAD_ALG: return "bad_alg";
	case TSI_JWT_NO_X5C: return "no_x5c";
	case TSI_JWT_BAD_X5C: return "bad_x5c";
	case TSI_JWT_UNTRUSTED_CHAIN: return "untrusted_chain";
	case TSI_JWT_CERT_EXPIRED: return "cert_expired";
	case TSI_JWT_CERT_REVOKED: return "cert_revoked";
	case TSI_JWT_CERT_NOT_CA: return "cert_not_ca";
	case TSI_JWT_BAD_SIGNATURE: return "bad_signature";
	case TSI_JWT_BAD_KID: return "bad_kid";
	case TSI_JWT_NO_EXP: return "no_exp";
	case TSI_JWT_EXPIRED: return "expired";
	case TSI_JWT_NOT_YET_VALID: return "not_yet_valid";
	case TSI_JWT_ISSUED_IN_FUTURE: return "issued_in_future";
	case TSI_JWT_LIFETIME_TOO_LONG: return "lifetime_too_long";
	case TSI_JWT_NO_AUD: return "no_aud";
	case TSI_JWT_BAD_AUD: return "bad_aud";
	case TSI_JWT_BAD_CLAIMS: return "bad_claims";
	case TSI_JWT_LOCATION_MISMATCH: return "location_mismatch";
	}
	return "unknown";
}

int jwt_refuse(struct tsi_verify_result *res, enum tsi_jwt_reason reason,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int
jwt_refuse(struct tsi_verify_result *res, enum tsi_jwt_reason reason,
    const char *fmt, ...)
{
	va_list ap;
	size_t i;

	res->reason = reason;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	/* One line, printable: details may quote token content. */
	for (i = 0; res->detail[i] != '\0'; i++)
		if ((unsigned char)res->detail[i] < 0x20 ||
		    (unsigned char)res->detail[i] == 0x7f)
			res->detail[i] = '?';
	return TSI_ERR_BAD_TOKEN;
}

/* The three parts of a compact JWS, borrowed from the token text. */
struct parts {
	const char *h, *c, *s;
	size_t hlen, clen, slen;
	size_t signed_len; /* bytes of "header.claims" */
};

static int
split(const char *token, struct parts *p, struct tsi_verify_result *res)
{
	size_t len;
	const char *d1, *d2;

	len = strnlen(token, TSI_JWT_MAX_BYTES + 1);
	if (len > TSI_JWT_MAX_BYTES)
		return jwt_refuse(res, TSI_JWT_TOO_LARGE, "token over %d bytes",
		    TSI_JWT_MAX_BYTES);
	if ((d1 = memchr(token, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token))) ==
	        NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
		return jwt_refuse(res, TSI_JWT_MALFORMED,
		    "not three dot-separated parts");
	p->h = token;
	p->hlen = (size_t)(d1 - token);
	p->c = d1 + 1;
	p->clen = (size_t)(d2 - p->c);
	p->s = d2 + 1;
	p->slen = len - (size_t)(p->s - token);
	p->signed_len = (size_t)(d2 - token);
	if (p->hlen == 0 || p->clen == 0)
		return jwt_refuse(res, TSI_JWT_MALFORMED,
		    "empty header or claims");
	return TSI_OK;
}

static int
parse_part(const char *b64, size_t len, const char *what, json_t **out,
    struct tsi_verify_result *res)
{
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	json_error_t jerr;
	json_t *j;

	if (tsi_b64url_decode(b64, len, &raw, &rawlen) != TSI_OK)
		return jwt_refuse(res, TSI_JWT_MALFORMED, "%s is not base64url",
		    what);
	j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES,
	    &jerr);
	tsi_freezero(raw, rawlen);
	if (j == NULL) {
		if (json_error_code(&jerr) == json_error_duplicate_key)
			return jwt_refuse(res, TSI_JWT_DUPLICATE_KEY,
			    "%s repeats a member name", what);
		return jwt_refuse(res, TSI_JWT_MALFORMED, "%s is not JSON: %s",
		    what, jerr.text);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return jwt_refuse(res, TSI_JWT_MALFORMED,
		    "%s is not a JSON object", what);
	}
	*out = j;
	return TSI_OK;
}

static int
parse_token(const char *token, struct parts *p, json_t **hdr, json_t **claims,
    struct tsi_verify_result *res)
{
	int ret;

	if ((ret = split(token, p, res)) != TSI_OK)
		return ret;
	if ((ret = parse_part(p->h, p->hlen, "header", hdr, res)) != TSI_OK)
		return ret;
	if ((ret = parse_part(p->c, p->clen, "claims", claims, res)) !=
	    TSI_OK) {
		json_decref(*hdr);
		*hdr = NULL;
		return ret;
	}
	return TSI_OK;
}

int
tsi_jwt_decode_unverified(const char *token, json_t **header, json_t **claims)
{
	struct tsi_verify_result res;
	struct parts p;
	json_t *h = NULL, *c = NULL;

	if (token == NULL || header == NULL || claims == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(&res, 0, sizeof(res));
	if (parse_token(token, &p, &h, &c, &res) != TSI_OK)
		return res.reason == TSI_JWT_TOO_LARGE ? TSI_ERR_TOO_LARGE
		                                       : TSI_ERR_PARSE;
	*header = h;
	*claims = c;
	return TSI_OK;
}

/* ---- header checks ---- */

static int
check_header(const json_t *hdr, struct tsi_verify_result *res)
{
	const json_t *alg = json_object_get(hdr, "alg");
	const json_t *typ = json_object_get(hdr, "typ");

	if (!json_is_string(alg))
		return jwt_refuse(res, TSI_JWT_BAD_ALG, "alg missing");
	if (strcmp(json_string_value(alg), "ES256") != 0)
		return jwt_refuse(res, TSI_JWT_BAD_ALG,
		    "alg %.32s is not ES256", json_string_value(alg));
	/* RFC 7515 4.1.11: extensions we do not understand must be refused. */
	if (json_object_get(hdr, "crit") != NULL)
		return jwt_refuse(res, TSI_JWT_MALFORMED,
		    "crit header not supported");
	if (typ != NULL &&
	    (!json_is_string(typ) ||
	        strcmp(json_string_value(typ), "JWT") != 0))
		return jwt_refuse(res, TSI_JWT_MALFORMED, "typ is not JWT");
	return TSI_OK;
}

static int
decode_x5c(struct cert_cache *cache, const json_t *hdr, STACK_OF(X509) **out,
    struct tsi_verify_result *res)
{
	const json_t *x5c = json_object_get(hdr, "x5c");
	STACK_OF(X509) *sk = NULL;
	unsigned char *der = NULL;
	size_t i, derlen = 0;
	X509 *x;
	int ret;

	if (x5c == NULL)
		return jwt_refuse(res, TSI_JWT_NO_X5C, "x5c missing");
	if (!json_is_array(x5c) || json_array_size(x5c) == 0 ||
	    json_array_size(x5c) > X5C_MAX)
		return jwt_refuse(res, TSI_JWT_BAD_X5C,
		    "x5c is not an array of 1 to %d certificates", X5C_MAX);
	if ((sk = sk_X509_new_null()) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < json_array_size(x5c); i++) {
		const json_t *e = json_array_get(x5c, i);

		if (!json_is_string(e) ||
		    tsi_b64_decode(json_string_value(e), json_string_length(e),
		        &der, &derlen) != TSI_OK) {
			ret = jwt_refuse(res, TSI_JWT_BAD_X5C,
			    "x5c[%zu] is not base64", i);
			goto out;
		}
		if ((x = trust_cache_parse(cache, der, derlen)) == NULL) {
			ret = jwt_refuse(res, TSI_JWT_BAD_X5C,
			    "x5c[%zu] is not a DER certificate", i);
			goto out;
		}
		tsi_freezero(der, derlen);
		der = NULL;
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			ret = TSI_ERR_ALLOC;
			goto out;
		}
	}
	*out = sk;
	sk = NULL;
	ret = TSI_OK;
out:
	if (der != NULL)
		tsi_freezero(der, derlen);
	sk_X509_pop_free(sk, X509_free);
	return ret;
}

static void
cert_cn(X509 *x, char *buf, size_t size)
{
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	        buf, (int)size) < 0)
		snprintf(buf, size, "?");
}

/* ---- chain ---- */

static enum tsi_jwt_reason
map_verify_error(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		return TSI_JWT_CERT_EXPIRED;
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
	case X509_V_ERR_KEYUSAGE_NO_CERTSIGN: return TSI_JWT_CERT_NOT_CA;
	case X509_V_ERR_CERT_REVOKED: return TSI_JWT_CERT_REVOKED;
	default: return TSI_JWT_UNTRUSTED_CHAIN;
	}
}

/*
 * Verifies x5c to a trusted CA at time now. On success *chain is the
 * verified path (leaf first, trust anchor last).
 */
static int
verify_chain(const struct tsi_trust *t, STACK_OF(X509) *x5c, time_t now,
    STACK_OF(X509) **chain, struct tsi_verify_result *res)
{
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL, *path = NULL;
	X509_VERIFY_PARAM *vp;
	char cn[128];
	int i, err, ret = TSI_ERR_ALLOC;

	if (t->ncas == 0)
		return jwt_refuse(res, TSI_JWT_UNTRUSTED_CHAIN,
		    "no trusted CA configured");
	/* Every certificate that signed another must be a CA. OpenSSL checks
	 * this too; checking first gives the refusal its own reason. */
	for (i = 1; i < sk_X509_num(x5c); i++) {
		X509 *x = sk_X509_value(x5c, i);
		if (X509_check_ca(x) != 1 ||
		    ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) &&
		        !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))) {
			cert_cn(x, cn, sizeof(cn));
			return jwt_refuse(res, TSI_JWT_CERT_NOT_CA,
			    "x5c[%d] (CN=%s) has no CA rights", i, cn);
		}
	}
	if ((untrusted = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 1; i < sk_X509_num(x5c); i++)
		if (sk_X509_push(untrusted, sk_X509_value(x5c, i)) <= 0)
			goto out;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, t->store, sk_X509_value(x5c, 0),
	        untrusted) != 1)
		goto out;
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(vp, now);
	X509_VERIFY_PARAM_set_depth(vp, X5C_MAX + 1);
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		i = X509_STORE_CTX_get_error_depth(ctx);
		ERR_clear_error();
		ret = jwt_refuse(res, map_verify_error(err),
		    "chain: %s at depth %d", X509_verify_cert_error_string(err),
		    i);
		goto out;
	}
	if ((path = X509_STORE_CTX_get1_chain(ctx)) == NULL)
		goto out;
	/* x5c must be the verified path itself, in order; nothing else. */
	if (sk_X509_num(x5c) > sk_X509_num(path)) {
		ret = jwt_refuse(res, TSI_JWT_UNTRUSTED_CHAIN,
		    "x5c holds certificates outside the verified chain");
		goto out;
	}
	for (i = 0; i < sk_X509_num(x5c); i++)
		if (X509_cmp(sk_X509_value(x5c, i), sk_X509_value(path, i)) !=
		    0) {
			ret = jwt_refuse(res, TSI_JWT_UNTRUSTED_CHAIN,
			    "x5c[%d] is not in the verified chain", i);
			goto out;
		}
	*chain = path;
	path = NULL;
	ret = TSI_OK;
out:
	sk_X509_pop_free(path, X509_free);
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted);
	return ret;
}

/*
 * The node certificate is the one x5c entry carrying tsi: SANs: x5c[0] (the
 * node key signed the token) or x5c[1] (a session key did). Exactly one may
 * carry them: only the CA binds a location, so a session certificate (made
 * by the node) claiming one is refused rather than believed.
 */
static int
find_node(STACK_OF(X509) *x5c, struct tsi_location *loc, int *index,
    struct tsi_verify_result *res)
{
	struct tsi_location tmp = { 0 };
	int i, r, found = -1;

	for (i = 0; i < sk_X509_num(x5c); i++) {
		r = tsi_x509_location(sk_X509_value(x5c, i), &tmp);
		if (r == TSI_ERR_NOT_FOUND)
			continue;
		if (r != TSI_OK)
			return jwt_refuse(res, TSI_JWT_BAD_X5C,
			    "x5c[%d] has an invalid tsi: location", i);
		if (found >= 0) {
			tsi_location_clear(&tmp);
			tsi_location_clear(loc);
			return jwt_refuse(res, TSI_JWT_BAD_X5C,
			    "x5c[%d] and x5c[%d] both carry a tsi: location",
			    found, i);
		}
		found = i;
		*loc = tmp;
		memset(&tmp, 0, sizeof(tmp));
	}
	if (found < 0 || found > 1) {
		tsi_location_clear(loc);
		return jwt_refuse(res, TSI_JWT_BAD_X5C,
		    "neither x5c[0] nor x5c[1] is a node certificate");
	}
	*index = found;
	return TSI_OK;
}

/* ---- signature ---- */

/* The order n of the P-256 group, big-endian (SEC 2, section 2.4.2). */
static const unsigned char p256_order[32] = {
	0xff,
	0xff,
	0xff,
	0xff,
	0x00,
	0x00,
	0x00,
	0x00,
	0xff,
	0xff,
	0xff,
	0xff,
	0xff,
	0xff,
	0xff,
	0xff,
	0xbc,
	0xe6,
	0xfa,
	0xad,
	0xa7,
	0x17,
	0x9e,
	0x84,
	0xf3,
	0xb9,
	0xca,
	0xc2,
	0xfc,
	0x63,
	0x25,
	0x51,
};

/* Nonzero when the 32-byte big-endian v is in [1, n-1]. */
static int
scalar_in_range(const unsigned char v[32])
{
	static const unsigned char zero[32];

	return memcmp(v, zero, 32) != 0 && memcmp(v, p256_order, 32) < 0;
}

/* SHA-256, fetched once: EVP_sha256() costs a fetch on every use. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md != NULL ? sha256_md : EVP_sha256();
}

/*
 * The JWS signature: ECDSA P-256 over SHA-256 of "header.claims" with the
 * verdict's leaf key, r and s each 32 bytes, each in [1, n-1]. The digest
 * is computed here and verified with a copy of the verdict's ready context
 * (EVP_PKEY_verify on the digest is what EVP_DigestVerify does after
 * hashing).
 */
static int
check_signature(const struct jwt_verdict *v, const struct parts *p,
    struct tsi_verify_result *res)
{
	unsigned char *raw = NULL, *der = NULL, h[32];
	unsigned int hlen = 0;
	size_t rawlen = 0;
	BIGNUM *r = NULL, *s = NULL;
	ECDSA_SIG *es = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int n, ok, ret = TSI_ERR_ALLOC;

	if (p->slen == 0)
		return jwt_refuse(res, TSI_JWT_BAD_SIGNATURE,
		    "signature empty");
	if (tsi_b64url_decode(p->s, p->slen, &raw, &rawlen) != TSI_OK)
		return jwt_refuse(res, TSI_JWT_BAD_SIGNATURE,
		    "signature is not base64url");
	if (rawlen != 64) {
		ret = jwt_refuse(res, TSI_JWT_BAD_SIGNATURE,
		    "signature is %zu bytes, want 64 (r||s)", rawlen);
		goto out;
	}
	if (!scalar_in_range(raw) || !scalar_in_range(raw + 32)) {
		ret = jwt_refuse(res, TSI_JWT_BAD_SIGNATURE,
		    "r or s not in [1, n-1]");
		goto out;
	}
	if ((r = BN_bin2bn(raw, 32, NULL)) == NULL ||
	    (s = BN_bin2bn(raw + 32, 32, NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by es */
	if ((n = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	if (EVP_Digest(p->h, p->signed_len, h, &hlen, sha256(), NULL) != 1 ||
	    hlen != sizeof(h) || (ctx = EVP_PKEY_CTX_dup(v->verify)) == NULL) {
		ERR_clear_error();
		ret = TSI_ERR_CRYPTO;
		goto out;
	}
	ok = EVP_PKEY_verify(ctx, der, (size_t)n, h, sizeof(h)) == 1;
	ERR_clear_error();
	if (!ok) {
		ret = jwt_refuse(res, TSI_JWT_BAD_SIGNATURE,
		    "signature does not verify with the x5c[0] key");
		goto out;
	}
	ret = TSI_OK;
out:
	tsi_freezero(raw, rawlen);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

/* ---- the chain verdict: cached or verified now ---- */

/* Longest header segment whose verdict is cached: a [session, node] header
 * is about 1.8 KB, one with four certificates under 4 KB. Bounds the cache
 * at about 7 MB however headers are padded. */
#define CACHED_HEADER_MAX 6144

static int
asn1_epoch(const ASN1_TIME *t, long long *out)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	*out = (long long)timegm(&tm);
	return 1;
}

/*
 * The window in which X509_verify_cert accepts every certificate of path on
 * time grounds: notBefore <= now < notAfter for each (OpenSSL's
 * X509_cmp_time treats equal as earlier). 0 when a time cannot be read: such
 * a verdict is not cached.
 */
static int
path_window(STACK_OF(X509) *path, long long *nb, long long *na)
{
	long long b, a;
	int i;

	*nb = MAX_NUMERIC_DATE * -1;
	*na = MAX_NUMERIC_DATE;
	for (i = 0; i < sk_X509_num(path); i++) {
		X509 *x = sk_X509_value(path, i);

		if (!asn1_epoch(X509_get0_notBefore(x), &b) ||
		    !asn1_epoch(X509_get0_notAfter(x), &a))
			return 0;
		if (b > *nb)
			*nb = b;
		if (a < *na)
			*na = a;
	}
	return *nb < *na;
}

/*
 * Everything the x5c chain decides, in the contract's order: x5c decodable,
 * chain to a trusted CA at now, nothing revoked, one node certificate, a
 * P-256 leaf allowed to sign. On success *out is a new verdict for key
 * (caller jwt_verdict_unref), not yet in the cache.
 */
static int
chain_verdict(const struct tsi_trust *t, const json_t *hdr,
    const struct jwt_key *key, long long now, struct jwt_verdict **out,
    struct tsi_verify_result *res)
{
	struct jwt_verdict *v = NULL;
	STACK_OF(X509) *x5c = NULL, *chain = NULL;
	EVP_PKEY *leafpub;
	X509 *leaf;
	int i, node_idx = -1, ret;

	if ((ret = decode_x5c(t->cache, hdr, &x5c, res)) != TSI_OK)
		goto out;
	if ((ret = verify_chain(t, x5c, (time_t)now, &chain, res)) != TSI_OK)
		goto out;
	for (i = 0; i < sk_X509_num(chain); i++)
		if (trust_is_revoked(t, sk_X509_value(chain, i))) {
			char cn[128];
			cert_cn(sk_X509_value(chain, i), cn, sizeof(cn));
			ret = jwt_refuse(res, TSI_JWT_CERT_REVOKED,
			    "certificate CN=%s at depth %d is revoked", cn, i);
			goto out;
		}
	if ((v = jwt_verdict_new(key)) == NULL) {
		ret = TSI_ERR_ALLOC;
		goto out;
	}
	if ((ret = find_node(x5c, &v->loc, &node_idx, res)) != TSI_OK)
		goto out;
	leaf = sk_X509_value(x5c, 0);
	leafpub = X509_get0_pubkey(leaf);
	if (leafpub == NULL || tsi_key_thumbprint(leafpub, v->kid) != TSI_OK) {
		ERR_clear_error();
		ret = jwt_refuse(res, TSI_JWT_BAD_X5C,
		    "x5c[0] key is not EC P-256");
		goto out;
	}
	if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
	    !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE)) {
		ret = jwt_refuse(res, TSI_JWT_BAD_X5C,
		    "x5c[0] key usage does not allow digitalSignature");
		goto out;
	}
	if (EVP_PKEY_up_ref(leafpub) != 1) {
		ret = TSI_ERR_CRYPTO;
		goto out;
	}
	v->leaf = leafpub;
	if ((v->verify = EVP_PKEY_CTX_new_from_pkey(NULL, leafpub, NULL)) ==
	        NULL ||
	    EVP_PKEY_verify_init(v->verify) != 1) {
		ERR_clear_error();
		ret = TSI_ERR_CRYPTO;
		goto out;
	}
	if ((ret = tsi_x509_fingerprint(sk_X509_value(x5c, node_idx),
	         v->node_fp)) != TSI_OK)
		goto out;
	if (sk_X509_num(chain) > TSI_CHAIN_MAX) {
		ret = jwt_refuse(res, TSI_JWT_UNTRUSTED_CHAIN,
		    "verified chain longer than %d certificates",
		    TSI_CHAIN_MAX);
		goto out;
	}
	for (i = 0; i < sk_X509_num(chain); i++)
		if ((ret = trust_chain_cert_of(t, sk_X509_value(chain, i),
		         &v->chain[i])) != TSI_OK)
			goto out;
	v->chain_len = (size_t)sk_X509_num(chain);
	v->gen = t->gen;
	if (!path_window(chain, &v->not_before, &v->not_after))
		v->not_before = v->not_after = 0; /* never cached */
	*out = v;
	v = NULL;
	ret = TSI_OK;
out:
	jwt_verdict_unref(v);
	sk_X509_pop_free(x5c, X509_free);
	sk_X509_pop_free(chain, X509_free);
	return ret;
}

int
tsi_jwt_verify(const struct tsi_trust *t, const char *token,
    const struct tsi_verify_opts *opts, json_t **claims,
    struct tsi_verify_result *res)
{
	struct parts p;
	json_t *hdr = NULL, *cl = NULL;
	const json_t *kid;
	struct jwt_verdict *v = NULL;
	struct jwt_key key;
	const char *aud = TSI_JWT_DEFAULT_AUD;
	long long now = (long long)time(NULL), skew = TSI_JWT_DEFAULT_SKEW;
	int ret;

	if (res == NULL)
		return TSI_ERR_INVALID_ARG;
	res->reason = TSI_JWT_OK;
	res->detail[0] = '\0';
	res->node_fingerprint[0] = '\0';
	res->kid[0] = '\0';
	res->chain_len = 0;
	if (t == NULL || token == NULL || claims == NULL) {
		jwt_refuse(res, TSI_JWT_MALFORMED, "no token");
		return TSI_ERR_INVALID_ARG;
	}
	if (opts != NULL) {
		if (opts->audience != NULL)
			aud = opts->audience;
		if (opts->now != 0)
			now = (long long)opts->now;
		if (opts->skew >= 0)
			skew = opts->skew;
	}

	if ((ret = split(token, &p, res)) != TSI_OK)
		goto out;
	/*
	 * Steps 3-14 and 16 depend only on the header text, the trust and the
	 * time: a header that passed them under this trust generation, with
	 * every certificate still valid at now, is not parsed or verified
	 * again. Claims and signature are checked on every call.
	 */
	key.s = p.h;
	key.len = p.hlen;
	if (p.hlen <= CACHED_HEADER_MAX) {
		jwt_cache_hash(t->verdicts, &key);
		v = jwt_cache_get(t->verdicts, &key, t->gen, now);
	}
	if (v != NULL) {
		if ((ret = parse_part(p.c, p.clen, "claims", &cl, res)) !=
		    TSI_OK)
			goto out;
		if ((ret = check_signature(v, &p, res)) != TSI_OK)
			goto out;
	} else {
		if ((ret = parse_part(p.h, p.hlen, "header", &hdr, res)) !=
		        TSI_OK ||
		    (ret = parse_part(p.c, p.clen, "claims", &cl, res)) !=
		        TSI_OK)
			goto out;
		if ((ret = check_header(hdr, res)) != TSI_OK)
			goto out;
		if ((ret = chain_verdict(t, hdr, &key, now, &v, res)) != TSI_OK)
			goto out;
		if ((ret = check_signature(v, &p, res)) != TSI_OK)
			goto out;
		kid = json_object_get(hdr, "kid");
		if (!json_is_string(kid) ||
		    strcmp(json_string_value(kid), v->kid) != 0) {
			ret = jwt_refuse(res, TSI_JWT_BAD_KID,
			    "kid is not the x5c[0] key thumbprint %s", v->kid);
			goto out;
		}
		/* Only a header that a real signature came with, and whose
		 * window holds now, is kept. */
		if (p.hlen <= CACHED_HEADER_MAX && v->not_before <= now &&
		    now < v->not_after)
			jwt_cache_put(t->verdicts, v);
	}
	if ((ret = jwt_check_times(cl, now, skew, res)) != TSI_OK ||
	    (ret = jwt_check_aud(cl, aud, res)) != TSI_OK ||
	    (ret = jwt_check_string_claims(cl, res)) != TSI_OK ||
	    (ret = jwt_check_location(cl, &v->loc, res)) != TSI_OK)
		goto out;

	memcpy(res->node_fingerprint, v->node_fp,
	    sizeof(res->node_fingerprint));
	memcpy(res->kid, v->kid, sizeof(res->kid));
	memcpy(res->chain, v->chain, sizeof(res->chain));
	res->chain_len = v->chain_len;
	res->reason = TSI_JWT_OK;
	snprintf(res->detail, sizeof(res->detail), "ok");
	*claims = cl;
	cl = NULL;
	ret = TSI_OK;
out:
	if (ret != TSI_OK && ret != TSI_ERR_BAD_TOKEN &&
	    res->reason == TSI_JWT_OK)
		jwt_refuse(res, TSI_JWT_MALFORMED, "internal error: %s",
		    tsi_strerror(ret));
	jwt_verdict_unref(v);
	json_decref(hdr);
	json_decref(cl);
	return ret;
}
