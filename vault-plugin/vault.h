/*
 * vault.h - struct vault, the context every part of tsi-vault is handed
 * (not a public API). Each module has its own header:
 *
 *   settings.h  the settings (main.c reads them: config file, --dev)
 *   server.h    server.c: HTTP on libmicrohttpd (limits, bodies,
 *               suspend/resume, workers, answers); knows no URL
 *   routes.h    routes.c: the route table, and the handlers it names
 *   http.h      request.c: the request a handler reads, the answer it fills
 *   auth.h      auth.c: POST /v1/auth/trusted-identity/login (decision and
 *               response)
 *   kv.h        kv.c: KV v2 under secret/ (authorization, audit, shapes)
 *   tokens.h    tokens.c: the in-memory token table
 *   token_eval.h  token_eval.c: what a token may do, its lookup view
 *   store.h     the storage interface; store_lmdb.c its LMDB implementation
 *   crypto.h    crypto.c: AES-256-GCM of KV values, the key file
 *   auditlog.h  auditlog.c: audit records for every decision
 *               (audit_query.c: GET /v1/sys/audit/releases)
 *   login_limit.h  per-source limits on failed logins
 *   metrics.h   metrics.c: counters and histograms, GET /v1/sys/metrics
 *   policies.h  policies.c: the policy set at start-up and reload
 *   guard.h     guard.c: request deadlines and connection slots
 *   parse.h     parse.c: parsers of request bytes (fuzzed)
 *   mounts.h    mounts.c: the paths policies speak of
 *   sys.c       sys/health, the probes of Vault clients, the token's own
 *               endpoints; token_admin.c auth/token/{create,lookup,...}
 *
 * Calls go one way: server -> routes -> handlers -> services (auditlog,
 * tokens, token_eval, store, crypto, metrics, request helpers); nothing
 * calls back into server.c.
 */
#ifndef TSI_VAULT_H
#define TSI_VAULT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "crypto.h"
#include "metrics.h"
#include "tsi/jwt.h"
#include "tsi/policy.h"

struct MHD_Daemon;
struct kv_store;
struct tsi_audit;
struct tsi_audit_reader;
struct tsi_audit_sinks;
struct tsi_tls_creds;
struct vault_guard;
struct vault_http_req;
struct vault_limiter;
struct vault_settings;
struct vault_tokens;

/* A trust store with a reference count, swapped whole on SIGHUP. */
struct vault_trust {
	struct tsi_trust *trust;
	int refs;
};

struct vault {
	struct vault_settings *set;
	struct MHD_Daemon *mhd;
	pthread_mutex_t mu;            /* guards policy and trust */
	struct tsi_policy_set *policy; /* may be NULL: every role unknown */
	struct vault_trust *trust;     /* may be NULL: no login possible */
	struct vault_tokens *tokens;
	struct kv_store *store;
	struct vault_key key;
	struct tsi_audit *audit;
	char *audit_dir;
	struct tsi_audit_reader *audit_reader;
	pthread_mutex_t reader_mu; /* one query at a time on the reader */
	struct vault_metrics metrics;
	/* Worker pool: requests that may block (audit commit, JWT checks) run
	 * here while their connection is suspended, so that MHD's threads keep
	 * serving other connections. */
	pthread_mutex_t wq_mu;
	pthread_cond_t wq_cv;
	struct vault_http_req *wq_head, *wq_tail; /* server.c's */
	int wq_stopping;
	pthread_t *workers;
	size_t n_workers;
	/* Reads and logins run on MHD's threads and submit their audit record
	 * without waiting (vault_audit); the connection stays suspended until
	 * the record's callback. async_pending counts those callbacks still
	 * to come: the server stops only once it is 0. */
	pthread_mutex_t async_mu;
	pthread_cond_t async_cv;
	unsigned async_pending;
	int async_stopping; /* no new submissions: wait instead */
	time_t started;
	char cluster_id[37];
	/* TLS certificate and key, replaced on SIGHUP (NULL in dev mode). */
	struct tsi_tls_creds *tls;
	/* Request deadline and connection reserve (guard.c). */
	struct vault_guard *guard;
	struct vault_limiter *login_limit; /* failed logins per source */
	struct tsi_signer *head_signer;    /* signs the audit chain head */
	struct tsi_audit_sinks *sinks;     /* audit_sinks; NULL: none */
	char *dev_dir;                     /* dev mode's data_dir: removed
	                                     * on close */
};

/* Current policy set and trust, referenced; release with the put functions. */
struct tsi_policy_set *vault_policy_get(struct vault *v);
struct vault_trust *vault_trust_get(struct vault *v);
void vault_trust_put(struct vault *v, struct vault_trust *t);

#endif /* TSI_VAULT_H */
