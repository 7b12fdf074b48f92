/*
 * pki.h - test-only certificate factory. Builds good and deliberately bad
 * certificates with OpenSSL directly, so negative tests never depend on
 * fixtures that could go stale.
 */
#ifndef TSI_TEST_PKI_H
#define TSI_TEST_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>

struct pki_spec {
	const char *cn;
	X509 *issuer;         /* NULL: self-signed */
	EVP_PKEY *issuer_key; /* NULL: self-signed with key */
	EVP_PKEY *key;        /* subject key (public part used) */
	int ca;          /* 1 CA:TRUE, 0 CA:FALSE, -1 no basicConstraints */
	int pathlen;     /* -1: none */
	const char *ku;  /* keyUsage value, NULL: none */
	const char *san; /* subjectAltName value, e.g. "URI:tsi:region:r" */
	long not_before; /* seconds relative to base time */
	long not_after;
	time_t base; /* 0: time(NULL) */
};

EVP_PKEY *pki_key(void);
EVP_PKEY *pki_key_curve(const char *curve);
X509 *pki_cert(const struct pki_spec *sp);
/* "URI:tsi:cluster-name:C,URI:tsi:region:R,URI:tsi:datacenter:D,URI:tsi:node:N" */
const char *pki_loc_san(void);
/* Writes cert (and optionally key) PEM to a file; returns 0 on success. */
int pki_write_cert(const char *path, X509 *cert);
int pki_write_key(const char *path, EVP_PKEY *key);
/* DER ECDSA signature -> r||s. */
int pki_der_to_raw(const unsigned char *der, size_t len, unsigned char sig[64]);
/* Verifies r||s over msg with pub; 1 valid. */
int pki_verify_raw(EVP_PKEY *pub, const void *msg, size_t len,
    const unsigned char sig[64]);

#endif
