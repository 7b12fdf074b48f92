/*
 * audit.h - the hash-chained audit log in LMDB (CONTRACT "Audit").
 *
 * The writer (tsi-vault) appends one record per decision. Records are handed
 * to a single committer thread that writes them in batches, one synced LMDB
 * transaction per batch (group commit); tsi_audit_append returns only once
 * the record is durable, or fails after the configured bound. Each record
 * carries hash = SHA-256(prev_hash || canonical JSON of the record).
 *
 * The reader (tsi audit, the HTTP audit endpoint) opens the same environment
 * read-only while the server runs.
 */
#ifndef TSI_AUDIT_H
#define TSI_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "tsi/signer.h"

struct tsi_audit;

struct tsi_audit_opts {
	size_t map_size;          /* LMDB map size in bytes; 0: 1 GiB */
	int commit_timeout_ms;    /* bound on append; 0: 2000 */
	size_t batch_max;         /* records per transaction; 0: 256 */
	long long retain_seconds; /* prune older records; 0: keep forever */
	size_t retain_bytes; /* prune oldest beyond this size; 0: no limit */
	const struct tsi_signer
	    *head_signer;         /* signs the chain head; may be NULL */
	int head_sign_interval_s; /* 0: 60 */
	/* Added after the first version (zero-initialise the struct): */
	size_t map_max; /* on a full map, grow it up to this; 0: never */
	/* Group-commit hold, in microseconds (a slice); 0: off. When the
	 * committer wakes from idle for a record and the last batch had two
	 * or more records (or two are queued already), it waits while
	 * records keep arriving, at least one per slice, up to 8 slices,
	 * before it syncs: a burst that starts on an idle log (a client's
	 * parallel requests) shares one commit. A caller alone never waits;
	 * back-to-back commits are never held. Durability is unchanged. */
	int commit_delay_us;
	/* Room kept for authenticated callers (added with issue 15.1): while
	 * the log's free room (the largest map it may have, less the live
	 * pages of records and indexes) is below reserve_bytes, a record
	 * submitted with TSI_AUDIT_UNAUTH is refused (TSI_ERR_AUDIT, counted
	 * in reserve_refused); others still use it. 0: no reserve. */
	size_t reserve_bytes;
	/* Pruning by size (retain_bytes, and on a full map) never removes a
	 * record with decision "allow" younger than this many seconds: it
	 * stops there (pruning is oldest first), and a full log then refuses
	 * unauthenticated records first (reserve_bytes). Pruning by age
	 * (retain_seconds) is not held. 0: no floor. */
	long long keep_allow_s;
};

/* Submission flags. */
#define TSI_AUDIT_UNAUTH 1u /* a decision about an unauthenticated caller */

/* Opens (creating) the audit environment in dir. *out: tsi_audit_close.
 * opts is copied (head_signer is borrowed until tsi_audit_close). One writer
 * per dir, across processes: TSI_ERR_EXISTS when another has it. In one
 * process, open the writer before any reader of the same dir. */
int tsi_audit_open(const char *dir, const struct tsi_audit_opts *opts,
    struct tsi_audit **out);
void tsi_audit_close(struct tsi_audit *a); /* drains the queue first */

/* The same, for a log named by URL: "lmdb:///abs/dir" is
 * tsi_audit_open("/abs/dir"); the scheme picks the backend (docs/audit.md
 * "Backends"). TSI_ERR_INVALID_ARG for an unknown scheme or an address
 * that is not an absolute path. */
int tsi_audit_open_url(const char *url, const struct tsi_audit_opts *opts,
    struct tsi_audit **out);

/*
 * Appends a record and waits until it is durable. rec is borrowed and holds
 * the decision's fields: "op", "path", "version", "decision" ("allow" |
 * "deny" | "error"), "rule", "reason", "claims" (object), "accessor",
 * "remote", "request_id", "status". The writer adds "seq", "time" (RFC 3339
 * with microseconds), "time_us", "prev" and "hash". Returns TSI_OK with *seq
 * set, or TSI_ERR_AUDIT when it could not be committed within the bound (the
 * caller must then answer 503 and release nothing). Thread-safe.
 */
int tsi_audit_append(struct tsi_audit *a, const json_t *rec, uint64_t *seq);

/*
 * The same, without waiting. rec is borrowed for the call: it is checked,
 * stripped and serialised here, in the caller's thread. On TSI_OK, cb(arg,
 * rc, seq) runs exactly once, later, from one of the log's own threads and
 * with no lock of the log held: rc TSI_OK with seq once the record is
 * durable, or TSI_ERR_AUDIT (seq 0) when it was not committed within the
 * bound (commit_timeout_ms from the call, even while a commit hangs; a
 * record that then lands late is annotated as tsi_audit_append's are). cb
 * must not block for long (it delays other records' callbacks) and must
 * not call tsi_audit_close. Any other return: rec was refused (bad record
 * TSI_ERR_INVALID_ARG, too large TSI_ERR_TOO_LARGE, closing TSI_ERR_AUDIT)
 * and cb is never called. Thread-safe. tsi_audit_append is this plus a
 * wait.
 */
typedef void (*tsi_audit_done_cb)(void *arg, int rc, uint64_t seq);
int tsi_audit_submit(struct tsi_audit *a, const json_t *rec,
    tsi_audit_done_cb cb, void *arg);

/*
 * Claims serialised once for many records (added after the first
 * version). A caller that submits many records with the same claims object
 * (tsi-vault: a token's claims, never modified once stored) checks and
 * serialises them once here; tsi_audit_submit_claims then costs only the
 * record's other fields. Secret-bearing keys and JWT-like values are
 * removed exactly as tsi_audit_submit removes them from a record's claims
 * (and logged once, here), so the stored bytes are the same.
 * tsi_audit_claims_new: claims (an object) is copied; TSI_ERR_INVALID_ARG
 * when it is not an object, TSI_ERR_TOO_LARGE when it could not fit in a
 * record. *out: tsi_audit_claims_unref. ref/unref are thread-safe; unref
 * accepts NULL.
 */
struct tsi_audit_claims;
int tsi_audit_claims_new(const json_t *claims, struct tsi_audit_claims **out);
struct tsi_audit_claims *tsi_audit_claims_ref(struct tsi_audit_claims *c);
void tsi_audit_claims_unref(struct tsi_audit_claims *c);
/* tsi_audit_submit of rec with "claims" set to c's claims; rec itself must
 * have no "claims" (TSI_ERR_INVALID_ARG). c is borrowed for the call. */
int tsi_audit_submit_claims(struct tsi_audit *a, const json_t *rec,
    const struct tsi_audit_claims *c, tsi_audit_done_cb cb, void *arg);

/* tsi_audit_append and tsi_audit_submit(_claims) with flags
 * (TSI_AUDIT_UNAUTH). c may be NULL (rec carries its own claims). */
int tsi_audit_append_flags(struct tsi_audit *a, const json_t *rec,
    unsigned flags, uint64_t *seq);
int tsi_audit_submit_flags(struct tsi_audit *a, const json_t *rec,
    const struct tsi_audit_claims *c, unsigned flags, tsi_audit_done_cb cb,
    void *arg);

struct tsi_audit_status {
	int healthy; /* 0 while commits fail */
	size_t queue_depth;
	uint64_t committed; /* records committed since open */
	uint64_t failed;    /* appends that returned TSI_ERR_AUDIT */
	uint64_t last_seq;
	char last_error[128];
	/* Added after the first version: */
	uint64_t commits; /* synced transactions that wrote records */
	/* Added with issue 15.1: */
	size_t free_bytes;        /* room left (estimate, at the last commit) */
	size_t reserve_bytes;     /* opts.reserve_bytes */
	uint64_t reserve_refused; /* TSI_AUDIT_UNAUTH records refused */
	int reserve_in_use;       /* free_bytes < reserve_bytes */
	uint64_t prune_held;      /* pruning passes stopped by keep_allow_s */
	int retention_held;       /* the last pruning pass was stopped so */
};
void tsi_audit_status(struct tsi_audit *a, struct tsi_audit_status *st);

/*
 * Added with issue 19 (audit sinks): cb(arg, seq) is called after each
 * commit with the highest seq now durable (every record up to it is).
 * It runs in the committer thread with no lock of the log held and must
 * only note the value (a sink wakes up and reads the records itself).
 * cb NULL clears it; setting or clearing waits for a call in progress,
 * so arg may be freed once tsi_audit_set_durable_cb(a, NULL, NULL)
 * returned. Thread-safe.
 */
typedef void (*tsi_audit_durable_cb)(void *arg, uint64_t seq);
void tsi_audit_set_durable_cb(struct tsi_audit *a, tsi_audit_durable_cb cb,
    void *arg);

/* Applies retention now (retain_seconds, retain_bytes of the opts), in
 * batches; the committer also does this about once a second. *pruned (may
 * be NULL): records removed. Thread-safe. */
int tsi_audit_prune(struct tsi_audit *a, size_t *pruned);

/* Changes the retention settings of an open log (a configuration reload);
 * they apply from the next pruning on. Thread-safe. */
void tsi_audit_set_retention(struct tsi_audit *a, long long retain_seconds,
    size_t retain_bytes);

/* Read side. */
struct tsi_audit_reader;

/* Opens dir read-only (another process may be writing); in a process that
 * has the writer open, shares its environment. TSI_ERR_NOT_FOUND when there
 * is no audit log in dir. *out: tsi_audit_reader_close. A reader may be used
 * by several threads. */
int tsi_audit_reader_open(const char *dir, struct tsi_audit_reader **out);
/* tsi_audit_reader_open of a log named by URL, as tsi_audit_open_url. */
int tsi_audit_reader_open_url(const char *url, struct tsi_audit_reader **out);
/* 1 when a log is stored at url (without opening it), else 0. */
int tsi_audit_exists_url(const char *url);
void tsi_audit_reader_close(struct tsi_audit_reader *r); /* accepts NULL */

struct tsi_audit_info {
	uint64_t first_seq; /* first retained seq (1 unless pruned) */
	uint64_t last_seq;  /* chain head; 0 when empty */
	uint64_t records;   /* records stored */
	size_t map_size;
	size_t live_bytes; /* bytes in live pages of the records and indexes */
	uint64_t signed_seq; /* seq of the signed head; 0 when none */
	char signed_kid[48];
};
int tsi_audit_reader_info(struct tsi_audit_reader *r,
    struct tsi_audit_info *info);

/* Filters combine with AND. since_us is inclusive, until_us exclusive.
 * path_prefix is a plain string prefix; image matches an element of the
 * "images" or "images-names" claim. */
struct tsi_audit_query {
	long long since_us, until_us; /* 0: unbounded */
	const char *decision;         /* NULL: any */
	const char *path_prefix;
	const char *cluster_name;
	const char *datacenter;
	const char *image;
	const char *namespace_;
	uint64_t after_seq; /* paging: only records with seq > this */
	size_t limit;       /* 0: 100; SIZE_MAX: all */
	/* Added with issue 19 (zero-initialise the struct): */
	const char *op; /* exact "op"; NULL: any */
	int status;     /* exact "status"; 0: any */
};

/* Calls cb for each matching record in seq order (rec borrowed for the call).
 * cb returns nonzero to stop. *next_seq: seq to pass as after_seq for the
 * next page, 0 when no more. */
int tsi_audit_query(struct tsi_audit_reader *r, const struct tsi_audit_query *q,
    int (*cb)(const json_t *rec, void *arg), void *arg, uint64_t *next_seq);

/*
 * tsi_audit_query, and *cursor (may be NULL): the seq a poller passes as
 * after_seq next time to see only records it has not been offered yet,
 * matching or not. With more matches past the limit it is next_seq's
 * value; otherwise every record up to the log's head when the query ran
 * was considered, and it is that head (never below q->after_seq). A
 * query with until_us keeps the last record returned (or q->after_seq):
 * records after until_us were not considered.
 */
int tsi_audit_query_cursor(struct tsi_audit_reader *r,
    const struct tsi_audit_query *q, int (*cb)(const json_t *rec, void *arg),
    void *arg, uint64_t *next_seq, uint64_t *cursor);

/* Gets one record by seq. *rec: json_decref. */
int tsi_audit_get(struct tsi_audit_reader *r, uint64_t seq, json_t **rec);

/* The canonical bytes of a record read from the log (rec borrowed), in its
 * own format (docs/audit-format.md: "format" 2, or 1 when absent): for a
 * stored record, the bytes as stored, which an auditor can re-hash.
 * *out: malloc'd, NUL-terminated, caller frees; *len (may be NULL) its
 * length. TSI_ERR_PARSE for an unknown format, TSI_ERR_INVALID_ARG when
 * rec has no canonical form. */
int tsi_audit_record_text(const json_t *rec, char **out, size_t *len);

struct tsi_audit_verify_result {
	uint64_t records;       /* records checked */
	uint64_t first_bad_seq; /* 0 when the chain is intact */
	char reason[256];
};
/* Walks the whole chain. TSI_OK when intact; a broken chain returns
 * TSI_ERR_DENIED with res naming the first record that was edited, is
 * missing or is out of order. */
int tsi_audit_verify(struct tsi_audit_reader *r,
    struct tsi_audit_verify_result *res);
/* The same, and the signed head must exist and verify with trusted (a P-256
 * public key, borrowed); trusted NULL is tsi_audit_verify. */
int tsi_audit_verify_key(struct tsi_audit_reader *r, EVP_PKEY *trusted,
    struct tsi_audit_verify_result *res);

/*
 * Text forms shared by `tsi audit` and GET /v1/sys/audit/releases
 * (lib/audit/audit_format.c).
 *
 * tsi_audit_parse_time: RFC 3339 ("2026-11-22T10:00:00Z", fraction and
 * "+01:00" offsets allowed), unix seconds ("1764000000"), "now", or an age
 * relative to now_us ("90s", "30m", "24h", "7d", "2w": that long before
 * now_us). *us: microseconds since the epoch. TSI_ERR_PARSE otherwise.
 *
 * tsi_audit_csv_header: the CSV header line (static, with its newline).
 * tsi_audit_csv_row: appends one record's row (with its newline) to out
 * (borrowed); its columns are the header's, identity ones last (claims
 * sub, pod, service-account, node, region, the record's role and
 * display_name). TSI_ERR_TOO_LARGE when out has no room left.
 */
struct tsi_buf;
int tsi_audit_parse_time(const char *s, long long now_us, long long *us);
const char *tsi_audit_csv_header(void);
int tsi_audit_csv_row(const json_t *rec, struct tsi_buf *out);

#endif /* TSI_AUDIT_H */
