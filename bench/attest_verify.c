/*
 * attest_verify.c - the figure attest_verify: tsi-attest's verification work
 * for one enrollment, in-process, on one thread, over evidence captured once
 * from a real TPM (swtpm).
 *
 * Capture (not timed): the node side through issuer/tpm.c, as tsi-issuer
 * enroll does it: the EK certificate and public area, the AK's public area,
 * the signing key's public area and a CSR signed by it, TPM2_Certify of the
 * key by the AK and TPM2_Quote of sha256 PCRs 0..7, both over one nonce.
 *
 * Each round then makes the lib/attest_* and OpenSSL calls that
 * attest/enroll.c makes on those bytes, in its order (read it beside this):
 *   start:  tsi_tpm_pub_parse of ek_pub, ak_pub, key_pub; tsi_attest_check_ek;
 *           tsi_attest_key_sha256 of the EK; the EK certificate parsed
 *           (tsi_x509_load_chain_pem), verified to the ek_ca anchors
 *           (tsi_attest_ek_cert_verify) and matched to ek_pub;
 *           tsi_attest_check_ak, tsi_attest_check_signing_key; the CSR's
 *           self-signature verified and its key compared with key_pub;
 *           three RAND_bytes; tsi_attest_make_credential.
 *   finish: the activation proof's HMAC; ak_pub and key_pub parsed again
 *           (tsi-attest keeps them in the session record);
 *           tsi_attest_verify of the certify and the name compared;
 *           tsi_attest_verify of the quote; tsi_attest_pcr_digest compared.
 * Left out, as not verification: JSON and base64, the LMDB inventory and
 * session records, the audit record, HTTP, and signing the node certificate.
 *
 *   attest_verify --tcti CONF --state-dir DIR --ek-ca PEM [--seconds N]
 *                 [--breakdown]
 *
 * Prints one JSON object: rounds, seconds, per_sec, us_per_round, and what
 * the ceiling needs: the EK chain's length as verified (chain_sigs: the
 * signatures checked, the anchor's own excluded) and the key type of each
 * signer in it (chain_algs); and the EK's ek_sha256, for registering it.
 * With --breakdown, phases_us: each part of a round timed alone (N/8 s
 * each, after the rounds), to show where the time goes.
 * Exit 0 on success, 1 on failure, 2 on bad usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "issuer/tpm.h"
#include "tsi/attest.h"
#include "tsi/err.h"
#include "tsi/log.h"
#include "tsi/signer.h"
#include "tsi/x509.h"

struct evidence {
	char *ek_pem; /* the EK certificate, PEM */
	uint8_t *ek_pub, *ak_pub, *key_pub;
	size_t ek_pub_len, ak_pub_len, key_pub_len;
	char *csr;
	uint8_t nonce[32];
	uint8_t *c_att, *c_sig, *q_att, *q_sig;
	size_t c_att_len, c_sig_len, q_att_len, q_sig_len;
	uint8_t pcrs[TSI_TPM_PCRS][32];
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
capture(const char *tcti, const char *state_dir, struct evidence *ev)
{
	struct tsi_tpm *t = NULL;
	struct tsi_signer *s = NULL;
	uint8_t *cert = NULL;
	size_t cert_len = 0;
	const unsigned char *p;
	X509 *x = NULL;
	int r;

	if ((r = tsi_tpm_open(tcti, state_dir, &t)) != TSI_OK ||
	    (r = tsi_tpm_ek(t, &cert, &cert_len, &ev->ek_pub,
	         &ev->ek_pub_len)) != TSI_OK ||
	    (r = tsi_tpm_ak_pub(t, &ev->ak_pub, &ev->ak_pub_len)) != TSI_OK ||
	    (r = tsi_tpm_key_pub(t, &ev->key_pub, &ev->key_pub_len)) !=
	        TSI_OK ||
	    (r = tsi_tpm_signer(t, &s)) != TSI_OK ||
	    (r = tsi_x509_make_csr(s, "bench-node", &ev->csr)) != TSI_OK)
		goto out;
	if (RAND_bytes(ev->nonce, sizeof(ev->nonce)) != 1) {
		r = TSI_ERR_CRYPTO;
		goto out;
	}
	if ((r = tsi_tpm_certify(t, ev->nonce, sizeof(ev->nonce), &ev->c_att,
	         &ev->c_att_len, &ev->c_sig, &ev->c_sig_len)) != TSI_OK ||
	    (r = tsi_tpm_quote(t, ev->nonce, sizeof(ev->nonce), 0xff,
	         &ev->q_att, &ev->q_att_len, &ev->q_sig, &ev->q_sig_len,
	         ev->pcrs)) != TSI_OK)
		goto out;
	r = TSI_ERR_NOT_FOUND;
	if (cert == NULL) {
		fprintf(stderr,
		    "attest_verify: the TPM has no EK certificate\n");
		goto out;
	}
	p = cert;
	if ((x = d2i_X509(NULL, &p, (long)cert_len)) == NULL ||
	    (r = tsi_x509_to_pem(x, &ev->ek_pem)) != TSI_OK) {
		r = TSI_ERR_PARSE;
		goto out;
	}
	r = TSI_OK;
out:
	X509_free(x);
	free(cert);
	tsi_signer_free(s);
	tsi_tpm_free(t);
	return r;
}

/* What OpenSSL verifies for the EK chain, with tsi_attest_ek_cert_verify's
 * store settings: the signatures checked and their signers' key types. */
static int
chain_shape(const char *ek_pem, STACK_OF(X509) *anchors, int *sigs, char *algs,
    size_t algslen)
{
	STACK_OF(X509) *leafsk = NULL, *chain;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	size_t off = 0;
	int i, n, r = 1;

	algs[0] = '\0';
	if (tsi_x509_load_chain_pem(ek_pem, strlen(ek_pem), &leafsk) !=
	        TSI_OK ||
	    (store = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(anchors); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(anchors, i)) != 1)
			goto out;
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(leafsk, 0), NULL) !=
	        1 ||
	    X509_verify_cert(ctx) != 1)
		goto out;
	chain = X509_STORE_CTX_get0_chain(ctx);
	n = sk_X509_num(chain);
	/* The anchor's own signature is not checked (no
	 * X509_V_FLAG_CHECK_SS_SIGNATURE): n - 1 signatures. */
	*sigs = n - 1;
	for (i = 1; i < n; i++) {
		EVP_PKEY *k = X509_get0_pubkey(sk_X509_value(chain, i));
		int w = snprintf(algs + off, algslen - off, "%s%s-%d",
		    i > 1 ? "," : "",
		    k != NULL ? EVP_PKEY_get0_type_name(k) : "?",
		    k != NULL ? EVP_PKEY_get_bits(k) : 0);

		if (w < 0 || (size_t)w >= algslen - off)
			goto out;
		off += (size_t)w;
	}
	r = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(leafsk, X509_free);
	return r;
}

/* The CSR's self-signature and key, as attest/enroll.c check_csr. */
static int
csr_ok(const char *pem, const struct tsi_tpm_pub *key)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	int ok = 0;

	if (bio != NULL &&
	    (req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) != NULL &&
	    (pub = X509_REQ_get0_pubkey(req)) != NULL &&
	    X509_REQ_verify(req, pub) == 1 &&
	    EVP_PKEY_eq(pub, tsi_tpm_pub_pkey(key)) == 1)
		ok = 1;
	X509_REQ_free(req);
	BIO_free(bio);
	return ok;
}

/* One enrollment's verification; 0 when every check passes. */
static int
round_once(const struct evidence *ev, STACK_OF(X509) *anchors)
{
	struct tsi_tpm_pub *ek = NULL, *ak = NULL, *key = NULL;
	struct tsi_tpm_pub *ak2 = NULL, *key2 = NULL;
	struct tsi_attest_info ci, qi;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	uint8_t sid[16], nonce[32], secret[32], mac[32], digest[32];
	uint8_t *blob = NULL, *enc = NULL;
	size_t blob_len, enc_len, nlen;
	unsigned int maclen = 0;
	const uint8_t *name;
	char hash[65], why[256];
	int r = 1;

	/* /v1/enroll/start */
	if (tsi_tpm_pub_parse(ev->ek_pub, ev->ek_pub_len, &ek) != TSI_OK ||
	    tsi_tpm_pub_parse(ev->ak_pub, ev->ak_pub_len, &ak) != TSI_OK ||
	    tsi_tpm_pub_parse(ev->key_pub, ev->key_pub_len, &key) != TSI_OK ||
	    tsi_attest_check_ek(ek, why, sizeof(why)) != TSI_OK ||
	    tsi_attest_key_sha256(tsi_tpm_pub_pkey(ek), hash) != TSI_OK ||
	    tsi_x509_load_chain_pem(ev->ek_pem, strlen(ev->ek_pem), &chain) !=
	        TSI_OK)
		goto out;
	leaf = sk_X509_shift(chain);
	if (tsi_attest_ek_cert_verify(leaf, chain, anchors, why, sizeof(why)) !=
	        TSI_OK ||
	    tsi_x509_key_matches(leaf, tsi_tpm_pub_pkey(ek)) != 1 ||
	    tsi_attest_check_ak(ak, why, sizeof(why)) != TSI_OK ||
	    tsi_attest_check_signing_key(key, why, sizeof(why)) != TSI_OK ||
	    !csr_ok(ev->csr, key))
		goto out;
	if (RAND_bytes(sid, sizeof(sid)) != 1 ||
	    RAND_bytes(nonce, sizeof(nonce)) != 1 ||
	    RAND_bytes(secret, sizeof(secret)) != 1)
		goto out;
	name = tsi_tpm_pub_name(ak, &nlen);
	if (tsi_attest_make_credential(ek, name, nlen, secret, sizeof(secret),
	        &blob, &blob_len, &enc, &enc_len) != TSI_OK)
		goto out;

	/* /v1/enroll/finish (the captured nonce stands for the session's) */
	if (HMAC(EVP_sha256(), secret, sizeof(secret), sid, sizeof(sid), mac,
	        &maclen) == NULL ||
	    maclen != 32 ||
	    tsi_tpm_pub_parse(ev->ak_pub, ev->ak_pub_len, &ak2) != TSI_OK ||
	    tsi_tpm_pub_parse(ev->key_pub, ev->key_pub_len, &key2) != TSI_OK ||
	    tsi_attest_verify(ev->c_att, ev->c_att_len, ev->c_sig,
	        ev->c_sig_len, ak2, &ci, why, sizeof(why)) != TSI_OK ||
	    ci.type != TSI_ATTEST_CERTIFY ||
	    ci.extra_len != sizeof(ev->nonce) ||
	    memcmp(ci.extra, ev->nonce, sizeof(ev->nonce)) != 0)
		goto out;
	name = tsi_tpm_pub_name(key2, &nlen);
	if (ci.name_len != nlen || memcmp(ci.name, name, nlen) != 0 ||
	    tsi_attest_verify(ev->q_att, ev->q_att_len, ev->q_sig,
	        ev->q_sig_len, ak2, &qi, why, sizeof(why)) != TSI_OK ||
	    qi.type != TSI_ATTEST_QUOTE || qi.pcr_mask != 0xff ||
	    tsi_attest_pcr_digest((const uint8_t(*)[32])ev->pcrs, 8, digest) !=
	        TSI_OK ||
	    qi.pcr_digest_len != 32 || memcmp(digest, qi.pcr_digest, 32) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		fprintf(stderr, "attest_verify: a check failed: %s\n", why);
	ERR_clear_error();
	free(blob);
	free(enc);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	tsi_tpm_pub_free(ek);
	tsi_tpm_pub_free(ak);
	tsi_tpm_pub_free(key);
	tsi_tpm_pub_free(ak2);
	tsi_tpm_pub_free(key2);
	return r;
}

/* The breakdown (--breakdown): each part of a round alone, in a loop, so
 * that the note can say where the time goes. Inputs made outside the
 * timing; every call checked. */
enum phase {
	PH_PUB_PARSE, /* tsi_tpm_pub_parse of the three public areas */
	PH_EK_HASH,   /* tsi_attest_key_sha256 (i2d_PUBKEY + SHA-256) */
	PH_EK_PEM,    /* the EK certificate's PEM parsed */
	PH_EK_VERIFY, /* tsi_attest_ek_cert_verify + key match */
	PH_CSR,       /* the CSR parsed, self-signature verified, key eq */
	PH_MAKECRED,  /* tsi_attest_make_credential */
	PH_ATTEST,    /* tsi_attest_verify of certify and quote */
	PH_N
};
static const char *const phase_name[PH_N] = {
	"pub_parse_x5",
	"ek_sha256",
	"ek_cert_pem",
	"ek_cert_verify",
	"csr_parse_verify",
	"make_credential",
	"certify_quote_verify",
};

static int
phase_once(enum phase ph, const struct evidence *ev, STACK_OF(X509) *anchors,
    struct tsi_tpm_pub *ek, struct tsi_tpm_pub *ak, struct tsi_tpm_pub *key,
    X509 *leaf)
{
	struct tsi_tpm_pub *p = NULL;
	struct tsi_attest_info info;
	STACK_OF(X509) *sk = NULL;
	uint8_t *blob = NULL, *enc = NULL, secret[32] = { 1 };
	size_t blob_len, enc_len, nlen;
	const uint8_t *name;
	char hash[65], why[256];
	int i, ok = 0;

	switch (ph) {
	case PH_PUB_PARSE:
		for (i = 0; i < 5; i++) {
			const uint8_t *b = i == 0 ? ev->ek_pub
			    : (i % 2)             ? ev->ak_pub
			                          : ev->key_pub;
			size_t l = i == 0 ? ev->ek_pub_len
			    : (i % 2)     ? ev->ak_pub_len
			                  : ev->key_pub_len;

			if (tsi_tpm_pub_parse(b, l, &p) != TSI_OK)
				return 1;
			tsi_tpm_pub_free(p);
			p = NULL;
		}
		return 0;
	case PH_EK_HASH:
		return tsi_attest_key_sha256(tsi_tpm_pub_pkey(ek), hash) !=
		    TSI_OK;
	case PH_EK_PEM:
		ok = tsi_x509_load_chain_pem(ev->ek_pem, strlen(ev->ek_pem),
		         &sk) == TSI_OK;
		sk_X509_pop_free(sk, X509_free);
		return !ok;
	case PH_EK_VERIFY:
		return tsi_attest_ek_cert_verify(leaf, NULL, anchors, why,
		           sizeof(why)) != TSI_OK ||
		    tsi_x509_key_matches(leaf, tsi_tpm_pub_pkey(ek)) != 1;
	case PH_CSR: return !csr_ok(ev->csr, key);
	case PH_MAKECRED:
		name = tsi_tpm_pub_name(ak, &nlen);
		ok = tsi_attest_make_credential(ek, name, nlen, secret,
		         sizeof(secret), &blob, &blob_len, &enc,
		         &enc_len) == TSI_OK;
		free(blob);
		free(enc);
		return !ok;
	case PH_ATTEST:
		return tsi_attest_verify(ev->c_att, ev->c_att_len, ev->c_sig,
		           ev->c_sig_len, ak, &info, why,
		           sizeof(why)) != TSI_OK ||
		    tsi_attest_verify(ev->q_att, ev->q_att_len, ev->q_sig,
		        ev->q_sig_len, ak, &info, why, sizeof(why)) != TSI_OK;
	case PH_N: break;
	}
	return 1;
}

/* Appends ", \"phases_us\": {...}" to out; 0 on success. */
static int
breakdown(const struct evidence *ev, STACK_OF(X509) *anchors, double secs,
    char *out, size_t outlen)
{
	struct tsi_tpm_pub *ek = NULL, *ak = NULL, *key = NULL;
	STACK_OF(X509) *sk = NULL;
	X509 *leaf = NULL;
	size_t off = 0;
	int ph, w, r = 1;

	if (tsi_tpm_pub_parse(ev->ek_pub, ev->ek_pub_len, &ek) != TSI_OK ||
	    tsi_tpm_pub_parse(ev->ak_pub, ev->ak_pub_len, &ak) != TSI_OK ||
	    tsi_tpm_pub_parse(ev->key_pub, ev->key_pub_len, &key) != TSI_OK ||
	    tsi_x509_load_chain_pem(ev->ek_pem, strlen(ev->ek_pem), &sk) !=
	        TSI_OK ||
	    (leaf = sk_X509_shift(sk)) == NULL)
		goto out;
	w = snprintf(out, outlen, ", \"phases_us\": {");
	if (w < 0 || (size_t)w >= outlen)
		goto out;
	off = (size_t)w;
	for (ph = 0; ph < PH_N; ph++) {
		unsigned long long n = 0;
		double t0 = now_s(), t1 = t0;

		while (t1 - t0 < secs) {
			if (phase_once((enum phase)ph, ev, anchors, ek, ak, key,
			        leaf) != 0) {
				fprintf(stderr,
				    "attest_verify: phase %s "
				    "failed\n",
				    phase_name[ph]);
				goto out;
			}
			n++;
			t1 = now_s();
		}
		w = snprintf(out + off, outlen - off, "%s\"%s\": %.1f",
		    ph ? ", " : "", phase_name[ph],
		    1e6 * (t1 - t0) / (double)n);
		if (w < 0 || (size_t)w >= outlen - off)
			goto out;
		off += (size_t)w;
	}
	w = snprintf(out + off, outlen - off, "}");
	if (w < 0 || (size_t)w >= outlen - off)
		goto out;
	r = 0;
out:
	ERR_clear_error();
	X509_free(leaf);
	sk_X509_pop_free(sk, X509_free);
	tsi_tpm_pub_free(ek);
	tsi_tpm_pub_free(ak);
	tsi_tpm_pub_free(key);
	return r;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = calloc(1, (size_t)n + 1)) != NULL &&
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: attest_verify --tcti CONF --state-dir DIR "
	    "--ek-ca PEM [--seconds N] [--breakdown]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *tcti = NULL, *state = NULL, *ca_path = NULL;
	double seconds = 2, t0, t1;
	struct evidence ev;
	STACK_OF(X509) *anchors = NULL;
	struct tsi_tpm_pub *ekp = NULL;
	char *ca_pem = NULL, algs[256], ek_hash[65], phases[512] = "";
	unsigned long long n = 0;
	int i, sigs = 0, split = 0, ret = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc)
			tcti = argv[++i];
		else if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--ek-ca") == 0 && i + 1 < argc)
			ca_path = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--breakdown") == 0)
			split = 1;
		else
			return usage();
	}
	if (tcti == NULL || state == NULL || ca_path == NULL || seconds <= 0)
		return usage();
	tsi_log_init("attest_verify", TSI_LOG_ERROR);
	memset(&ev, 0, sizeof(ev));
	if ((ca_pem = read_file(ca_path)) == NULL ||
	    tsi_x509_load_chain_pem(ca_pem, strlen(ca_pem), &anchors) !=
	        TSI_OK) {
		fprintf(stderr, "attest_verify: cannot read %s\n", ca_path);
		goto out;
	}
	if (capture(tcti, state, &ev) != TSI_OK) {
		fprintf(stderr, "attest_verify: capture from the TPM failed\n");
		goto out;
	}
	if (chain_shape(ev.ek_pem, anchors, &sigs, algs, sizeof(algs)) != 0) {
		fprintf(stderr,
		    "attest_verify: the EK chain does not verify\n");
		goto out;
	}
	if (tsi_tpm_pub_parse(ev.ek_pub, ev.ek_pub_len, &ekp) != TSI_OK ||
	    tsi_attest_key_sha256(tsi_tpm_pub_pkey(ekp), ek_hash) != TSI_OK)
		goto out;
	t0 = now_s();
	t1 = t0;
	while (t1 - t0 < seconds) {
		if (round_once(&ev, anchors) != 0)
			goto out;
		n++;
		t1 = now_s();
	}
	if (split &&
	    breakdown(&ev, anchors, seconds / 8, phases, sizeof(phases)) != 0)
		goto out;
	printf("{\"rounds\": %llu, \"seconds\": %.3f, \"per_sec\": %.1f, "
	       "\"us_per_round\": %.1f, \"chain_sigs\": %d, \"chain_algs\": "
	       "\"%s\", \"ek_sha256\": \"%s\"%s}\n",
	    n, t1 - t0, (double)n / (t1 - t0), 1e6 * (t1 - t0) / (double)n,
	    sigs, algs, ek_hash, phases);
	ret = 0;
out:
	tsi_tpm_pub_free(ekp);
	free(ca_pem);
	sk_X509_pop_free(anchors, X509_free);
	free(ev.ek_pem);
	free(ev.ek_pub);
	free(ev.ak_pub);
	free(ev.key_pub);
	free(ev.csr);
	free(ev.c_att);
	free(ev.c_sig);
	free(ev.q_att);
	free(ev.q_sig);
	return ret;
}
