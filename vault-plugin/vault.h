/*
 * vault.h - internals of tsi-vault shared by its files (not a public API).
 *
 *   main.c      arguments, config file, start-up, signals (SIGHUP reload)
 *   server.c    HTTP on libmicrohttpd: limits, routing, responses
 *   auth.c      POST /v1/auth/trusted-identity/login
 *   tokens.c    the in-memory token table
 *   kv.c        KV v2 under secret/ (authorization, audit, shapes)
 *   store.h     the storage interface; store_lmdb.c its LMDB implementation
 *   crypto.c    AES-256-GCM of KV values, the key file
 *   auditlog.c  audit records for every decision; GET /v1/sys/audit/releases
 *   login_limit.c  per-source limits on failed logins
 *   sys.c       /v1/sys/health, /v1/auth/token/{lookup,renew,revoke}-self
 *   token_admin.c  /v1/auth/token/{create,lookup,lookup-accessor,
 *               revoke-accessor}; the evaluation of created tokens' roles
 *   metrics.c   counters and histograms
 *   policies.c  the policy set at start-up and reload, the last good set
 */
#ifndef TSI_VAULT_H
#define TSI_VAULT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store.h"
#include "tsi/audit.h"
#include "tsi/audit_sink.h"
#include "tsi/buf.h"
#include "tsi/jwt.h"
#include "tsi/policy.h"
#include "tsi/tls.h"

#define VAULT_VERSION_STR "tsi-vault " TSI_VERSION
#define VAULT_LOGIN_MAX_BODY (64 * 1024)
/* A chunked body over its limit is read on (and thrown away) for up to this
 * many more bytes so that 413 can be answered; beyond, the connection is
 * dropped. */
#define VAULT_DRAIN_MAX ((size_t)16 * 1024 * 1024)
/* libmicrohttpd's memory per connection (request line, headers, read
 * buffer; bodies stream through it into the request's own buffer). It is
 * zeroed on every keep-alive request, so its size is paid per request:
 * 16 KiB, half the library's default, still takes a 15 KB header (431
 * beyond). */
#define VAULT_CONN_MEMORY (16 * 1024)
#define VAULT_TOKEN_MAX 256          /* longer X-Vault-Token values are refused unread */
#define VAULT_ACCESSOR_LEN 24

/* Settings, from the config file or the --dev flags. All strings owned. */
struct vault_settings {
	int dev;
	char *listen;
	char *tls_cert;
	char *tls_key;
	char *data_dir;
	char *policy_dir;
	char **trust_ca;
	size_t n_trust_ca;
	char *audience;
	char *kv_key_file;
	char *root_token_file;
	char *dev_root_token;
	char *revocation_file;
	char *cluster_name;
	size_t max_body;
	long long threads;
	long long workers;
	long long conn_limit;
	long long per_ip_limit;
	long long conn_timeout;
	long long request_timeout;
	long long max_tokens;
	size_t kv_map_size;
	long long kv_max_versions;
	size_t audit_map_size;
	size_t audit_map_max;
	long long audit_commit_timeout_ms;
	long long audit_batch_max;
	long long audit_commit_delay_us;
	long long audit_retain_seconds;
	size_t audit_retain_bytes;
	char *audit_head_key;
	long long audit_head_interval;
	/* Added with issue 15.1 (docs/vault.md "Failed logins"): */
	long long login_fail_limit;     /* per source and window; 0: off */
	long long login_fail_window;    /* seconds */
	long long audit_reserve_bytes;  /* -1: 1/8 of the largest map */
	long long audit_keep_allow_s;   /* audit_release_min_age */
	struct vault_sinks_cfg *audit_sinks; /* audit_sinks; NULL: none */
};

void vault_settings_clear(struct vault_settings *s);

/* ---- crypto.c ---- */
struct vault_key {
	unsigned char k[32];
};
/* The key file must be a regular file of mode 0600 (or stricter) holding 32
 * raw bytes or 64 hex digits (one trailing newline allowed). */
int vault_key_load(const char *path, struct vault_key *out, char *err,
    size_t errlen);
int vault_key_random(struct vault_key *out);
void vault_key_wipe(struct vault_key *k);
/* AES-256-GCM with path and version as associated data.
 * *blob: caller frees with tsi_freezero(*blob, *len). */
int vault_seal(const struct vault_key *k, const char *path, uint64_t version,
    const void *pt, size_t ptlen, uint8_t **blob, size_t *len);
/* *pt: NUL-terminated, caller frees with tsi_freezero(*pt, *ptlen + 1).
 * TSI_ERR_CRYPTO when the blob was altered or moved to another path/version. */
int vault_unseal(const struct vault_key *k, const char *path, uint64_t version,
    const uint8_t *blob, size_t len, char **pt, size_t *ptlen);
/* Random bytes as base64url; out must hold 4*(n+2)/3+1 bytes. */
int vault_random_b64(size_t n, char *out, size_t outlen);
/* A random UUID (v4) into out[37]. */
void vault_uuid(char out[37]);

/* ---- tokens.c ---- */
struct vault_tokens;

/* What a token stands for; a copy owned by the caller (vault_token_clear). */
struct vault_token {
	char accessor[VAULT_ACCESSOR_LEN + 1];
	char role[128];
	json_t *claims;     /* reference; never modified once stored */
	json_t *policies;   /* array of rule names (login), of role names
	                       (created); reference */
	int root;
	int created;        /* by auth/token/create: policies name roles */
	char display_name[128]; /* "" for login tokens */
	time_t issued;
	time_t expires;     /* 0: never */
};
void vault_token_clear(struct vault_token *t);

/* What vault_tokens_add makes. Everything borrowed for the call. */
struct vault_token_spec {
	const char *fixed;          /* NULL: random; else this value (root) */
	const char *role;
	const char *display_name;   /* NULL: "" */
	json_t *claims;             /* referenced */
	json_t *policies;           /* referenced */
	long ttl;                   /* <= 0: never expires */
	time_t expires_at;          /* > 0: never later than this instant */
	int root;
	int created;
	/* The verified certificate path the token came through (copied):
	 * vault_tokens_end_untrusted ends the token once it fails. */
	const struct tsi_chain_cert *chain;
	size_t nchain;
};

int vault_tokens_new(size_t max_tokens, struct vault_tokens **out);
void vault_tokens_free(struct vault_tokens *t);   /* wipes every entry */
/* Creates a token (fixed != NULL: use that value, for the root token).
 * claims and policies are borrowed (referenced). *token: tsi_strfree. */
int vault_tokens_create(struct vault_tokens *t, const char *fixed,
    const char *role, json_t *claims, json_t *policies, long ttl, int root,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1]);
/* TSI_ERR_NOT_FOUND (unknown), TSI_ERR_EXPIRED, or TSI_OK with *out filled.
 * Costs one SHA-256 and a table lookup: no disk. */
int vault_tokens_lookup(struct vault_tokens *t, const char *token,
    struct vault_token *out);
/* Removes the token: from return on, every lookup of it fails (as for an
 * unknown token). TSI_ERR_NOT_FOUND when it was not there (never issued,
 * expired and swept, or revoked already). */
int vault_tokens_revoke(struct vault_tokens *t, const char *token);
size_t vault_tokens_count(struct vault_tokens *t);
/* As vault_tokens_create, with every attribute. *token: tsi_strfree. */
int vault_tokens_add(struct vault_tokens *t, const struct vault_token_spec *s,
    char **token, char accessor[VAULT_ACCESSOR_LEN + 1]);
/* By accessor (an admin's view): TSI_ERR_NOT_FOUND, TSI_ERR_EXPIRED, or
 * TSI_OK with *out filled (vault_token_clear). Walks the whole table. */
int vault_tokens_lookup_accessor(struct vault_tokens *t, const char *accessor,
    struct vault_token *out);
/* Removes the token with this accessor; TSI_ERR_NOT_FOUND when none. */
int vault_tokens_revoke_accessor(struct vault_tokens *t, const char *accessor);
/* Ends every token whose certificate path trust no longer accepts
 * (tsi_trust_chain_check; trust NULL: no CA, every such token ends). Tokens
 * made without a path (root, created) stay. Returns how many ended; each is
 * logged with its accessor. */
size_t vault_tokens_end_untrusted(struct vault_tokens *t,
    const struct tsi_trust *trust);
/* Whether the token still passes trust (for a login that raced a reload):
 * TSI_OK, TSI_ERR_BAD_TOKEN, or TSI_ERR_NOT_FOUND. */
int vault_tokens_chain_check(struct vault_tokens *t, const char *token,
    const struct tsi_trust *trust);

/* ---- login_limit.c ---- */
/* Per-source limits on failed logins. limit 0: off (every call a no-op).
 * slots bounds the memory. *out: vault_limiter_free. Thread-safe. */
struct vault_limiter;
int vault_limiter_new(unsigned limit, unsigned window_s, size_t slots,
    struct vault_limiter **out);
void vault_limiter_free(struct vault_limiter *l);   /* accepts NULL */
/* Before a login: 0 to go on, or the seconds until remote's window ends
 * when it is over its limit (the refusal is counted for the aggregate
 * record; *first is 1 for the first refusal of the window). */
unsigned vault_limiter_check(struct vault_limiter *l, const char *remote,
    time_t now, int *first);
/* A failed login from remote. */
void vault_limiter_fail(struct vault_limiter *l, const char *remote,
    time_t now);
/* For each source whose window ended with refusals: fn(arg, source,
 * refusals, window start, window length), once, at most max (8) per
 * call and one pass a second. Returns how many. fn runs unlocked. */
size_t vault_limiter_drain(struct vault_limiter *l, time_t now,
    void (*fn)(void *arg, const char *src, unsigned count, time_t start,
    unsigned window), void *arg, size_t max);
/* Sources over their limit now. */
size_t vault_limiter_throttled(struct vault_limiter *l, time_t now);

/* ---- metrics.c ---- */
enum vault_route {
	VR_LOGIN = 0,
	VR_KV_DATA,
	VR_KV_METADATA,
	VR_HEALTH,
	VR_METRICS,
	VR_AUDIT,
	VR_TOKEN,
	VR_SYS,
	VR_OTHER,
	VR__COUNT
};
const char *vault_route_name(enum vault_route r);

#define VAULT_HIST_BUCKETS 12
struct vault_hist {
	uint64_t bucket[VAULT_HIST_BUCKETS];  /* cumulative at render time */
	uint64_t count;
	uint64_t sum_us;
};
#define VAULT_STATUS_SLOTS 12
struct vault_metrics {
	uint64_t req[VR__COUNT][VAULT_STATUS_SLOTS];
	struct vault_hist login;
	struct vault_hist read;
	uint64_t audit_append_failures;
	uint64_t reloads_ok, reloads_failed;
	/* Policy directories refused (the set in force stayed): invalid,
	 * or a file that had rules and has none; stale is 1 while the set in
	 * force is not the directory's files. */
	uint64_t policy_refused_invalid, policy_refused_dropped;
	int policy_stale;
	uint64_t login_throttled;       /* logins answered 429 */
	uint64_t login_throttled_recorded; /* of those, in durable records */
};
void vault_metrics_request(struct vault_metrics *m, enum vault_route r,
    unsigned status);
void vault_metrics_observe(struct vault_hist *h, long long us);

/* ---- the server ---- */
/* A trust store with a reference count, swapped whole on SIGHUP. */
struct vault_trust {
	struct tsi_trust *trust;
	int refs;
};

struct vault {
	struct vault_settings *set;
	struct MHD_Daemon *mhd;
	pthread_mutex_t mu;                 /* guards policy and trust */
	struct tsi_policy_set *policy;      /* may be NULL: every role unknown */
	struct vault_trust *trust;          /* may be NULL: no login possible */
	struct vault_tokens *tokens;
	struct kv_store *store;
	struct vault_key key;
	struct tsi_audit *audit;
	char *audit_dir;
	struct tsi_audit_reader *audit_reader;
	struct tsi_audit_sinks *sinks;      /* audit_sinks; NULL: none */
	pthread_mutex_t reader_mu;          /* one query at a time on the reader */
	struct vault_metrics metrics;
	/* Worker pool: requests that may block (audit commit, JWT checks) run
	 * here while their connection is suspended, so that MHD's threads keep
	 * serving other connections. */
	pthread_mutex_t wq_mu;
	pthread_cond_t wq_cv;
	struct vault_req *wq_head, *wq_tail;
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
	int async_stopping;                 /* no new submissions: wait instead */
	time_t started;
	char cluster_id[37];
	/* TLS certificate and key, replaced on SIGHUP (NULL in dev mode). */
	struct tsi_tls_creds *tls;
	/* Request deadline and connection reserve (guard.c). */
	struct vault_guard *guard;
	struct vault_limiter *login_limit;  /* failed logins per source */
};

/* ---- policies.c ---- */
/* Start-up: loads policy_dir into v->policy (NULL when there is none). When
 * it does not load, or drops rules compared with the last good set kept in
 * data_dir, that set is put in force instead (logged at error level, the
 * stale gauge set). TSI_OK, or the loader's error with "file:line: reason"
 * in err when there is no last good set. Only reads: call before data_dir
 * is created. */
int vault_policy_start(struct vault *v, char *err, size_t errlen);
/* SIGHUP: loads policy_dir and checks it against the set in force. *out:
 * the new set for the caller to swap in (it owns it), or NULL. Returns 1
 * when nothing was refused, 0 when the set in force must stay (logged,
 * counted, stale gauge set). */
int vault_policy_prepare(struct vault *v, struct tsi_policy_set **out);
/* Keeps the set in force as the last good set in data_dir. from_dir: it was
 * just loaded from policy_dir (clears the stale gauge); otherwise nothing is
 * written while the set in force is the last good copy itself. */
void vault_policy_keep(struct vault *v, int from_dir);
/* ---- guard.c: slots for callers that send whole requests ---- */
struct vault_guard;
/* Starts the reaper (request_timeout, connection_limit from v->set);
 * before the MHD daemon. */
int vault_guard_start(struct vault *v);
/* After the MHD daemon has stopped. NULL guard is fine. */
void vault_guard_stop(struct vault *v);
/* For MHD_OPTION_NOTIFY_CONNECTION, with v as its closure. */
MHD_NotifyConnectionCallback vault_guard_notify(void);
/* The connection's request is complete (busy: no deadline), or its answer
 * is done (receiving again: the deadline restarts). */
void vault_guard_busy(struct vault *v, struct MHD_Connection *c);
void vault_guard_idle(struct vault *v, struct MHD_Connection *c);
/* Appends the connection gauges and counters (Prometheus text). */
int vault_guard_metrics(struct vault *v, struct tsi_buf *b);

/* ---- sinks.c (docs/audit.md "Sinks") ---- */
struct tsi_config;
struct vault_sinks_cfg;
/* The audit_sinks setting of c: *out NULL when absent, else
 * vault_sinks_cfg_free. TSI_ERR_CONFIG with "file:line: why" in err. */
int vault_sinks_parse(const struct tsi_config *c, struct vault_sinks_cfg **out,
    char *err, size_t errlen);
void vault_sinks_cfg_free(struct vault_sinks_cfg *sc);   /* accepts NULL */
/* Starts the configured sinks on v->audit (open) with their positions in
 * DATA_DIR/audit-sinks; stop before tsi_audit_close. */
int vault_sinks_start(struct vault *v);
void vault_sinks_stop(struct vault *v);
void vault_sinks_reopen(struct vault *v);    /* SIGHUP: file sinks */
int vault_sinks_metrics(struct vault *v, struct tsi_buf *b);

/* Current policy set and trust, referenced; release with the put functions. */
struct tsi_policy_set *vault_policy_get(struct vault *v);
struct vault_trust *vault_trust_get(struct vault *v);
void vault_trust_put(struct vault *v, struct vault_trust *t);

/* One HTTP request. */
struct vault_req {
	struct vault *v;
	struct MHD_Connection *conn;
	const char *method;          /* borrowed from MHD */
	char *path;                  /* percent-decoded path after "/v1/" */
	enum vault_route route;
	struct tsi_buf *body;
	int too_large;              /* 413 decided; the body is not kept */
	size_t drained;             /* bytes thrown away since (drain) */
	/* The answer, made by a handler (in a worker or inline) and queued to
	 * MHD by the access handler: MHD wants responses queued from there. */
	int ready;
	int sent;
	unsigned resp_status;
	const char *resp_ctype;
	char *resp_text;            /* owned until queued */
	struct vault_req *next;     /* worker queue link */
	char request_id[37];
	char remote[64];
	struct timespec t0;
	/* The audit record of a request handled on MHD's thread: submitted
	 * by vault_audit while the connection is suspended; the answer made
	 * meanwhile is sent only when the record is durable, and replaced by
	 * 503 (wiped) when it is not. */
	int audit_async;            /* vault_audit may submit without waiting */
	int audit_submitted;        /* submitted; the callback resumes us */
	int audit_done;             /* atomic: the callback ran */
	int audit_rc;               /* atomic: its outcome */
	unsigned retry_after;       /* > 0: a Retry-After header (seconds) */
	/* Set by vault_req_auth. */
	int authed;
	struct vault_token tok;
};

/* Percent-decodes s once (strict: %XX hex only; %00 and control bytes
 * refused). *out: free(). TSI_ERR_PARSE on bad input. */
int vault_pct_decode(const char *s, size_t max, char **out);
/* parse.c: KV path syntax: segments separated by single '/', none empty,
 * "." or "..", at most KV_PATH_MAX bytes, valid UTF-8. dir_ok: "" and a
 * trailing '/' are allowed (listing). Returns 1 when valid. */
int vault_kv_path_valid(const char *p, int dir_ok);
/* Go's strconv.ParseBool (s borrowed): TSI_OK and *out 0 or 1, or
 * TSI_ERR_PARSE for any other spelling. */
int vault_parse_bool(const char *s, int *out);
/* parse.c: {"role": S, "jwt": S} (duplicate keys refused). On TSI_OK *req
 * is owned by the caller (json_decref) and role/jwt point into it. */
int vault_login_parse(const char *body, size_t len, json_t **req,
    const char **role, const char **jwt);
/* parse.c: {"data": {...}, "options": {"cas": N>=0}?}. On TSI_OK *req is
 * the caller's (json_decref), *data borrowed from it, *cas -1 when absent. */
int vault_kv_write_parse(const char *body, size_t len, json_t **req,
    json_t **data, long long *cas);
/* kv.c: {"versions":[N,...]} of secret/delete|undelete|destroy (integers
 * or strings of digits, 1 to 1000 of them). *v: malloc'd, caller frees.
 * TSI_ERR_PARSE otherwise (*v NULL). */
int vault_kv_versions_parse(const char *body, size_t len, uint64_t **v,
    size_t *n);
/* kv.c: the body of POST (patch 0) or PATCH (patch 1) secret/metadata/P:
 * max_versions, cas_required, delete_version_after (Go's duration of
 * h/m/s, or seconds), custom_metadata (Vault's bounds). *req: the parsed
 * body, caller json_decref; c->custom borrows from it. TSI_ERR_PARSE with
 * *msg the 400's message (static) and *req NULL. */
int vault_kv_meta_parse(const char *body, size_t len, int patch,
    json_t **req, struct kv_meta_cfg *c, const char **msg);
/* A query argument, decoded; NULL when absent. *err set on bad encoding.
 * Caller frees. */
char *vault_query_arg(struct vault_req *r, const char *name, int *err);

/* Looks up X-Vault-Token. TSI_OK (r->tok filled, r->authed = 1),
 * TSI_ERR_DENIED (missing, unknown or expired: reason says which). */
int vault_req_auth(struct vault_req *r, const char **reason);
/* The token the caller sent (X-Vault-Token, else Authorization: Bearer),
 * borrowed from MHD; NULL when none. */
const char *vault_req_token(struct vault_req *r);

/* Responses. body is stolen (may be NULL for an empty body). Returns the
 * MHD result to hand back to MHD. */
enum MHD_Result vault_respond(struct vault_req *r, unsigned status,
    json_t *body);
enum MHD_Result vault_respond_text(struct vault_req *r, unsigned status,
    const char *content_type, char *text /* stolen, malloc'd */);
enum MHD_Result vault_respond_error(struct vault_req *r, unsigned status,
    const char *msg);
/* {"errors":[]} as Vault sends for 404. */
enum MHD_Result vault_respond_not_found(struct vault_req *r);
/* The Vault envelope: request_id, lease_id, renewable, lease_duration, data,
 * wrap_info, warnings, auth. data and auth are stolen (NULL: null). */
json_t *vault_envelope(struct vault_req *r, json_t *data, json_t *auth);
/* RFC 3339 with nanoseconds in UTC, as Vault prints times. */
void vault_time_str(long long us, char *out, size_t outlen);
long long vault_now_us(void);

/* 1 when listen ("ADDR:PORT", "[V6]:PORT") is a loopback address, 0 when
 * it is another address, -1 when it does not parse. */
int vault_listen_is_loopback(const char *listen);
/* Starts the workers, then the listener. */
int vault_server_start(struct vault *v, char *err, size_t errlen);
/* Drains and joins the workers (requests in flight finish), then stops the
 * listener. */
void vault_server_stop(struct vault *v);
/* SIGHUP: reads tls_cert and tls_key again; a pair that fails the checks
 * (tsi_tls_creds_reload) is logged and the current one kept. */
int vault_server_tls_reload(struct vault *v);

/* server.c: counts a callback to come (1), or 0 when the server is
 * stopping (then wait for the record instead). */
int vault_async_begin(struct vault *v);
/* The audit callback of an async request: records the outcome, resumes
 * the connection, and no longer touches r. */
void vault_async_done(void *arg, int rc, uint64_t seq);

/* ---- handlers ---- */
enum MHD_Result vault_auth_login(struct vault_req *r);
enum MHD_Result vault_kv_handle(struct vault_req *r);
/* kv.c: the answer to a read of version m, with pt (the stored value's
 * JSON text, ptlen bytes; NULL: "data": null) spliced in as it is: byte for
 * byte what vault_respond(vault_envelope({"data": value, "metadata": ...}))
 * gives. *out: NUL-terminated, holds the secret; caller frees with
 * tsi_strfree (or hands it to vault_respond_text). */
int vault_kv_read_answer(const char *request_id, const char *pt,
    size_t ptlen, const struct kv_version_meta *m, char **out);
enum MHD_Result vault_sys_health(struct vault_req *r);
enum MHD_Result vault_sys_metrics(struct vault_req *r);
/* sys.c: sys/seal-status, sys/init, sys/leader, sys/mounts, sys/auth and
 * sys/internal/ui/mounts/<path>, by r->path. */
enum MHD_Result vault_sys_info(struct vault_req *r);
/* The 404 for a path no route serves, with Vault's message. */
enum MHD_Result vault_respond_no_route(struct vault_req *r);
enum MHD_Result vault_token_lookup_self(struct vault_req *r);
/* auth/token/{lookup,renew,revoke}-self, by r->path. */
enum MHD_Result vault_token_self(struct vault_req *r);
enum MHD_Result vault_audit_releases(struct vault_req *r);
/* token_admin.c: auth/token/create, lookup, lookup-accessor,
 * revoke-accessor, by r->path. */
enum MHD_Result vault_token_admin(struct vault_req *r);
/* token_admin.c: Vault's lookup "data" for t; id: the token itself (NULL
 * when looked up by accessor: ""). Caller json_decref. */
json_t *vault_token_lookup_data(const struct vault_token *t, const char *id);
/* token_admin.c: the policy decision for r's token (not root) on path:
 * a login token by its role; a created token by each of its roles (allowed
 * when one allows; a deny rule applies to every role alike). p may be
 * NULL (default deny). Same return as tsi_policy_eval. */
int vault_token_eval(const struct tsi_policy_set *p,
    const struct vault_token *tok, const char *path, int cap,
    struct tsi_decision *d);

/* ---- auditlog.c ---- */
struct vault_audit_rec {
	const char *op;          /* login, read, write, list, delete, patch,
	                          * undelete, destroy, ... */
	const char *path;
	long long version;       /* 0: none */
	const char *decision;    /* allow, deny, error */
	const char *rule;
	const char *reason;
	const json_t *claims;    /* NULL: {} */
	const char *accessor;    /* NULL: "" */
	unsigned status;
	/* A change (write, delete) is recorded twice: its decision before
	 * the store is touched (phase "decision", no status: the outcome is
	 * not known yet) and its outcome after (phase "outcome", the status
	 * answered, ref_seq the decision's seq). NULL: a one-record decision. */
	const char *phase;
	uint64_t ref_seq;        /* 0: none */
	uint64_t *seq_out;       /* NULL, or receives the record's seq (the
	                          * waiting path only) */
	const json_t *extra;     /* NULL, or an object whose members are
	                          * added to the record (borrowed) */
};
/* Appends the record (with the request's id and remote address) and waits
 * until it is durable. TSI_ERR_AUDIT: answer 503, release nothing.
 * For a request with audit_async set (reads and logins on MHD's thread),
 * the first record is submitted instead: the connection is suspended,
 * TSI_OK returned at once, and the server sends the answer the handler
 * then makes only once the record is durable (503 otherwise). */
int vault_audit(struct vault_req *r, const struct vault_audit_rec *rec);
/* The aggregate records of failed logins refused by the per-source limit
 * whose window ended (vault_limiter_drain), submitted without waiting. */
void vault_audit_throttled(struct vault_req *r);
/* 503 {"errors":["audit log unavailable"]}. */
enum MHD_Result vault_respond_audit_failed(struct vault_req *r);

#endif /* TSI_VAULT_H */
