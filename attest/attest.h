/*
 * attest.h - tsi-attest internals: the registrar and verifier of nodes
 * (docs/attestation.md).
 *
 * A request is turned into a struct attest_req by the HTTP layer (http.c)
 * and answered by a handler picked from the route table (routes.c) into a
 * struct attest_answer; handlers never see a socket, so tests and the fuzz
 * target call attest_dispatch directly.
 */
#ifndef TSI_ATTEST_INTERNAL_H
#define TSI_ATTEST_INTERNAL_H

#include <jansson.h>
#include <lmdb.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "tsi/audit.h"

#define ATTEST_BODY_MAX (64 * 1024)
#define ATTEST_TOKEN_MAX 256
#define ATTEST_NONCE_LEN 32
#define ATTEST_SESSION_LEN 16    /* bytes; 32 hex on the wire */
#define ATTEST_SESSION_TTL 30    /* seconds */
#define ATTEST_PENDING_MAX 10000 /* unknown EKs kept for review */
#define ATTEST_TAGS_MAX 32
#define ATTEST_PCRS 8 /* sha256 PCRs 0..7 are quoted */

struct attest_settings {
	char *listen;
	char *tls_cert, *tls_key;
	char *data_dir;
	char **admin_tokens; /* tokens, wiped when freed */
	size_t n_admin_tokens;
	char **ek_ca; /* PEM files of manufacturer CAs */
	size_t n_ek_ca;
	char *node_ca_cert, *node_ca_key;
	char *pcr_policy_file; /* may be NULL */
	long long cert_days;
	long long map_size;
	long long session_ttl;
	long long threads;
	int dev;
};

/* Named sets of allowed PCR values (pcr_policy.c). */
struct attest_pcr_set {
	uint8_t mask; /* which of PCRs 0..7 are constrained */
	uint8_t value[ATTEST_PCRS][32];
};
struct attest_pcr_policy {
	char *name;
	struct attest_pcr_set *sets;
	size_t n_sets;
};
struct attest_pcr_policies {
	struct attest_pcr_policy *p;
	size_t n;
};

struct attest_metrics {
	unsigned long long enroll_ok, enroll_refused, start_ok, start_refused,
	    requests, reloads_ok, reloads_failed;
};

struct attest {
	const struct attest_settings *set;
	MDB_env *env;
	MDB_dbi db_nodes, db_ek, db_sessions, db_pending;
	struct tsi_audit *audit;
	STACK_OF(X509) *ek_ca; /* trust anchors for EK certificates */
	char *node_ca_pem;     /* answered by GET /v1/node-ca */
	pthread_mutex_t mu;    /* guards pcr (swapped on SIGHUP) */
	struct attest_pcr_policies *pcr;
	struct attest_metrics metrics;
	struct MHD_Daemon *mhd;
	long long started;
};

struct attest_req {
	const char *method;
	const char *path; /* decoded, starts with /v1/ */
	const char *body; /* NUL-terminated, body_len bytes */
	size_t body_len;
	const char *token; /* Authorization: Bearer, or NULL */
	const char *remote;
	char request_id[37];
};

struct attest_answer {
	unsigned status;
	json_t *json; /* owned; sent when text is NULL */
	char *text;   /* owned; sent as-is with content_type */
	const char *content_type;
};

/* routes.c */
/* Answers req into *ans (caller frees with attest_answer_clear). */
void attest_dispatch(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans);
void attest_answer_clear(struct attest_answer *ans);
void attest_answer_error(struct attest_answer *ans, unsigned status,
    const char *msg);
/* 1 when token is one of the admin tokens (constant time per token). */
int attest_admin_ok(const struct attest *a, const char *token);

/* enroll.c */
void attest_enroll_start(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans);
void attest_enroll_finish(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans);

/* nodes.c */
void attest_nodes_register(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans);
void attest_nodes_list(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans);
void attest_nodes_node(struct attest *a, const struct attest_req *req,
    struct attest_answer *ans);

/* store.c: LMDB under data_dir/attest. Values are JSON objects. */
int attest_store_open(struct attest *a, const char *dir, size_t map_size);
void attest_store_close(struct attest *a);
/* Gets key in dbi into *out (caller json_decref). TSI_ERR_NOT_FOUND. */
int attest_store_get(struct attest *a, MDB_txn *txn, MDB_dbi dbi,
    const char *key, json_t **out);
int attest_store_put(MDB_txn *txn, MDB_dbi dbi, const char *key,
    const json_t *val);
int attest_store_del(MDB_txn *txn, MDB_dbi dbi, const char *key);
int attest_store_begin(struct attest *a, int rdonly, MDB_txn **txn);
int attest_store_commit(MDB_txn *txn);
/* Records an unknown EK as pending (bounded count). */
int attest_store_pending(struct attest *a, const char *ek_sha256,
    const char *remote);
/* Removes sessions past their expiry (at most max per call). */
void attest_store_expire(struct attest *a, long long now, size_t max);

/* pcr_policy.c */
/* Loads the policy file; err gets "file:line: reason". *out:
 * attest_pcr_free. */
int attest_pcr_load(const char *path, struct attest_pcr_policies **out,
    char *err, size_t errlen);
void attest_pcr_free(struct attest_pcr_policies *p);
/* The policy named name, borrowed from p; NULL when absent. */
const struct attest_pcr_policy *attest_pcr_find(const struct attest_pcr_policies
                                                    *p,
    const char *name);
/* 1 when values match one of the policy's sets. */
int attest_pcr_match(const struct attest_pcr_policy *pol,
    const uint8_t values[ATTEST_PCRS][32]);

/* audit: one record per decision; TSI_ERR_AUDIT when it was not durable. */
int attest_audit(struct attest *a, const struct attest_req *req, const char *op,
    const char *path, const char *decision, const char *reason,
    const json_t *claims);

/* http.c */
int attest_http_start(struct attest *a, char *err, size_t errlen);
void attest_http_stop(struct attest *a);

/* util */
long long attest_now(void);

#endif /* TSI_ATTEST_INTERNAL_H */
