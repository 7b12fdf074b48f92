/*
 * The verification corpus: every way a token can be wrong, each refused
 * with its own reason. Bad tokens and certificates are built here with
 * OpenSSL, never read from fixtures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/signer.h"
#include "tsi/x509.h"
#include "tests/support/pki.h"

#define NODE_SAN pki_loc_san()

struct fx {
	time_t now;
	EVP_PKEY *ca_key, *node_key, *sess_key;
	X509 *ca, *node, *sess;
	struct tsi_signer *node_signer;
	struct tsi_trust *trust;
};

static X509 *
mk(const char *cn, X509 *issuer, EVP_PKEY *ikey, EVP_PKEY *key, int ca,
    int pathlen, const char *ku, const char *san, long nb, long na)
{
	struct pki_spec sp = { .cn = cn,
		.issuer = issuer,
		.issuer_key = ikey,
		.key = key,
		.ca = ca,
		.pathlen = pathlen,
		.ku = ku,
		.san = san,
		.not_before = nb,
		.not_after = na };
	X509 *x = pki_cert(&sp);

	assert_non_null(x);
	return x;
}

static X509 *
mk_ca(EVP_PKEY *key)
{
	return mk("tsi test CA", NULL, NULL, key, 1, -1,
	    "critical,keyCertSign,cRLSign", NULL, -86400, 86400 * 30);
}

static X509 *
mk_node(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *cn, long nb,
    long na)
{
	return mk(cn, ca, ca_key, key, 1, 0,
	    "critical,digitalSignature,keyCertSign", NODE_SAN, nb, na);
}

static X509 *
mk_sess(X509 *node, EVP_PKEY *node_key, EVP_PKEY *key, long nb, long na)
{
	return mk("session", node, node_key, key, 0, -1,
	    "critical,digitalSignature", NULL, nb, na);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *pem;

	f->now = time(NULL);
	f->ca_key = pki_key();
	f->node_key = pki_key();
	f->sess_key = pki_key();
	f->ca = mk_ca(f->ca_key);
	f->node =
	    mk_node(f->ca, f->ca_key, f->node_key, "node-1", -3600, 86400);
	assert_int_equal(tsi_signer_new_soft(f->node_key, &f->node_signer),
	    TSI_OK);
	/* The good session certificate comes from the real issuing code. */
	assert_int_equal(tsi_x509_issue_session_cert(f->node_signer, f->node,
	                     f->sess_key, 3600, &f->sess),
	    TSI_OK);
	assert_int_equal(tsi_trust_new(&f->trust), TSI_OK);
	assert_int_equal(tsi_x509_to_pem(f->ca, &pem), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(f->trust, pem, strlen(pem)),
	    TSI_OK);
	free(pem);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tsi_trust_free(f->trust);
	tsi_signer_free(f->node_signer);
	X509_free(f->ca);
	X509_free(f->node);
	X509_free(f->sess);
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->node_key);
	EVP_PKEY_free(f->sess_key);
	free(f);
	return 0;
}

/* ---- token construction ---- */

static char *
kid_of(EVP_PKEY *k, char buf[44])
{
	assert_int_equal(tsi_key_thumbprint(k, buf), TSI_OK);
	return buf;
}

/* Header JSON text: alg, typ, kid and x5c of the NULL-terminated certs. */
static char *
hdr(const char *alg, const char *kid, ...)
{
	json_t *h = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
	json_t *arr = json_array();
	va_list ap;
	X509 *x;
	char *s;
	int n = 0;

	if (kid != NULL)
		json_object_set_new(h, "kid", json_string(kid));
	va_start(ap, kid);
	while ((x = va_arg(ap, X509 *)) != NULL) {
		unsigned char *der = NULL;
		char *b64;
		int len = i2d_X509(x, &der);

		assert_int_equal(tsi_b64_encode(der, (size_t)len, &b64),
		    TSI_OK);
		json_array_append_new(arr, json_string(b64));
		free(b64);
		OPENSSL_free(der);
		n++;
	}
	va_end(ap);
	if (n > 0)
		json_object_set_new(h, "x5c", arr);
	else
		json_decref(arr);
	s = json_dumps(h, JSON_COMPACT);
	json_decref(h);
	return s;
}

static json_t *
claims_base(time_t now)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:s, "
	                 "s:s}",
	    "iss", "tsi-issuer", "sub",
	    "spiffe://tsi.example/ns/default/sa/app", "aud", "tsi-vault", "iat",
	    (json_int_t)now, "nbf", (json_int_t)now, "exp",
	    (json_int_t)now + 300, "jti", "0123456789abcdef0123456789abcdef",
	    "cluster-name", "hipaaCluster", "region", "eu-de", "datacenter",
	    "dal05", "node", "node-1");
}

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

static void
es_sign(EVP_PKEY *k, const char *md, const void *msg, size_t len,
    unsigned char *raw, size_t half)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char der[160];
	size_t dlen = sizeof(der);
	const unsigned char *p = der;
	ECDSA_SIG *es;

	assert_int_equal(EVP_DigestSignInit_ex(c, NULL, md, NULL, NULL, k,
	                     NULL),
	    1);
	assert_int_equal(EVP_DigestSign(c, der, &dlen, msg, len), 1);
	es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)half);
	BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + half, (int)half);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(c);
}

/*
 * header_json.claims_json signed with key (ES256, raw r||s) when key is set,
 * else with the given signature bytes (sig may be NULL for none).
 * Takes and frees both JSON texts.
 */
static char *
build(char *h, char *c, EVP_PKEY *key, const unsigned char *sig, size_t siglen)
{
	struct tsi_buf *b = tsi_buf_new(1 << 20);
	char *h64, *c64, *s64 = NULL, *out;
	unsigned char raw[64];

	assert_int_equal(tsi_b64url_encode(h, strlen(h), &h64), TSI_OK);
	assert_int_equal(tsi_b64url_encode(c, strlen(c), &c64), TSI_OK);
	assert_int_equal(tsi_buf_putf(b, "%s.%s", h64, c64), TSI_OK);
	if (key != NULL) {
		es_sign(key, "SHA256", tsi_buf_ptr(b), tsi_buf_len(b), raw, 32);
		sig = raw;
		siglen = 64;
	}
	if (sig != NULL)
		assert_int_equal(tsi_b64url_encode(sig, siglen, &s64), TSI_OK);
	assert_int_equal(tsi_buf_putf(b, ".%s", s64 ? s64 : ""), TSI_OK);
	out = tsi_buf_take(b, NULL);
	tsi_buf_free(b);
	free(h);
	free(c);
	free(h64);
	free(c64);
	free(s64);
	return out;
}

/* A good token: session key signs, x5c = [session, node]. */
static char *
good_token(struct fx *f, json_t *claims)
{
	char kid[44];

	return build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	                 NULL),
	    dump(claims), f->sess_key, NULL, 0);
}

static void
expect_at(struct fx *f, char *tok, const char *aud, time_t now,
    enum tsi_jwt_reason want)
{
	struct tsi_verify_opts o = { .audience = aud, .now = now, .skew = 60 };
	struct tsi_verify_result res;
	json_t *claims = NULL;
	int r;

	r = tsi_jwt_verify(f->trust, tok, &o, &claims, &res);
	if (res.reason != want)
		print_error("want %s, got %s (%s)\n", tsi_jwt_reason_name(want),
		    tsi_jwt_reason_name(res.reason), res.detail);
	if (getenv("TSI_TEST_VERBOSE") != NULL)
		print_message("%-18s %s\n", tsi_jwt_reason_name(res.reason),
		    res.detail);
	assert_int_equal(res.reason, want);
	assert_true(res.detail[0] != '\0');
	assert_null(strchr(res.detail, '\n'));
	if (want == TSI_JWT_OK) {
		assert_int_equal(r, TSI_OK);
		assert_non_null(claims);
		json_decref(claims);
	} else {
		assert_int_equal(r, TSI_ERR_BAD_TOKEN);
		assert_null(claims);
	}
	free(tok);
}

static void
expect(struct fx *f, char *tok, enum tsi_jwt_reason want)
{
	expect_at(f, tok, NULL, f->now, want);
}

/* ---- accepted ---- */

static void
test_good_session_chain(void **state)
{
	struct fx *f = *state;
	struct tsi_verify_opts o = { .now = f->now, .skew = 60 };
	struct tsi_verify_result res;
	json_t *claims = NULL;
	char *tok = good_token(f, claims_base(f->now)), fp[65], kid[44];

	assert_int_equal(tsi_jwt_verify(f->trust, tok, &o, &claims, &res),
	    TSI_OK);
	assert_int_equal(res.reason, TSI_JWT_OK);
	assert_string_equal(json_string_value(
	                        json_object_get(claims, "region")),
	    "eu-de");
	assert_int_equal(tsi_x509_fingerprint(f->node, fp), TSI_OK);
	assert_string_equal(res.node_fingerprint, fp);
	assert_string_equal(res.kid, kid_of(f->sess_key, kid));
	json_decref(claims);
	free(tok);
}

static void
test_good_minted_by_library(void **state)
{
	struct fx *f = *state;
	STACK_OF(X509) *chain = sk_X509_new_null();
	struct tsi_signer *s = NULL;
	json_t *c = claims_base(f->now);
	char *tok = NULL;

	sk_X509_push(chain, f->sess);
	sk_X509_push(chain, f->node);
	assert_int_equal(tsi_signer_new_soft(f->sess_key, &s), TSI_OK);
	assert_int_equal(tsi_jwt_mint(s, chain, c, &tok), TSI_OK);
	expect(f, tok, TSI_JWT_OK);
	json_decref(c);
	tsi_signer_free(s);
	sk_X509_free(chain);
}

static void
test_good_node_only(void **state)
{
	struct fx *f = *state;
	char kid[44];

	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), f->node, NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_OK);
}

static void
test_aud_array(void **state)
{
	struct fx *f = *state;
	json_t *c = claims_base(f->now);

	json_object_set_new(c, "aud", json_pack("[s,s]", "other", "tsi-vault"));
	expect(f, good_token(f, c), TSI_JWT_OK);
	c = claims_base(f->now);
	json_object_set_new(c, "aud",
	    json_pack("[s,s]", "other", "tsi-vaultx"));
	expect(f, good_token(f, c), TSI_JWT_BAD_AUD);
	/* A custom audience. */
	c = claims_base(f->now);
	json_object_set_new(c, "aud", json_string("vault-eu"));
	expect_at(f, good_token(f, c), "vault-eu", f->now, TSI_JWT_OK);
}

static void
test_skew_tolerated(void **state)
{
	struct fx *f = *state;
	json_t *c = claims_base(f->now);

	/* Expired 30 s ago, and issued 30 s ahead: both inside 60 s skew. */
	json_object_set_new(c, "exp", json_integer(f->now - 30));
	json_object_set_new(c, "iat", json_integer(f->now - 330));
	json_object_set_new(c, "nbf", json_integer(f->now - 330));
	expect(f, good_token(f, c), TSI_JWT_OK);
	c = claims_base(f->now);
	json_object_set_new(c, "iat", json_integer(f->now + 30));
	json_object_set_new(c, "nbf", json_integer(f->now + 30));
	expect(f, good_token(f, c), TSI_JWT_OK);
}

/* ---- algorithm ---- */

static void
test_alg_none(void **state)
{
	struct fx *f = *state;
	char kid[44];

	expect(f,
	    build(hdr("none", kid_of(f->sess_key, kid), f->sess, f->node, NULL),
	        dump(claims_base(f->now)), NULL, NULL, 0),
	    TSI_JWT_BAD_ALG);
	/* Case variants are not ES256 either. */
	expect(f,
	    build(hdr("es256", kid_of(f->sess_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_ALG);
}

static void
test_alg_hs256_with_public_key(void **state)
{
	struct fx *f = *state;
	char kid[44], *h, *c, *h64, *c64, *pem, input[8192];
	unsigned char mac[32];
	unsigned int maclen = 0;
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *bm;
	int n;

	/* The classic confusion: HMAC keyed with the leaf's public key PEM. */
	PEM_write_bio_PUBKEY(bio, f->sess_key);
	BIO_get_mem_ptr(bio, &bm);
	pem = strndup(bm->data, bm->length);
	h = hdr("HS256", kid_of(f->sess_key, kid), f->sess, f->node, NULL);
	c = dump(claims_base(f->now));
	tsi_b64url_encode(h, strlen(h), &h64);
	tsi_b64url_encode(c, strlen(c), &c64);
	n = snprintf(input, sizeof(input), "%s.%s", h64, c64);
	HMAC(EVP_sha256(), pem, (int)strlen(pem), (unsigned char *)input,
	    (size_t)n, mac, &maclen);
	assert_int_equal(maclen, 32);
	free(h64);
	free(c64);
	expect(f, build(h, c, NULL, mac, maclen), TSI_JWT_BAD_ALG);
	free(pem);
	BIO_free(bio);
}

static void
test_alg_es384(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = pki_key_curve("P-384");
	X509 *leaf = mk_sess(f->node, f->node_key, k, -60, 600);
	char *h, *c, *h64, *c64, input[8192];
	unsigned char raw[96];
	int n;

	h = hdr("ES384", "kid", leaf, f->node, NULL);
	c = dump(claims_base(f->now));
	tsi_b64url_encode(h, strlen(h), &h64);
	tsi_b64url_encode(c, strlen(c), &c64);
	n = snprintf(input, sizeof(input), "%s.%s", h64, c64);
	es_sign(k, "SHA384", input, (size_t)n, raw, 48);
	free(h64);
	free(c64);
	expect(f, build(h, c, NULL, raw, sizeof(raw)), TSI_JWT_BAD_ALG);
	X509_free(leaf);
	EVP_PKEY_free(k);
}

static void
test_alg_rs256(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *leaf = mk_sess(f->node, f->node_key, k, -60, 600);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *h, *c, *h64, *c64, input[8192];
	unsigned char sig[256];
	size_t slen = sizeof(sig);
	int n;

	h = hdr("RS256", "kid", leaf, f->node, NULL);
	c = dump(claims_base(f->now));
	tsi_b64url_encode(h, strlen(h), &h64);
	tsi_b64url_encode(c, strlen(c), &c64);
	n = snprintf(input, sizeof(input), "%s.%s", h64, c64);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k),
	    1);
	assert_int_equal(EVP_DigestSign(md, sig, &slen, (unsigned char *)input,
	                     (size_t)n),
	    1);
	free(h64);
	free(c64);
	expect(f, build(h, c, NULL, sig, slen), TSI_JWT_BAD_ALG);
	EVP_MD_CTX_free(md);
	X509_free(leaf);
	EVP_PKEY_free(k);
}

/* ---- signature ---- */

static char *
with_sig_text(char *tok, const char *sig64)
{
	char *dot = strrchr(tok, '.'), *out;
	size_t n = (size_t)(dot - tok) + 1;

	out = malloc(n + strlen(sig64) + 1);
	memcpy(out, tok, n);
	memcpy(out + n, sig64, strlen(sig64) + 1);
	free(tok);
	return out;
}

static char *
with_sig(char *tok, const unsigned char *sig, size_t len)
{
	char *s64;

	assert_int_equal(tsi_b64url_encode(sig, len, &s64), TSI_OK);
	tok = with_sig_text(tok, s64);
	free(s64);
	return tok;
}

static void
test_sig_garbage_truncated_empty_zero(void **state)
{
	struct fx *f = *state;
	unsigned char z[64] = { 0 }, rnd[64], *raw;
	size_t rawlen;
	char *tok, *dot;

	expect(f,
	    with_sig_text(good_token(f, claims_base(f->now)),
	        "!!not*base64url"),
	    TSI_JWT_BAD_SIGNATURE);
	RAND_bytes(rnd, sizeof(rnd));
	rnd[0] &= 0x7f;
	rnd[32] &= 0x7f; /* in range, but not a signature */
	expect(f, with_sig(good_token(f, claims_base(f->now)), rnd, 64),
	    TSI_JWT_BAD_SIGNATURE);
	expect(f, with_sig_text(good_token(f, claims_base(f->now)), ""),
	    TSI_JWT_BAD_SIGNATURE);
	expect(f, with_sig(good_token(f, claims_base(f->now)), z, 64),
	    TSI_JWT_BAD_SIGNATURE);
	/* Truncated: the first 63 bytes of a real signature. */
	tok = good_token(f, claims_base(f->now));
	dot = strrchr(tok, '.');
	assert_int_equal(tsi_b64url_decode(dot + 1, strlen(dot + 1), &raw,
	                     &rawlen),
	    TSI_OK);
	expect(f, with_sig(tok, raw, 63), TSI_JWT_BAD_SIGNATURE);
	tsi_freezero(raw, rawlen);
	/* A DER signature is not accepted in place of r||s. */
	tok = good_token(f, claims_base(f->now));
	{
		unsigned char der[72] = { 0x30, 0x44, 0x02, 0x20 };
		memset(der + 4, 0x11, 32);
		der[36] = 0x02;
		der[37] = 0x20;
		memset(der + 38, 0x22, 32);
		expect(f, with_sig(tok, der, 70), TSI_JWT_BAD_SIGNATURE);
	}
}

static void
test_sig_r_s_not_below_order(void **state)
{
	struct fx *f = *state;
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	unsigned char n[32], sig[64], *raw;
	size_t rawlen;
	char *tok, *dot;

	BN_bn2binpad(EC_GROUP_get0_order(g), n, 32);
	tok = good_token(f, claims_base(f->now));
	dot = strrchr(tok, '.');
	assert_int_equal(tsi_b64url_decode(dot + 1, strlen(dot + 1), &raw,
	                     &rawlen),
	    TSI_OK);
	memcpy(sig, raw, 64);
	tsi_freezero(raw, rawlen);
	/* r = n */
	memcpy(sig, n, 32);
	expect(f, with_sig(good_token(f, claims_base(f->now)), sig, 64),
	    TSI_JWT_BAD_SIGNATURE);
	/* s = n, r kept */
	assert_int_equal(tsi_b64url_decode(dot + 1, strlen(dot + 1), &raw,
	                     &rawlen),
	    TSI_OK);
	memcpy(sig, raw, 64);
	tsi_freezero(raw, rawlen);
	memcpy(sig + 32, n, 32);
	expect(f, with_sig(tok, sig, 64), TSI_JWT_BAD_SIGNATURE);
	/* r = n - 1 is in range: refused by the signature check itself. */
	{
		struct tsi_verify_opts o = { .now = f->now, .skew = 60 };
		struct tsi_verify_result res;
		json_t *cl = NULL;
		char *t2;

		memcpy(sig, n, 32);
		sig[31] -= 1;
		memset(sig + 32, 0, 32);
		sig[63] = 1;
		t2 = with_sig(good_token(f, claims_base(f->now)), sig, 64);
		assert_int_equal(tsi_jwt_verify(f->trust, t2, &o, &cl, &res),
		    TSI_ERR_BAD_TOKEN);
		assert_int_equal(res.reason, TSI_JWT_BAD_SIGNATURE);
		assert_non_null(strstr(res.detail, "does not verify"));
		free(t2);
		/* and r = n is refused by the range check */
		memcpy(sig, n, 32);
		t2 = with_sig(good_token(f, claims_base(f->now)), sig, 64);
		assert_int_equal(tsi_jwt_verify(f->trust, t2, &o, &cl, &res),
		    TSI_ERR_BAD_TOKEN);
		assert_non_null(strstr(res.detail, "not in [1, n-1]"));
		free(t2);
	}
	/* r = 2^256 - 1 */
	memset(sig, 0xff, 32);
	expect(f, with_sig(good_token(f, claims_base(f->now)), sig, 64),
	    TSI_JWT_BAD_SIGNATURE);
	EC_GROUP_free(g);
}

static void
test_sig_by_other_key(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *other = pki_key();
	char kid[44];

	/* Header names the leaf; a different key signed. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), other, NULL, 0),
	    TSI_JWT_BAD_SIGNATURE);
	/* Node key signing while x5c[0] is the session cert. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_BAD_SIGNATURE);
	EVP_PKEY_free(other);
}

static void
test_tampered_claims(void **state)
{
	struct fx *f = *state;
	char *tok = good_token(f, claims_base(f->now));
	char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	json_t *c = claims_base(f->now);
	char *cs, *c64, *out;
	size_t n;

	json_object_set_new(c, "sub",
	    json_string("spiffe://tsi.example/ns/kube-system/sa/admin"));
	cs = dump(c);
	tsi_b64url_encode(cs, strlen(cs), &c64);
	n = (size_t)(d1 - tok) + 1;
	out = malloc(n + strlen(c64) + strlen(d2) + 1);
	memcpy(out, tok, n);
	memcpy(out + n, c64, strlen(c64));
	memcpy(out + n + strlen(c64), d2, strlen(d2) + 1);
	expect(f, out, TSI_JWT_BAD_SIGNATURE);
	free(cs);
	free(c64);
	free(tok);
}

static void
test_bad_kid(void **state)
{
	struct fx *f = *state;
	char kid[44];

	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_KID);
	expect(f,
	    build(hdr("ES256", NULL, f->sess, f->node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_KID);
}

/* ---- times and audience ---- */

static void
test_time_claims(void **state)
{
	struct fx *f = *state;
	json_t *c;

	c = claims_base(f->now);
	json_object_set_new(c, "iat", json_integer(f->now - 500));
	json_object_set_new(c, "nbf", json_integer(f->now - 500));
	json_object_set_new(c, "exp", json_integer(f->now - 200));
	expect(f, good_token(f, c), TSI_JWT_EXPIRED);

	c = claims_base(f->now);
	json_object_set_new(c, "nbf", json_integer(f->now + 200));
	expect(f, good_token(f, c), TSI_JWT_NOT_YET_VALID);

	c = claims_base(f->now);
	json_object_set_new(c, "iat", json_integer(f->now + 200));
	json_object_set_new(c, "exp", json_integer(f->now + 400));
	json_object_del(c, "nbf");
	expect(f, good_token(f, c), TSI_JWT_ISSUED_IN_FUTURE);

	c = claims_base(f->now);
	json_object_del(c, "exp");
	expect(f, good_token(f, c), TSI_JWT_NO_EXP);

	c = claims_base(f->now);
	json_object_set_new(c, "exp", json_integer(f->now + 3601));
	expect(f, good_token(f, c), TSI_JWT_LIFETIME_TOO_LONG);

	c = claims_base(f->now);
	json_object_set_new(c, "exp", json_string("tomorrow"));
	expect(f, good_token(f, c), TSI_JWT_BAD_CLAIMS);

	/* The same good token is expired when verified later. */
	expect_at(f, good_token(f, claims_base(f->now)), NULL, f->now + 361,
	    TSI_JWT_EXPIRED);
}

/*
 * The skew boundaries, to the second (60 s, as the contract says). exp is
 * exclusive: a token is good while now < exp + skew. nbf and iat are
 * inclusive: good while nbf <= now + skew and iat <= now + skew.
 */
static void
test_skew_boundaries(void **state)
{
	struct fx *f = *state;
	json_t *c;

	/* exp: one second inside the skew, exactly at it, one beyond. */
	c = claims_base(f->now);
	json_object_set_new(c, "iat", json_integer(f->now - 359));
	json_object_set_new(c, "nbf", json_integer(f->now - 359));
	json_object_set_new(c, "exp", json_integer(f->now - 59));
	expect(f, good_token(f, c), TSI_JWT_OK);
	c = claims_base(f->now);
	json_object_set_new(c, "iat", json_integer(f->now - 360));
	json_object_set_new(c, "nbf", json_integer(f->now - 360));
	json_object_set_new(c, "exp", json_integer(f->now - 60));
	expect(f, good_token(f, c), TSI_JWT_EXPIRED);
	c = claims_base(f->now);
	json_object_set_new(c, "iat", json_integer(f->now - 361));
	json_object_set_new(c, "nbf", json_integer(f->now - 361));
	json_object_set_new(c, "exp", json_integer(f->now - 61));
	expect(f, good_token(f, c), TSI_JWT_EXPIRED);

	/* nbf: exactly at the skew is good, one second beyond is not. */
	c = claims_base(f->now);
	json_object_set_new(c, "nbf", json_integer(f->now + 60));
	expect(f, good_token(f, c), TSI_JWT_OK);
	c = claims_base(f->now);
	json_object_set_new(c, "nbf", json_integer(f->now + 61));
	expect(f, good_token(f, c), TSI_JWT_NOT_YET_VALID);

	/* iat (no nbf): the same boundary. */
	c = claims_base(f->now);
	json_object_del(c, "nbf");
	json_object_set_new(c, "iat", json_integer(f->now + 60));
	json_object_set_new(c, "exp", json_integer(f->now + 360));
	expect(f, good_token(f, c), TSI_JWT_OK);
	c = claims_base(f->now);
	json_object_del(c, "nbf");
	json_object_set_new(c, "iat", json_integer(f->now + 61));
	json_object_set_new(c, "exp", json_integer(f->now + 361));
	expect(f, good_token(f, c), TSI_JWT_ISSUED_IN_FUTURE);

	/* Lifetime: 3600 s is the most, 3601 s is refused. */
	c = claims_base(f->now);
	json_object_set_new(c, "exp", json_integer(f->now + 3600));
	expect(f, good_token(f, c), TSI_JWT_OK);
	c = claims_base(f->now);
	json_object_set_new(c, "exp", json_integer(f->now + 3601));
	expect(f, good_token(f, c), TSI_JWT_LIFETIME_TOO_LONG);

	/* The same token (exp = iat + 300) verified at the last good second
	 * and the first refused one. */
	expect_at(f, good_token(f, claims_base(f->now)), NULL, f->now + 359,
	    TSI_JWT_OK);
	expect_at(f, good_token(f, claims_base(f->now)), NULL, f->now + 360,
	    TSI_JWT_EXPIRED);
}

static void
test_audience(void **state)
{
	struct fx *f = *state;
	json_t *c;

	c = claims_base(f->now);
	json_object_del(c, "aud");
	expect(f, good_token(f, c), TSI_JWT_NO_AUD);
	c = claims_base(f->now);
	json_object_set_new(c, "aud", json_string("someone-else"));
	expect(f, good_token(f, c), TSI_JWT_BAD_AUD);
	c = claims_base(f->now);
	json_object_set_new(c, "aud", json_integer(1));
	expect(f, good_token(f, c), TSI_JWT_BAD_AUD);
	expect_at(f, good_token(f, claims_base(f->now)), "vault-eu", f->now,
	    TSI_JWT_BAD_AUD);
}

/* ---- x5c and chain ---- */

static void
test_no_x5c(void **state)
{
	struct fx *f = *state;
	char kid[44];

	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_NO_X5C);
	expect(f,
	    build(strdup("{\"alg\":\"ES256\",\"x5c\":[\"@@@@\"]}"),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_X5C);
	expect(f,
	    build(strdup("{\"alg\":\"ES256\",\"x5c\":[\"AAAA\"]}"),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_X5C);
	expect(f,
	    build(strdup("{\"alg\":\"ES256\",\"x5c\":\"AAAA\"}"),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_X5C);
}

static void
test_unknown_ca_same_name(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *ek = pki_key(), *enk = pki_key(), *esk = pki_key();
	X509 *eca = mk_ca(ek);
	X509 *enode = mk_node(eca, ek, enk, "node-1", -3600, 86400);
	X509 *esess = mk_sess(enode, enk, esk, -60, 600);
	char kid[44];

	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(eca),
	                     X509_get_subject_name(f->ca)),
	    0);
	expect(f,
	    build(hdr("ES256", kid_of(esk, kid), esess, enode, NULL),
	        dump(claims_base(f->now)), esk, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	/* Bringing the impostor root along does not help. */
	expect(f,
	    build(hdr("ES256", kid_of(esk, kid), esess, enode, eca, NULL),
	        dump(claims_base(f->now)), esk, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	/* Nor does the node certificate alone. */
	expect(f,
	    build(hdr("ES256", kid_of(enk, kid), enode, NULL),
	        dump(claims_base(f->now)), enk, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	X509_free(eca);
	X509_free(enode);
	X509_free(esess);
	EVP_PKEY_free(ek);
	EVP_PKEY_free(enk);
	EVP_PKEY_free(esk);
}

/*
 * An x5c longer than the path OpenSSL verified: the trusted root sent
 * along, then one more CA. The verified path is [session, node, CA], so
 * x5c[3] has no counterpart; it must be refused by the length check, never
 * compared with a certificate that is not there (a NULL X509: a crash).
 */
static void
test_x5c_longer_than_path(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *ok = pki_key();
	X509 *other = mk_ca(ok);
	struct tsi_verify_opts o = { .now = f->now, .skew = 60 };
	struct tsi_verify_result res;
	json_t *claims = NULL;
	char kid[44], *tok;

	/* The root sent along is fine: it is the end of the verified path. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              f->ca, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_OK);
	/* One certificate more, whatever it is. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              f->ca, f->ca, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	tok = build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	                f->ca, other, NULL),
	    dump(claims_base(f->now)), f->sess_key, NULL, 0);
	assert_int_equal(tsi_jwt_verify(f->trust, tok, &o, &claims, &res),
	    TSI_ERR_BAD_TOKEN);
	assert_int_equal(res.reason, TSI_JWT_UNTRUSTED_CHAIN);
	/* Refused by the length check itself, not by a later comparison. */
	assert_non_null(strstr(res.detail, "outside the verified chain"));
	assert_null(claims);
	free(tok);
	/* Node-signed, x5c = [node, CA, CA]. */
	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), f->node, f->ca, f->ca,
	              NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	X509_free(other);
	EVP_PKEY_free(ok);
}

/*
 * The node certificate is x5c[0] or x5c[1], nowhere deeper. Here a node
 * certificate without a path length limit certifies an intermediate that
 * certifies the signing key: the chain verifies, but the location sits in
 * x5c[2], which a node could otherwise delegate to any key it likes.
 */
static void
test_node_deeper_than_x5c1(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *mk_ = pki_key(), *lk = pki_key();
	X509 *node = mk("node-1", f->ca, f->ca_key, f->node_key, 1, -1,
	    "critical,digitalSignature,keyCertSign", NODE_SAN, -3600, 86400);
	X509 *mid = mk("intermediate", node, f->node_key, mk_, 1, 0,
	    "critical,digitalSignature,keyCertSign", NULL, -60, 600);
	X509 *leaf = mk_sess(mid, mk_, lk, -60, 600);
	X509 *sess = mk_sess(node, f->node_key, lk, -60, 600);
	char kid[44];

	/* Control: the same node certificate at x5c[1] is accepted. */
	expect(f,
	    build(hdr("ES256", kid_of(lk, kid), sess, node, NULL),
	        dump(claims_base(f->now)), lk, NULL, 0),
	    TSI_JWT_OK);
	expect(f,
	    build(hdr("ES256", kid_of(lk, kid), leaf, mid, node, NULL),
	        dump(claims_base(f->now)), lk, NULL, 0),
	    TSI_JWT_BAD_X5C);
	/* The intermediate signing itself, node at x5c[1]: accepted shape. */
	expect(f,
	    build(hdr("ES256", kid_of(mk_, kid), mid, node, NULL),
	        dump(claims_base(f->now)), mk_, NULL, 0),
	    TSI_JWT_OK);
	X509_free(node);
	X509_free(mid);
	X509_free(leaf);
	X509_free(sess);
	EVP_PKEY_free(mk_);
	EVP_PKEY_free(lk);
}

static void
test_expired_node_cert(void **state)
{
	struct fx *f = *state;
	X509 *node =
	    mk_node(f->ca, f->ca_key, f->node_key, "node-1", -7200, -60);
	X509 *sess = mk_sess(node, f->node_key, f->sess_key, -60, 600);
	char kid[44];

	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_CERT_EXPIRED);
	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), node, NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_CERT_EXPIRED);
	X509_free(node);
	X509_free(sess);
}

static void
test_node_without_ca_rights(void **state)
{
	struct fx *f = *state;
	X509 *node = mk("node-1", f->ca, f->ca_key, f->node_key, 0, -1,
	    "critical,digitalSignature", NODE_SAN, -3600, 86400);
	X509 *node2 = mk("node-1", f->ca, f->ca_key, f->node_key, 1, 0,
	    "critical,digitalSignature", NODE_SAN, -3600, 86400);
	X509 *sess = mk_sess(node, f->node_key, f->sess_key, -60, 600);
	X509 *sub = NULL;
	EVP_PKEY *k3 = pki_key();
	char kid[44];

	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_CERT_NOT_CA);
	/* CA:TRUE but keyUsage without keyCertSign. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node2, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_CERT_NOT_CA);
	/* A session certificate certifying a further key. */
	sub = mk_sess(f->sess, f->sess_key, k3, -60, 600);
	expect(f,
	    build(hdr("ES256", kid_of(k3, kid), sub, f->sess, f->node, NULL),
	        dump(claims_base(f->now)), k3, NULL, 0),
	    TSI_JWT_CERT_NOT_CA);
	X509_free(node);
	X509_free(node2);
	X509_free(sess);
	X509_free(sub);
	EVP_PKEY_free(k3);
}

static void
test_expired_session_cert(void **state)
{
	struct fx *f = *state;
	X509 *sess = mk_sess(f->node, f->node_key, f->sess_key, -700, -10);
	char kid[44];

	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, f->node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_CERT_EXPIRED);
	X509_free(sess);
}

static void
test_session_cert_from_other_node(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *bk = pki_key();
	X509 *nodeb = mk_node(f->ca, f->ca_key, bk, "node-2", -3600, 86400);
	X509 *nodeb_same =
	    mk_node(f->ca, f->ca_key, bk, "node-1", -3600, 86400);
	X509 *sb = mk_sess(nodeb, bk, f->sess_key, -60, 600);
	X509 *sb2 = mk_sess(nodeb_same, bk, f->sess_key, -60, 600);
	char kid[44];

	/* Signed by node-2, presented with node-1's certificate. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sb, f->node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	/* Same subject name, different node key. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sb2, f->node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	X509_free(nodeb);
	X509_free(nodeb_same);
	X509_free(sb);
	X509_free(sb2);
	EVP_PKEY_free(bk);
}

/* Only the CA binds a location: a session certificate (made by the node)
 * that names one is refused, even the node's own. */
static void
test_session_cert_claiming_location(void **state)
{
	struct fx *f = *state;
	X509 *sess = mk("session", f->node, f->node_key, f->sess_key, 0, -1,
	    "critical,digitalSignature",
	    "URI:tsi:cluster-name:hipaaCluster,URI:tsi:region:us-east,"
	    "URI:tsi:datacenter:dal05,URI:tsi:node:node-1",
	    -60, 600);
	X509 *nosan = mk("no location", f->ca, f->ca_key, f->node_key, 1, 0,
	    "critical,digitalSignature,keyCertSign", NULL, -60, 600);
	X509 *s2 = mk_sess(nosan, f->node_key, f->sess_key, -60, 600);
	json_t *c = claims_base(f->now);
	char kid[44];

	json_object_set_new(c, "region", json_string("us-east"));
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, f->node, NULL),
	        dump(c), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_X5C);
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, f->node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_X5C);
	/* A chain without any location at all. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), s2, nosan, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_X5C);
	X509_free(sess);
	X509_free(nosan);
	X509_free(s2);
}

static void
test_revoked(void **state)
{
	struct fx *f = *state;
	struct tsi_trust *saved = f->trust;
	char fp[65], colons[100], *pem, *serial;
	BIGNUM *bn;
	int i, n = 0;

	/* By node certificate fingerprint, in the colon form. */
	assert_int_equal(tsi_trust_new(&f->trust), TSI_OK);
	tsi_x509_to_pem(f->ca, &pem);
	assert_int_equal(tsi_trust_add_ca_pem(f->trust, pem, strlen(pem)),
	    TSI_OK);
	assert_int_equal(tsi_x509_fingerprint(f->node, fp), TSI_OK);
	for (i = 0; i < 64; i += 2)
		n += snprintf(colons + n, sizeof(colons) - (size_t)n, "%s%c%c",
		    i ? ":" : "", fp[i] - 32 * (fp[i] >= 'a'), fp[i + 1]);
	assert_int_equal(tsi_trust_revoke(f->trust, colons), TSI_OK);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_CERT_REVOKED);
	tsi_trust_free(f->trust);

	/* By session certificate serial, as `openssl x509 -serial` prints it. */
	assert_int_equal(tsi_trust_new(&f->trust), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(f->trust, pem, strlen(pem)),
	    TSI_OK);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(f->sess), NULL);
	serial = BN_bn2hex(bn);
	snprintf(colons, sizeof(colons), "serial=%s", serial);
	assert_int_equal(tsi_trust_revoke(f->trust, colons), TSI_OK);
	assert_int_equal(tsi_trust_revoke(f->trust, "not hex"), TSI_ERR_PARSE);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_CERT_REVOKED);
	/* The node-only token does not involve the session cert: accepted. */
	{
		char kid[44];
		expect(f,
		    build(hdr("ES256", kid_of(f->node_key, kid), f->node, NULL),
		        dump(claims_base(f->now)), f->node_key, NULL, 0),
		    TSI_JWT_OK);
	}
	tsi_trust_free(f->trust);
	OPENSSL_free(serial);
	BN_free(bn);
	free(pem);
	f->trust = saved;
}

/* ---- location ---- */

static void
test_location_mismatch(void **state)
{
	struct fx *f = *state;
	json_t *c;

	c = claims_base(f->now);
	json_object_set_new(c, "region", json_string("us-east"));
	expect(f, good_token(f, c), TSI_JWT_LOCATION_MISMATCH);
	c = claims_base(f->now);
	json_object_set_new(c, "node", json_string("node-2"));
	expect(f, good_token(f, c), TSI_JWT_LOCATION_MISMATCH);
	c = claims_base(f->now);
	json_object_del(c, "datacenter");
	expect(f, good_token(f, c), TSI_JWT_LOCATION_MISMATCH);
	c = claims_base(f->now);
	json_object_set_new(c, "cluster-name",
	    json_pack("[s]", "hipaaCluster"));
	expect(f, good_token(f, c), TSI_JWT_LOCATION_MISMATCH);
}

/*
 * tsi:node is optional in a node certificate. When the certificate binds
 * none, a "node" claim is refused: the issuer could otherwise name any
 * node it liked, and policies matching on node would believe it.
 */
static void
test_location_claim_unbound(void **state)
{
	struct fx *f = *state;
	X509 *node = mk("dc-node", f->ca, f->ca_key, f->node_key, 1, 0,
	    "critical,digitalSignature,keyCertSign",
	    "URI:tsi:cluster-name:hipaaCluster,URI:tsi:region:eu-de,"
	    "URI:tsi:datacenter:dal05",
	    -3600, 86400);
	X509 *sess = mk_sess(node, f->node_key, f->sess_key, -60, 600);
	json_t *c;
	char kid[44];

	c = claims_base(f->now);
	json_object_del(c, "node");
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node, NULL),
	        dump(c), f->sess_key, NULL, 0),
	    TSI_JWT_OK);
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_LOCATION_MISMATCH);
	c = claims_base(f->now);
	json_object_set_new(c, "node", json_string(""));
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node, NULL),
	        dump(c), f->sess_key, NULL, 0),
	    TSI_JWT_LOCATION_MISMATCH);
	c = claims_base(f->now);
	json_object_set_new(c, "node", json_null());
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), sess, node, NULL),
	        dump(c), f->sess_key, NULL, 0),
	    TSI_JWT_LOCATION_MISMATCH);
	/* Node-signed, same certificate. */
	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), node, NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_LOCATION_MISMATCH);
	X509_free(node);
	X509_free(sess);
}

/* ---- structure ---- */

static void
test_duplicate_keys(void **state)
{
	struct fx *f = *state;
	char kid[44], *c, *dup;
	size_t n;

	c = dump(claims_base(f->now));
	/* Append a second "aud" member inside the object. */
	n = strlen(c);
	dup = malloc(n + 32);
	memcpy(dup, c, n - 1);
	memcpy(dup + n - 1, ",\"aud\":\"evil\"}", 15);
	free(c);
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              NULL),
	        dup, f->sess_key, NULL, 0),
	    TSI_JWT_DUPLICATE_KEY);
	/* And in the header. */
	expect(f,
	    build(strdup("{\"alg\":\"ES256\",\"alg\":\"none\"}"),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_DUPLICATE_KEY);
}

static void
test_too_large(void **state)
{
	struct fx *f = *state;
	json_t *c = claims_base(f->now);
	char *pad = malloc(20 * 1024 + 1), *tok;

	memset(pad, 'a', 20 * 1024);
	pad[20 * 1024] = '\0';
	json_object_set_new(c, "pad", json_string(pad));
	tok = good_token(f, c);
	assert_true(strlen(tok) > 20 * 1024);
	expect(f, tok, TSI_JWT_TOO_LARGE);
	free(pad);
}

static void
test_malformed(void **state)
{
	struct fx *f = *state;

	expect(f, strdup(""), TSI_JWT_MALFORMED);
	expect(f, strdup("abc"), TSI_JWT_MALFORMED);
	expect(f, strdup("a.b"), TSI_JWT_MALFORMED);
	expect(f, strdup(".."), TSI_JWT_MALFORMED);
	expect(f, strdup("a.b.c.d"), TSI_JWT_MALFORMED);
	/* Padding is not base64url. */
	expect(f, strdup("eyJhbGciOiJFUzI1NiJ9=.e30.AAAA"), TSI_JWT_MALFORMED);
	/* Valid base64url of something that is not a JSON object. */
	expect(f,
	    build(strdup("[1,2]"), dump(claims_base(f->now)), f->sess_key, NULL,
	        0),
	    TSI_JWT_MALFORMED);
	expect(f,
	    build(strdup("{\"alg\":\"ES256\""), dump(claims_base(f->now)),
	        f->sess_key, NULL, 0),
	    TSI_JWT_MALFORMED);
}

/* More distinct certificates than the parse cache holds, then the first
 * again: the cache never changes an answer. */
static void
test_many_session_certs(void **state)
{
	struct fx *f = *state;
	enum {
		N = 70
	};
	EVP_PKEY *keys[N];
	X509 *certs[N];
	char kid[44];
	int i;

	for (i = 0; i < N; i++) {
		keys[i] = pki_key();
		assert_int_equal(tsi_x509_issue_session_cert(f->node_signer,
		                     f->node, keys[i], 600, &certs[i]),
		    TSI_OK);
		f->now = time(NULL); /* a slow runner must not fall behind */
		expect(f,
		    build(hdr("ES256", kid_of(keys[i], kid), certs[i], f->node,
		              NULL),
		        dump(claims_base(f->now)), keys[i], NULL, 0),
		    TSI_JWT_OK);
	}
	expect(f,
	    build(hdr("ES256", kid_of(keys[0], kid), certs[0], f->node, NULL),
	        dump(claims_base(f->now)), keys[0], NULL, 0),
	    TSI_JWT_OK);
	/* A cached certificate presented with another key's signature. */
	expect(f,
	    build(hdr("ES256", kid_of(keys[1], kid), certs[1], f->node, NULL),
	        dump(claims_base(f->now)), keys[2], NULL, 0),
	    TSI_JWT_BAD_SIGNATURE);
	/* Cached, then verified at a time it is expired. */
	expect_at(f,
	    build(hdr("ES256", kid_of(keys[3], kid), certs[3], f->node, NULL),
	        dump(claims_base(f->now)), keys[3], NULL, 0),
	    NULL, f->now + 700, TSI_JWT_CERT_EXPIRED);
	for (i = 0; i < N; i++) {
		X509_free(certs[i]);
		EVP_PKEY_free(keys[i]);
	}
}

struct worker {
	struct fx *f;
	char *tok[4];
	int ok;
};

static void *
verify_worker(void *arg)
{
	struct worker *w = arg;
	struct tsi_verify_opts o = { .now = w->f->now, .skew = 60 };
	struct tsi_verify_result res;
	json_t *cl;
	int i;

	for (i = 0; i < 40; i++) {
		cl = NULL;
		if (tsi_jwt_verify(w->f->trust, w->tok[i % 4], &o, &cl, &res) ==
		    TSI_OK)
			w->ok++;
		json_decref(cl);
	}
	return NULL;
}

/* One trust shared by threads, as tsi-vault does. */
static void
test_concurrent_verification(void **state)
{
	struct fx *f = *state;
	struct worker w[4];
	pthread_t th[4];
	EVP_PKEY *keys[4];
	X509 *certs[4];
	char kid[44];
	int i, j;

	for (j = 0; j < 4; j++) {
		keys[j] = pki_key();
		assert_int_equal(tsi_x509_issue_session_cert(f->node_signer,
		                     f->node, keys[j], 600, &certs[j]),
		    TSI_OK);
	}
	/* The session certificates start at the real clock: under a slow
	 * runner (valgrind) the fixture's time can be minutes behind it. */
	f->now = time(NULL);
	for (i = 0; i < 4; i++) {
		w[i].f = f;
		w[i].ok = 0;
		for (j = 0; j < 4; j++)
			w[i].tok[j] =
			    build(hdr("ES256", kid_of(keys[(i + j) % 4], kid),
			              certs[(i + j) % 4], f->node, NULL),
			        dump(claims_base(f->now)), keys[(i + j) % 4],
			        NULL, 0);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, verify_worker,
		                     &w[i]),
		    0);
	/* Join every thread before any assertion can leave this function:
	 * a failing check must not free what running threads still read. */
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 4; j++)
			free(w[i].tok[j]);
		assert_int_equal(w[i].ok, 40);
	}
	for (j = 0; j < 4; j++) {
		X509_free(certs[j]);
		EVP_PKEY_free(keys[j]);
	}
}

/* ---- the chain verdict cache ---- */

static struct tsi_trust_cache_stats
stats(const struct tsi_trust *t)
{
	struct tsi_trust_cache_stats st;

	tsi_trust_cache_stats(t, &st);
	return st;
}

static char *
token_for(X509 *leaf, X509 *node, EVP_PKEY *key, json_t *claims)
{
	char kid[44];

	return build(hdr("ES256", kid_of(key, kid), leaf, node, NULL),
	    dump(claims), key, NULL, 0);
}

/* A cached chain is used only inside the validity of every certificate of
 * its path: at the earliest notAfter (here the node's) it is re-verified
 * and refused, and before the latest notBefore likewise. */
static void
test_cache_cert_expires(void **state)
{
	struct fx *f = *state;
	time_t t0 = time(NULL); /* every validity below is relative to it */
	EVP_PKEY *k = pki_key();
	struct pki_spec nsp = { .cn = "node-1",
		.issuer = f->ca,
		.issuer_key = f->ca_key,
		.key = f->node_key,
		.ca = 1,
		.pathlen = 0,
		.ku = "critical,digitalSignature,keyCertSign",
		.san = NODE_SAN,
		.not_before = -3600,
		.not_after = 200,
		.base = t0 };
	X509 *node = pki_cert(&nsp);
	struct pki_spec ssp = { .cn = "session",
		.issuer = node,
		.issuer_key = f->node_key,
		.key = k,
		.ca = 0,
		.pathlen = -1,
		.ku = "critical,digitalSignature",
		.not_before = -60,
		.not_after = 3000,
		.base = t0 };
	X509 *sess = pki_cert(&ssp);
	X509 *s2;
	unsigned long long h0;

	assert_non_null(node);
	assert_non_null(sess);
	ssp.issuer = f->node;
	ssp.not_after = 120;
	s2 = pki_cert(&ssp);
	assert_non_null(s2);

	expect_at(f, token_for(sess, node, k, claims_base(t0)), NULL, t0,
	    TSI_JWT_OK);
	h0 = stats(f->trust).hits;
	expect_at(f, token_for(sess, node, k, claims_base(t0 + 199)), NULL,
	    t0 + 199, TSI_JWT_OK);
	assert_int_equal(stats(f->trust).hits, h0 + 1);
	/* The node certificate's notAfter ends the verdict, not the session's. */
	expect_at(f, token_for(sess, node, k, claims_base(t0 + 200)), NULL,
	    t0 + 200, TSI_JWT_CERT_EXPIRED);
	expect_at(f, token_for(sess, node, k, claims_base(t0 + 900)), NULL,
	    t0 + 900, TSI_JWT_CERT_EXPIRED);
	/* Before the session certificate's notBefore. */
	expect_at(f, token_for(sess, node, k, claims_base(t0 - 61)), NULL,
	    t0 - 61, TSI_JWT_CERT_EXPIRED);
	assert_int_equal(stats(f->trust).hits, h0 + 1);
	/* Still good, and still cached, inside the window. */
	expect_at(f, token_for(sess, node, k, claims_base(t0 + 10)), NULL,
	    t0 + 10, TSI_JWT_OK);
	assert_int_equal(stats(f->trust).hits, h0 + 2);
	/* A session certificate expiring before its node. */
	expect_at(f, token_for(s2, f->node, k, claims_base(t0)), NULL, t0,
	    TSI_JWT_OK);
	expect_at(f, token_for(s2, f->node, k, claims_base(t0 + 119)), NULL,
	    t0 + 119, TSI_JWT_OK);
	expect_at(f, token_for(s2, f->node, k, claims_base(t0 + 120)), NULL,
	    t0 + 120, TSI_JWT_CERT_EXPIRED);
	X509_free(node);
	X509_free(sess);
	X509_free(s2);
	EVP_PKEY_free(k);
}

/* Revocations and new CAs change the trust generation: a verdict made
 * before is never used again. The vault's SIGHUP reload builds a new trust
 * (an empty cache); tests/integration/vault test_reload covers that end to
 * end with a warm cache. Here both shapes, at the library level. */
/* The verified path a token came through (res.chain: session, node, CA),
 * the same from a cached verdict, and tsi_trust_chain_check against a
 * later trust: a revoked certificate or a CA no longer trusted fails it. */
static void
test_chain_then_trust_change(void **state)
{
	struct fx *f = *state;
	struct tsi_verify_opts o = { .now = f->now, .skew = 60 };
	struct tsi_verify_result res, res2;
	struct tsi_trust *t = NULL;
	json_t *claims = NULL;
	unsigned char h[32];
	unsigned int hl = sizeof(h);
	char fp[65], *pem = NULL, *tok, detail[256];
	EVP_PKEY *k2 = pki_key();
	X509 *ca2;
	int i;

	tok = good_token(f, claims_base(f->now));
	assert_int_equal(tsi_jwt_verify(f->trust, tok, &o, &claims, &res),
	    TSI_OK);
	json_decref(claims);
	claims = NULL;
	assert_int_equal(res.chain_len, 3);
	assert_int_equal(X509_digest(f->sess, EVP_sha256(), h, &hl), 1);
	assert_memory_equal(res.chain[0].sha256, h, 32);
	assert_int_equal(X509_digest(f->node, EVP_sha256(), h, &hl), 1);
	assert_memory_equal(res.chain[1].sha256, h, 32);
	assert_int_equal(X509_digest(f->ca, EVP_sha256(), h, &hl), 1);
	assert_memory_equal(res.chain[2].sha256, h, 32);
	assert_int_equal(res.chain[0].trusted, 0);
	assert_int_equal(res.chain[1].trusted, 0);
	assert_int_equal(res.chain[2].trusted, 1);
	for (i = 0; i < 3; i++)
		assert_true(res.chain[i].serial[0] != '\0');
	/* A second verification (the cached verdict) gives the same path. */
	assert_int_equal(tsi_jwt_verify(f->trust, tok, &o, &claims, &res2),
	    TSI_OK);
	json_decref(claims);
	assert_int_equal(res2.chain_len, 3);
	assert_memory_equal(res2.chain, res.chain, sizeof(res.chain));
	assert_int_equal(tsi_trust_chain_check(f->trust, res.chain, 3, detail,
	                     sizeof(detail)),
	    TSI_OK);

	/* A new trust revoking the node certificate. */
	assert_int_equal(tsi_x509_to_pem(f->ca, &pem), TSI_OK);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	assert_int_equal(tsi_trust_chain_check(t, res.chain, 3, NULL, 0),
	    TSI_OK);
	assert_int_equal(tsi_x509_fingerprint(f->node, fp), TSI_OK);
	assert_int_equal(tsi_trust_revoke(t, fp), TSI_OK);
	assert_int_equal(tsi_trust_chain_check(t, res.chain, 3, detail,
	                     sizeof(detail)),
	    TSI_ERR_BAD_TOKEN);
	assert_non_null(strstr(detail, "depth 1 is revoked"));
	tsi_trust_free(t);

	/* By the session certificate's serial. */
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	assert_int_equal(tsi_trust_revoke(t, res.chain[0].serial), TSI_OK);
	assert_int_equal(tsi_trust_chain_check(t, res.chain, 3, NULL, 0),
	    TSI_ERR_BAD_TOKEN);
	tsi_trust_free(t);

	/* Another CA only: the token's CA is no longer trusted. */
	ca2 = mk("other CA", NULL, NULL, k2, 1, -1, "keyCertSign", NULL, -60,
	    86400);
	free(pem);
	assert_int_equal(tsi_x509_to_pem(ca2, &pem), TSI_OK);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	assert_int_equal(tsi_trust_chain_check(t, res.chain, 3, detail,
	                     sizeof(detail)),
	    TSI_ERR_BAD_TOKEN);
	assert_non_null(strstr(detail, "no longer trusted"));
	tsi_trust_free(t);
	X509_free(ca2);
	EVP_PKEY_free(k2);
	free(pem);
	free(tok);
}

static void
test_cache_revoked_with_warm_cache(void **state)
{
	struct fx *f = *state;
	struct tsi_trust *saved = f->trust, *t = NULL;
	char fp[65], *pem = NULL;
	unsigned long long h;

	assert_int_equal(tsi_x509_to_pem(f->ca, &pem), TSI_OK);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	f->trust = t;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	assert_int_equal(stats(t).hits, 1);
	assert_int_equal(stats(t).entries, 1);
	/* Revoked in place (single-threaded use: the documented way to change a
	 * trust that nobody else verifies with). */
	assert_int_equal(tsi_x509_fingerprint(f->node, fp), TSI_OK);
	assert_int_equal(tsi_trust_revoke(t, fp), TSI_OK);
	h = stats(t).hits;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_CERT_REVOKED);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_CERT_REVOKED);
	assert_int_equal(stats(t).hits, h);
	tsi_trust_free(t);

	/* The reload shape: a new trust with the revocation, the old one warm. */
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	f->trust = t;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	tsi_trust_free(t);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	assert_int_equal(tsi_trust_revoke(t, fp), TSI_OK);
	f->trust = t;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_CERT_REVOKED);
	assert_int_equal(stats(t).entries, 0);
	tsi_trust_free(t);

	/* Adding a CA also starts a new generation. */
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	f->trust = t;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	h = stats(t).hits;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	assert_int_equal(stats(t).hits, h);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	assert_int_equal(stats(t).hits, h + 1);
	tsi_trust_free(t);
	free(pem);
	f->trust = saved;
}

/* The verdict belongs to the whole chain, not to its leaf: the same session
 * certificate presented with another node certificate is verified anew. */
static void
test_cache_other_chain_same_leaf(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *bk = pki_key();
	/* Same subject name, other key: the session cert does not chain to it. */
	X509 *impostor = mk_node(f->ca, f->ca_key, bk, "node-1", -3600, 86400);
	/* Same key, re-issued by the CA for another place. */
	X509 *moved = mk("node-1", f->ca, f->ca_key, f->node_key, 1, 0,
	    "critical,digitalSignature,keyCertSign",
	    "URI:tsi:cluster-name:hipaaCluster,URI:tsi:region:us-east,"
	    "URI:tsi:datacenter:wdc01,URI:tsi:node:node-1",
	    -3600, 86400);
	X509 *expired =
	    mk_node(f->ca, f->ca_key, f->node_key, "node-1", -7200, -60);
	json_t *c;
	char kid[44];

	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	expect(f,
	    token_for(f->sess, impostor, f->sess_key, claims_base(f->now)),
	    TSI_JWT_UNTRUSTED_CHAIN);
	expect(f, token_for(f->sess, expired, f->sess_key, claims_base(f->now)),
	    TSI_JWT_CERT_EXPIRED);
	/* The leaf alone. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_UNTRUSTED_CHAIN);
	/* The moved node vouches for its own location, twice (cached). */
	expect(f, token_for(f->sess, moved, f->sess_key, claims_base(f->now)),
	    TSI_JWT_LOCATION_MISMATCH);
	c = claims_base(f->now);
	json_object_set_new(c, "region", json_string("us-east"));
	json_object_set_new(c, "datacenter", json_string("wdc01"));
	expect(f, token_for(f->sess, moved, f->sess_key, json_deep_copy(c)),
	    TSI_JWT_OK);
	expect(f, token_for(f->sess, moved, f->sess_key, json_deep_copy(c)),
	    TSI_JWT_OK);
	/* ... and the original chain still its own. */
	expect(f, good_token(f, c), TSI_JWT_LOCATION_MISMATCH);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	/* With the CA appended: a different text, verified, also good. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              f->ca, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_OK);
	X509_free(impostor);
	X509_free(moved);
	X509_free(expired);
	EVP_PKEY_free(bk);
}

/* The cache is keyed by the whole header text: any other header (another
 * member, another kid) is verified on its own; a header comes into the
 * cache only with a token whose signature and kid are good; an oversized
 * header is verified every time and never kept. */
static void
test_cache_header_variants(void **state)
{
	struct fx *f = *state;
	struct tsi_trust *saved = f->trust, *t = NULL;
	char *pem = NULL, kid[44], *h, *pad;
	json_t *hj;

	assert_int_equal(tsi_x509_to_pem(f->ca, &pem), TSI_OK);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	f->trust = t;
	/* A bad signature or a wrong kid never puts a header in. */
	expect(f,
	    build(hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_BAD_SIGNATURE);
	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_KID);
	expect(f,
	    build(hdr("ES256", NULL, f->sess, f->node, NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_KID);
	assert_int_equal(stats(t).entries, 0);
	/* The good header, twice: cached and used. */
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	assert_int_equal(stats(t).entries, 1);
	assert_int_equal(stats(t).hits, 1);
	/* Same x5c and kid, with the wrong kid after all: still refused. */
	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), f->sess, f->node,
	              NULL),
	        dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_BAD_KID);
	/* Same x5c, one more header member: its own entry. */
	h = hdr("ES256", kid_of(f->sess_key, kid), f->sess, f->node, NULL);
	hj = json_loads(h, 0, NULL);
	free(h);
	json_object_set_new(hj, "cty", json_string("JWT"));
	expect(f,
	    build(dump(json_deep_copy(hj)), dump(claims_base(f->now)),
	        f->sess_key, NULL, 0),
	    TSI_JWT_OK);
	assert_int_equal(stats(t).entries, 2);
	/* crit in an otherwise good header is refused, and not kept. */
	json_object_set_new(hj, "crit", json_pack("[s]", "b64"));
	expect(f,
	    build(dump(json_deep_copy(hj)), dump(claims_base(f->now)),
	        f->sess_key, NULL, 0),
	    TSI_JWT_MALFORMED);
	json_object_del(hj, "crit");
	/* Oversized header: verified in full every time, never kept. */
	pad = malloc(6001);
	memset(pad, 'p', 6000);
	pad[6000] = '\0';
	json_object_set_new(hj, "pad", json_string(pad));
	free(pad);
	expect(f,
	    build(dump(json_deep_copy(hj)), dump(claims_base(f->now)),
	        f->sess_key, NULL, 0),
	    TSI_JWT_OK);
	expect(f,
	    build(dump(hj), dump(claims_base(f->now)), f->sess_key, NULL, 0),
	    TSI_JWT_OK);
	assert_int_equal(stats(t).entries, 2);
	assert_int_equal(stats(t).hits, 1);
	/* A cached header with claims that are not JSON. */
	{
		char *h64, *tok, *good = good_token(f, claims_base(f->now));
		size_t n;

		n = (size_t)(strchr(good, '.') - good);
		h64 = strndup(good, n);
		tok = malloc(n + 32);
		snprintf(tok, n + 32, "%s.e30x.AAAA", h64);
		expect(f, tok, TSI_JWT_MALFORMED);
		tok = malloc(n + 32);
		snprintf(tok, n + 32, "%s.e30.AAAA", h64);
		expect(f, tok, TSI_JWT_BAD_SIGNATURE);
		free(h64);
		free(good);
	}
	tsi_trust_free(t);
	free(pem);
	f->trust = saved;
}

struct cworker {
	struct fx *f;
	struct tsi_trust *trust;
	char *tok[5];
	enum tsi_jwt_reason want[5];
	int wrong;
};

static void *
cache_worker(void *arg)
{
	struct cworker *w = arg;
	struct tsi_verify_opts o = { .now = w->f->now, .skew = 60 };
	struct tsi_verify_result res;
	json_t *cl;
	int i, r;

	for (i = 0; i < 100; i++) {
		cl = NULL;
		r = tsi_jwt_verify(w->trust, w->tok[i % 5], &o, &cl, &res);
		if (res.reason != w->want[i % 5] ||
		    (r == TSI_OK) != (w->want[i % 5] == TSI_JWT_OK))
			w->wrong++;
		json_decref(cl);
	}
	return NULL;
}

/* Threads starting on a cold cache, good and bad tokens of the same chains
 * interleaved: every answer is the one a single thread gets. */
static void
test_cache_concurrent(void **state)
{
	struct fx *f = *state;
	struct cworker w[4];
	pthread_t th[4];
	struct tsi_trust *t = NULL;
	EVP_PKEY *keys[2], *ek = pki_key(), *enk = pki_key();
	X509 *certs[2];
	X509 *eca = mk_ca(ek),
	     *enode = mk_node(eca, ek, enk, "node-1", -3600, 86400);
	char *pem = NULL, kid[44];
	int i, j;

	assert_int_equal(tsi_x509_to_pem(f->ca, &pem), TSI_OK);
	assert_int_equal(tsi_trust_new(&t), TSI_OK);
	assert_int_equal(tsi_trust_add_ca_pem(t, pem, strlen(pem)), TSI_OK);
	for (j = 0; j < 2; j++) {
		keys[j] = pki_key();
		assert_int_equal(tsi_x509_issue_session_cert(f->node_signer,
		                     f->node, keys[j], 600, &certs[j]),
		    TSI_OK);
	}
	f->now = time(NULL);
	for (i = 0; i < 4; i++) {
		w[i].f = f;
		w[i].trust = t;
		w[i].wrong = 0;
		w[i].tok[0] = token_for(certs[i % 2], f->node, keys[i % 2],
		    claims_base(f->now));
		w[i].want[0] = TSI_JWT_OK;
		/* The other good chain, signed with the wrong key. */
		w[i].tok[1] = build(hdr("ES256", kid_of(keys[(i + 1) % 2], kid),
		                        certs[(i + 1) % 2], f->node, NULL),
		    dump(claims_base(f->now)), keys[i % 2], NULL, 0);
		w[i].want[1] = TSI_JWT_BAD_SIGNATURE;
		w[i].tok[2] = token_for(certs[(i + 1) % 2], f->node,
		    keys[(i + 1) % 2], claims_base(f->now));
		w[i].want[2] = TSI_JWT_OK;
		/* An untrusted chain. */
		w[i].tok[3] = build(hdr("ES256", kid_of(enk, kid), enode, NULL),
		    dump(claims_base(f->now)), enk, NULL, 0);
		w[i].want[3] = TSI_JWT_UNTRUSTED_CHAIN;
		w[i].tok[4] = token_for(certs[i % 2], f->node, keys[i % 2],
		    json_pack("{s:s}", "aud", "tsi-vault"));
		w[i].want[4] = TSI_JWT_NO_EXP;
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, cache_worker,
		                     &w[i]),
		    0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 5; j++)
			free(w[i].tok[j]);
		assert_int_equal(w[i].wrong, 0);
	}
	/* 320 tokens on two cached chains: nearly all of them hits. */
	assert_true(stats(t).hits >= 300);
	assert_int_equal(stats(t).entries, 2);
	tsi_trust_free(t);
	for (j = 0; j < 2; j++) {
		X509_free(certs[j]);
		EVP_PKEY_free(keys[j]);
	}
	X509_free(eca);
	X509_free(enode);
	EVP_PKEY_free(ek);
	EVP_PKEY_free(enk);
	free(pem);
}

/* More chains than the cache holds: it stays bounded, evicts, and an
 * evicted chain is simply verified again. */
static void
test_cache_bounded(void **state)
{
	struct fx *f = *state;
	enum {
		N = 1100
	};
	EVP_PKEY *k = pki_key();
	char **toks = calloc(N, sizeof(*toks)), kid[44];
	struct tsi_trust_cache_stats st;
	X509 *c;
	int i;

	kid_of(k, kid);
	for (i = 0; i < N; i++) {
		/* Distinct session certificates (random serials), one key, each
		 * verified at the clock it was issued at (a slow runner). */
		assert_int_equal(tsi_x509_issue_session_cert(f->node_signer,
		                     f->node, k, 600, &c),
		    TSI_OK);
		f->now = time(NULL);
		toks[i] = token_for(c, f->node, k, claims_base(f->now));
		X509_free(c);
		expect(f, strdup(toks[i]), TSI_JWT_OK);
	}
	st = stats(f->trust);
	assert_true(st.entries <= 1024);
	assert_true(st.evictions >= N - 1024);
	expect_at(f, strdup(toks[0]), NULL, time(NULL), TSI_JWT_OK);
	expect_at(f, strdup(toks[N - 1]), NULL, time(NULL), TSI_JWT_OK);
	for (i = 0; i < N; i++)
		free(toks[i]);
	free(toks);
	EVP_PKEY_free(k);
}

static void
test_decode_unverified(void **state)
{
	struct fx *f = *state;
	char *tok = good_token(f, claims_base(f->now));
	json_t *h = NULL, *c = NULL;

	assert_int_equal(tsi_jwt_decode_unverified(tok, &h, &c), TSI_OK);
	assert_string_equal(json_string_value(json_object_get(h, "alg")),
	    "ES256");
	assert_string_equal(json_string_value(json_object_get(c, "node")),
	    "node-1");
	json_decref(h);
	json_decref(c);
	assert_int_equal(tsi_jwt_decode_unverified("a.b", &h, &c),
	    TSI_ERR_PARSE);
	free(tok);
}

/* The fixture with its two good chains ([session, node] and [node])
 * verified once, so that they are in the verdict cache. */
static int
setup_warm(void **state)
{
	struct tsi_trust_cache_stats st;
	struct fx *f;
	char kid[44];

	setup(state);
	f = *state;
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	expect(f,
	    build(hdr("ES256", kid_of(f->node_key, kid), f->node, NULL),
	        dump(claims_base(f->now)), f->node_key, NULL, 0),
	    TSI_JWT_OK);
	expect(f, good_token(f, claims_base(f->now)), TSI_JWT_OK);
	tsi_trust_cache_stats(f->trust, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.hits, 1);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_session_chain),
		cmocka_unit_test(test_good_minted_by_library),
		cmocka_unit_test(test_good_node_only),
		cmocka_unit_test(test_aud_array),
		cmocka_unit_test(test_skew_tolerated),
		cmocka_unit_test(test_skew_boundaries),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_alg_hs256_with_public_key),
		cmocka_unit_test(test_alg_es384),
		cmocka_unit_test(test_alg_rs256),
		cmocka_unit_test(test_sig_garbage_truncated_empty_zero),
		cmocka_unit_test(test_sig_r_s_not_below_order),
		cmocka_unit_test(test_sig_by_other_key),
		cmocka_unit_test(test_tampered_claims),
		cmocka_unit_test(test_bad_kid),
		cmocka_unit_test(test_time_claims),
		cmocka_unit_test(test_audience),
		cmocka_unit_test(test_no_x5c),
		cmocka_unit_test(test_unknown_ca_same_name),
		cmocka_unit_test(test_x5c_longer_than_path),
		cmocka_unit_test(test_node_deeper_than_x5c1),
		cmocka_unit_test(test_expired_node_cert),
		cmocka_unit_test(test_node_without_ca_rights),
		cmocka_unit_test(test_expired_session_cert),
		cmocka_unit_test(test_session_cert_from_other_node),
		cmocka_unit_test(test_session_cert_claiming_location),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_location_mismatch),
		cmocka_unit_test(test_location_claim_unbound),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_many_session_certs),
		cmocka_unit_test(test_concurrent_verification),
		cmocka_unit_test(test_decode_unverified),
		cmocka_unit_test(test_cache_cert_expires),
		cmocka_unit_test(test_cache_revoked_with_warm_cache),
		cmocka_unit_test(test_chain_then_trust_change),
		cmocka_unit_test(test_cache_other_chain_same_leaf),
		cmocka_unit_test(test_cache_header_variants),
		cmocka_unit_test(test_cache_concurrent),
	};
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_cache_bounded),
	};
	int failed;

	/* Cold: the corpus as a fresh verifier sees it. Warm: again, after the
	 * fixture's good chains are cached, so that every refusal is shown to
	 * keep its own reason with a verdict in the cache. */
	failed = cmocka_run_group_tests_name("cold", tests, setup, teardown);
	failed +=
	    cmocka_run_group_tests_name("warm", tests, setup_warm, teardown);
	failed += cmocka_run_group_tests_name("bounds", once, setup, teardown);
	return failed;
}
