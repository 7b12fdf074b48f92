/*
 * enroll.h - attested enrollment, the node's side (docs/attestation.md has
 * the protocol; docs/issuer.md the settings).
 *
 * The issuer proves its TPM to tsi-attest (attest_url) and receives its node
 * certificate: EK certificate and public key, the AK's public area, a CSR
 * for the signing key and nothing else go out in the first request; the
 * answer is a credential only this TPM can activate, and the second request
 * returns the proof, a certify of the signing key and a quote, all bound to
 * the server's nonce. The location in the certificate comes from the
 * operator's inventory, never from the node. No credential of its own is
 * needed: what authorises a node is its TPM being registered (`tsi node
 * register`), which a shared bootstrap token could only weaken.
 */
#ifndef TSI_ISSUER_ENROLL_H
#define TSI_ISSUER_ENROLL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "issuer/config.h"
#include "issuer/tpm.h"

#define TSI_ENROLL_BODY_MAX (64 * 1024) /* either direction */
#define TSI_ENROLL_BLOB_MAX 1024        /* decoded credential parts */

/* The answer to /v1/enroll/start. Owned by the struct;
 * tsi_enroll_challenge_clear frees (and wipes) the members. */
struct tsi_enroll_challenge {
	char session[33]; /* 32 lower-case hex digits */
	uint8_t nonce[32];
	char nonce_hex[65];
	uint8_t *blob; /* TPM2B_ID_OBJECT, wire form */
	size_t blob_len;
	uint8_t *secret; /* TPM2B_ENCRYPTED_SECRET, wire form */
	size_t secret_len;
	uint32_t pcr_mask; /* SHA-256 PCRs, bit i = PCR i */
	int expires_in;    /* seconds; 0 when not given */
};

/* The answer to /v1/enroll/finish; tsi_enroll_result_clear frees. */
struct tsi_enroll_result {
	char *cert_pem;
	char *ca_pem;
	char *node;
	long long expires_at;
};

/* Parses an answer body (len bytes, untrusted, need not be NUL-terminated).
 * TSI_ERR_PARSE with a one-line reason when it is not the protocol's shape;
 * TSI_ERR_UNSUPPORTED when it asks for a PCR bank other than sha256. out is
 * cleared first and left empty on failure. */
int tsi_enroll_parse_start(const char *body, size_t len,
    struct tsi_enroll_challenge *out, char *reason, size_t reasonlen);
int tsi_enroll_parse_finish(const char *body, size_t len,
    struct tsi_enroll_result *out, char *reason, size_t reasonlen);
void tsi_enroll_challenge_clear(struct tsi_enroll_challenge *c);
void tsi_enroll_result_clear(struct tsi_enroll_result *r);

/*
 * What the protocol needs from the node: its TPM's evidence about itself
 * and a place for the certificate. Every operation acts on objects the node
 * fixes (the TCG EK, the AK of tpm.h's template, the signing key); the
 * protocol gives only the verifier's nonce, PCR selection and credential.
 * Two implementations: the local one (enroll_node.c: the TPM and the files
 * in this process) and the front end's (front.c: the same operations as
 * requests to the privileged signer, which answers them with the local
 * one). Byte outputs: caller frees with free(); errors as in tpm.h.
 *   key: the signing key's TPM2B_PUBLIC and a CSR (PEM) it signed
 *   state: tsi_enroll_due's answer for the installed certificate
 *   install: checks cert_pem (for this TPM's key, a location, signed by
 *     the CA in ca_pem, valid now, a CA itself for delegated signing) and
 *     writes node_ca, then node_cert, atomically; nothing is written
 *     unless it checks. TSI_ERR_BAD_CERT or TSI_ERR_EXPIRED with a reason.
 */
struct tsi_enroll_node {
	void *ctx;
	int (*ek)(void *ctx, uint8_t **cert, size_t *cert_len, uint8_t **pub,
	    size_t *pub_len);
	int (*ak_pub)(void *ctx, uint8_t **pub, size_t *len);
	int (*key)(void *ctx, uint8_t **pub, size_t *len, char **csr);
	int (*activate)(void *ctx, const uint8_t *blob, size_t blob_len,
	    const uint8_t *enc_secret, size_t enc_secret_len, uint8_t *out,
	    size_t outcap, size_t *outlen);
	int (*certify)(void *ctx, const uint8_t *nonce, size_t nonce_len,
	    uint8_t **attest, size_t *attest_len, uint8_t **sig,
	    size_t *sig_len);
	int (*quote)(void *ctx, const uint8_t *nonce, size_t nonce_len,
	    uint32_t mask, uint8_t **attest, size_t *attest_len, uint8_t **sig,
	    size_t *sig_len, uint8_t values[TSI_TPM_PCRS][32]);
	int (*state)(void *ctx, time_t now, int *valid, time_t *renew_at);
	int (*install)(void *ctx, const char *cert_pem, const char *ca_pem,
	    char *reason, size_t reasonlen);
};

/* The local node: cfg and tpm borrowed for out's life. */
struct tsi_enroll_local {
	const struct tsi_issuer_config *cfg;
	struct tsi_tpm *tpm;
};
void tsi_enroll_node_local(struct tsi_enroll_local *l,
    const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    struct tsi_enroll_node *out);

/* The local operations the signer answers requests with (enroll_node.c).
 * tsi_enroll_csr: a CSR (PEM, *csr: free) signed by the TPM key, CN
 * node_name or else the host name; tsi_enroll_key adds the key's
 * TPM2B_PUBLIC. */
int tsi_enroll_csr(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    char **csr);
int tsi_enroll_key(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    uint8_t **pub, size_t *len, char **csr);
int tsi_enroll_install(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    const char *cert_pem, const char *ca_pem, char *reason, size_t reasonlen);

/* Runs the protocol against cfg->attest_url with the node's operations
 * (node borrowed) and installs the certificate it receives. On failure a
 * one-line reason the operator can act on goes to reason, and the result
 * is: TSI_ERR_DENIED (403: refused, e.g. an unregistered EK),
 * TSI_ERR_EXPIRED (410: the session ran out), TSI_ERR_PARSE (400, or an
 * answer not in the protocol's shape), TSI_ERR_TOO_LARGE (413),
 * TSI_ERR_AGAIN (503), TSI_ERR_IO (network, TLS, other statuses, files),
 * TSI_ERR_TPM_UNAVAILABLE or TSI_ERR_TPM (the TPM), TSI_ERR_BAD_CERT (a
 * certificate that does not check), TSI_ERR_CONFIG (no attest_url). It
 * gives up the exchange with tsi-attest as soon as stop(stop_arg) returns
 * nonzero (polled while a request is in flight, about once a second):
 * TSI_ERR_AGAIN, nothing written. stop may be NULL. */
int tsi_enroll_run(const struct tsi_issuer_config *cfg,
    const struct tsi_enroll_node *node, int (*stop)(void *), void *stop_arg,
    char *reason, size_t reasonlen);

/* tsi_enroll_run with the local node of tpm (borrowed). */
int tsi_enroll(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    char *reason, size_t reasonlen);
int tsi_enroll_until(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    int (*stop)(void *), void *stop_arg, char *reason, size_t reasonlen);

/* The state of the node certificate at cfg->node_cert for this TPM at now:
 * *valid = 1 when it is readable, for this TPM key and within its validity;
 * *renew_at = when it enters the last renew_percent of its life (0 when not
 * valid). Returns 1 when enrollment is due (not valid, or renew_at <= now),
 * 0 otherwise. */
int tsi_enroll_due(const struct tsi_issuer_config *cfg, struct tsi_tpm *tpm,
    time_t now, int *valid, time_t *renew_at);

/* A thread that enrolls again when the certificate becomes due (as the
 * node's state says), retrying failures with backoff
 * (TSI_ENROLL_BACKOFF_MIN_S doubling up to TSI_ENROLL_BACKOFF_MAX_S, with
 * jitter), and calls renewed(arg) from that thread after each success
 * (renewed may be NULL). cfg and what node points to are borrowed for its
 * life; node itself is copied. *out: tsi_enroll_keeper_stop (waits for the
 * thread). */
#define TSI_ENROLL_BACKOFF_MIN_S 2
#define TSI_ENROLL_BACKOFF_MAX_S 900
struct tsi_enroll_keeper;
int tsi_enroll_keeper_start(const struct tsi_issuer_config *cfg,
    const struct tsi_enroll_node *node, void (*renewed)(void *), void *arg,
    struct tsi_enroll_keeper **out);
void tsi_enroll_keeper_stop(struct tsi_enroll_keeper *k);

#endif /* TSI_ISSUER_ENROLL_H */
