#include "pki.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

EVP_PKEY *
pki_key(void)
{
	return EVP_EC_gen("P-256");
}

EVP_PKEY *
pki_key_curve(const char *curve)
{
	return EVP_EC_gen(curve);
}

const char *
pki_loc_san(void)
{
	return "URI:tsi:cluster-name:hipaaCluster,URI:tsi:region:eu-de,"
	       "URI:tsi:datacenter:dal05,URI:tsi:node:node-1";
}

static int
ext(X509 *c, X509V3_CTX *ctx, int nid, const char *v)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, v);
	int ok;

	if (e == NULL)
		return 0;
	ok = X509_add_ext(c, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

X509 *
pki_cert(const struct pki_spec *sp)
{
	X509 *c = X509_new();
	X509 *issuer = sp->issuer ? sp->issuer : c;
	EVP_PKEY *ikey = sp->issuer_key ? sp->issuer_key : sp->key;
	time_t base = sp->base ? sp->base : time(NULL);
	unsigned char sn[16];
	char bc[64];
	X509V3_CTX v3;

	RAND_bytes(sn, sizeof(sn));
	sn[0] = (sn[0] & 0x7f) | 0x40;
	BIGNUM *bn = BN_bin2bn(sn, sizeof(sn), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_set_version(c, X509_VERSION_3);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN",
	    MBSTRING_UTF8, (const unsigned char *)sp->cn, -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(issuer));
	X509_time_adj_ex(X509_getm_notBefore(c), 0, sp->not_before, &base);
	X509_time_adj_ex(X509_getm_notAfter(c), 0, sp->not_after, &base);
	X509_set_pubkey(c, sp->key);
	X509V3_set_ctx(&v3, issuer, c, NULL, NULL, 0);
	if (sp->ca >= 0) {
		if (sp->ca && sp->pathlen >= 0)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d",
			    sp->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:%s",
			    sp->ca ? "TRUE" : "FALSE");
		ext(c, &v3, NID_basic_constraints, bc);
	}
	if (sp->ku)
		ext(c, &v3, NID_key_usage, sp->ku);
	ext(c, &v3, NID_subject_key_identifier, "hash");
	ext(c, &v3, NID_authority_key_identifier, "keyid");
	if (sp->san)
		ext(c, &v3, NID_subject_alt_name, sp->san);
	if (X509_sign(c, ikey, EVP_sha256()) <= 0) {
		X509_free(c);
		return NULL;
	}
	return c;
}

int
pki_write_cert(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_X509(f, cert);
	fclose(f);
	return ok == 1 ? 0 : -1;
}

int
pki_write_key(const char *path, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	return ok == 1 ? 0 : -1;
}

int
pki_der_to_raw(const unsigned char *der, size_t len, unsigned char sig[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *s;

	if (es == NULL)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	BN_bn2binpad(r, sig, 32);
	BN_bn2binpad(s, sig + 32, 32);
	ECDSA_SIG_free(es);
	return 0;
}

int
pki_verify_raw(EVP_PKEY *pub, const void *msg, size_t len,
    const unsigned char sig[64])
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *der = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int n, ok;

	ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL),
	    BN_bin2bn(sig + 32, 32, NULL));
	n = i2d_ECDSA_SIG(es, &der);
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
	    EVP_DigestVerify(md, der, (size_t)n, msg, len) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ok;
}
