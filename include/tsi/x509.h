/*
 * x509.h - the cluster CA, node certificates with location, session
 * certificates, and CSRs.
 *
 * A node certificate binds the node's TPM key to its location with URI SANs
 * tsi:cluster-name:C, tsi:region:R, tsi:datacenter:D and tsi:node:N. It is a
 * CA with pathlen 0, so the node may certify short-lived session keys (the
 * delegated signing mode); nothing below a session certificate may sign.
 */
#ifndef TSI_X509_H
#define TSI_X509_H

#include <stddef.h>
#include <openssl/x509.h>

#include "tsi/signer.h"

struct tsi_location {
	char *cluster_name;
	char *region;
	char *datacenter;
	char *node; /* may be NULL */
};

/* Longest accepted location value, in bytes. */
#define TSI_LOCATION_MAX 128

/* Frees the strings (not the struct). Accepts NULL members. */
void tsi_location_clear(struct tsi_location *loc);

/* Nonzero when v is an acceptable location value: 1..TSI_LOCATION_MAX bytes
 * of [A-Za-z0-9._-], not starting with '.'. (So never ':', '/', '*', spaces,
 * control characters or "..": values are substituted into policy paths.) */
int tsi_location_value_ok(const char *v);

/* TSI_OK when cluster_name, region, datacenter (and node, if not NULL) are
 * all acceptable values; TSI_ERR_INVALID_ARG otherwise. */
int tsi_location_validate(const struct tsi_location *loc);

/* Reads the tsi: URI SANs of cert into *out (caller: tsi_location_clear).
 * TSI_ERR_NOT_FOUND when the certificate carries no tsi: SAN at all;
 * TSI_ERR_BAD_CERT when cluster-name, region or datacenter is missing, one of
 * the four appears twice, or a value is not acceptable. */
int tsi_x509_location(X509 *cert, struct tsi_location *out);

/* Makes a P-256 CA: DIR/ca.pem (0644) and DIR/ca.key (0600, PKCS#8 PEM).
 * Refuses to overwrite an existing key (TSI_ERR_EXISTS). */
int tsi_ca_init(const char *dir, const char *common_name, int days);

/* Signs a CSR (PEM text) as a node certificate for loc, valid `days` days.
 * The CSR's self-signature must verify; its subject is replaced by
 * CN=<node or datacenter>. *cert_pem: caller frees with free(). */
int tsi_ca_sign_csr(const char *ca_cert_path, const char *ca_key_path,
    const char *csr_pem, size_t csr_len, const struct tsi_location *loc,
    int days, char **cert_pem);

/* A CSR for the signer's key with subject CN=cn, signed by the signer.
 * *csr_pem: caller frees with free(). */
int tsi_x509_make_csr(const struct tsi_signer *s, const char *cn,
    char **csr_pem);

/* Issues a session certificate for session_pub, signed by the node signer,
 * issuer = node_cert's subject, CA:FALSE, digitalSignature only, valid from
 * now - 60 s for ttl seconds, never past node_cert's notAfter.
 * *out: caller frees with X509_free. */
int tsi_x509_issue_session_cert(const struct tsi_signer *node_signer,
    X509 *node_cert, EVP_PKEY *session_pub, int ttl, X509 **out);

/* Loads the first certificate of a PEM file. *out: X509_free. */
int tsi_x509_load_file(const char *path, X509 **out);
/* Loads every certificate of a PEM file. *out: sk_X509_pop_free(.., X509_free). */
int tsi_x509_load_chain_file(const char *path, STACK_OF(X509) **out);
/* Loads every certificate of PEM text (len bytes, need not be
 * NUL-terminated). *out: sk_X509_pop_free(.., X509_free). */
int tsi_x509_load_chain_pem(const char *pem, size_t len, STACK_OF(X509) **out);
/* PEM text of a certificate. *pem: free(). */
int tsi_x509_to_pem(X509 *cert, char **pem);
/* SHA-256 fingerprint of the DER, lower-case hex (65 bytes with NUL). */
int tsi_x509_fingerprint(X509 *cert, char hex[65]);
/* Whether the certificate's public key equals pub. */
int tsi_x509_key_matches(X509 *cert, EVP_PKEY *pub);

#endif /* TSI_X509_H */
