/*
 * attest_fixture.h - a running tsi-attest --dev (started by PID, stopped
 * and reaped) and the node side of enrollment over HTTP with libcurl.
 */
#ifndef TSI_TEST_ATTEST_FIXTURE_H
#define TSI_TEST_ATTEST_FIXTURE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/support/tpm_node.h"

#define ATTEST_TEST_TOKEN "test-admin-token-0123456789"

struct attest_srv {
	pid_t pid;
	int port;
	char addr[96]; /* http://127.0.0.1:P */
	char data_dir[512];
	char out[300]; /* stdout file */
	char err[300]; /* stderr file (JSON log lines) */
	char scratch[256];
};

/* Starts tsi-attest --dev with --ek-ca ek_ca (may be NULL) and
 * --pcr-policy pcr_policy (may be NULL); waits for /v1/health. */
int attest_srv_start(struct attest_srv *s, const char *ek_ca,
    const char *pcr_policy);
void attest_srv_stop(struct attest_srv *s);

/* One HTTP request; *out gets the parsed JSON answer (NULL when none;
 * caller json_decref). Returns the HTTP status, or -1. raw_body, when not
 * NULL, is sent as-is instead of body. */
long attest_http(struct attest_srv *s, const char *method, const char *path,
    const char *token, const json_t *body, const char *raw_body, json_t **out);

/* The node's evidence for enroll/start, from the files tpm_node_make_keys
 * wrote; with_cert 0 leaves ek_cert out. csr_san: see tpm_node_csr.
 * Caller json_decref. */
json_t *attest_start_body(struct tpm_node *n, int with_cert,
    const char *csr_san);

/* The finish body: proof from secret, certify of object and a quote over
 * nonce (the session's unless quote_nonce is given). */
json_t *attest_finish_body(struct tpm_node *n, const char *session,
    const uint8_t *secret, size_t secret_len, uint32_t object,
    const uint8_t nonce[32], const uint8_t *quote_nonce);

/* Activates the answer of enroll/start in n's TPM. 0 and *secret (caller
 * frees) on success. */
int attest_activate(struct tpm_node *n, const json_t *start_answer,
    uint8_t **secret, size_t *len);

/* Registers node name for n's EK (by certificate, or by hash when
 * by_hash). Returns the HTTP status. */
long attest_register(struct attest_srv *s, struct tpm_node *n, const char *name,
    const char *dc, const char *pcr_policy, int by_hash);

/* The whole protocol for n (csr_san: see tpm_node_csr); returns the
 * status of the last step, *answer its body. */
long attest_enroll(struct attest_srv *s, struct tpm_node *n,
    const char *csr_san, json_t **answer);

/* Number of audit records (tsi audit list --data-dir, JSON) containing
 * needle. */
int attest_audit_has(struct attest_srv *s, const char *needle);

/* The session's nonce from a start answer. */
int attest_nonce(const json_t *start_answer, uint8_t nonce[32]);

/* Lines of the server's log containing needle (bounded). */
int attest_log_has(struct attest_srv *s, const char *needle);

/* Hex of n's EK SHA-256 into out[65]. */
int attest_ek_hash(struct tpm_node *n, char out[65]);

#endif
