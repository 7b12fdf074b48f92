/*
 * audit_core.h - what the backend-neutral audit code shares: the record's
 * preparation and sealing, the chain point, the index names, the test
 * hooks. Not a public header, and free of any backend's headers: the
 * committer (audit_writer.c) includes only this and audit_backend.h.
 */
#ifndef TSI_AUDIT_CORE_H
#define TSI_AUDIT_CORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "tsi/audit.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_RECORD_MAX (64 * 1024) /* canonical bytes of one record */
#define AUDIT_IDX_VALUE_MAX 256      /* bytes of a value kept in an index key */
#define AUDIT_KEY_MAX (AUDIT_IDX_VALUE_MAX + 1 + 16)
#define AUDIT_PATH_DEPTH_MAX 16 /* path prefixes indexed per record */
#define AUDIT_DEFAULT_MAP ((size_t)1 << 30)
#define AUDIT_MAX_READERS 126
#define AUDIT_HOLD_SLICES 8 /* group-commit hold: slices at most */

/* The secondary indexes. Every key is value || 0x00 || time_us || seq (both
 * big-endian u64), or time_us || seq for AUDIT_IDX_TIME, with an empty value:
 * a range scan on one value between two times yields matching seqs in seq
 * order (time_us never decreases along the chain). */
enum audit_idx {
	AUDIT_IDX_TIME = 0,
	AUDIT_IDX_DECISION,
	AUDIT_IDX_PATH, /* every '/'-ended prefix of the path, and the path */
	AUDIT_IDX_CLUSTER, /* claims["cluster-name"] */
	AUDIT_IDX_DC,      /* claims["datacenter"] */
	AUDIT_IDX_IMAGE, /* each of claims["images"] and claims["images-names"] */
	AUDIT_IDX_NS,    /* claims["namespace"] */
	AUDIT_IDX_N
};

void audit_be64_put(uint8_t out[8], uint64_t v);
uint64_t audit_be64_get(const uint8_t in[8]);

/* Record encoding (audit_record.c). */

/* A deep copy of the caller's record with secret-bearing keys removed and
 * the writer's own fields dropped. NULL with *err set on a bad record. */
json_t *audit_record_prepare(const json_t *rec, int *err);
/* What audit_record_prepare would give, without copying when nothing has
 * to be dropped: rec itself (borrowed), or a cleaned copy stored in *copy
 * (caller json_decref's it). NULL with *err set on a bad record. */
const json_t *audit_record_view(const json_t *rec, json_t **copy, int *err);
/* Sets format, seq, time, time_us, prev on rec, computes the hash and
 * returns the canonical bytes (AUDIT_FORMAT) with "hash" (malloc'd, caller
 * frees). TSI_ERR_INVALID_ARG when rec has no canonical form. */
int audit_record_seal(json_t *rec, uint64_t seq, long long time_us,
    const uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN],
    char **out, size_t *out_len);
/* SHA-256(prev || body). */
int audit_chain_hash(const uint8_t prev[AUDIT_HASH_LEN], const char *body,
    size_t len, uint8_t hash[AUDIT_HASH_LEN]);

/* A reader handle: the backend's row and its reader state. */
struct tsi_audit_reader {
	const struct tsi_audit_backend_ops *ops;
	void *be;
};

/* A record prepared in the appender's thread (audit_prep.c): validated,
 * stripped, its top-level fields dumped canonically and grouped around the
 * writer's keys, and the values its index entries need. */
#define AUDIT_PREP_SEGS 7         /* stretches around the 6 writer keys */
#define AUDIT_PREP_WRITER_MAX 512 /* room kept for the writer's fields */
struct audit_prep {
	char *body; /* "k":v,"k":v... of the caller's fields, sorted */
	size_t seg[AUDIT_PREP_SEGS + 1]; /* stretch i: body[seg[i], seg[i+1]) */
	uint8_t *idx; /* index values: (enum audit_idx byte, string, NUL)* */
	size_t idx_len;
	unsigned flags; /* TSI_AUDIT_* of the submission */
};
/* Validates and strips rec (borrowed) as audit_record_prepare does and
 * serialises it. *out: audit_prep_free. TSI_ERR_INVALID_ARG on a bad
 * record, TSI_ERR_TOO_LARGE when it would not fit in AUDIT_RECORD_MAX. */
int audit_prep_make(const json_t *rec, struct audit_prep **out);
void audit_prep_free(struct audit_prep *p); /* accepts NULL */
/* A record's claims, checked, stripped and serialised once
 * (tsi_audit_claims_new): the canonical text of the claims object and its
 * index values, as audit_prep_make would make them inside a record. */
struct tsi_audit_claims {
	int refs;   /* atomic */
	char *text; /* {...}, canonical */
	size_t text_len;
	uint8_t *idx; /* (enum audit_idx byte, string, NUL)* */
	size_t idx_len;
};
/* audit_prep_make of rec (which must have no "claims") with cl's claims:
 * the same bytes and index values as audit_prep_make of rec with the
 * claims object cl was made from. */
int audit_prep_make_claims(const json_t *rec, const struct tsi_audit_claims *cl,
    struct audit_prep **out);
/* Queues a prepared record (audit_writer.c; takes p, also on failure):
 * tsi_audit_submit after its audit_prep_make. */
int audit_submit_prep(struct tsi_audit *a, struct audit_prep *p,
    tsi_audit_done_cb cb, void *arg);
size_t audit_prep_size(const struct audit_prep *p);
/* The stored bytes of the record with format, seq, time, time_us, prev and
 * hash spliced in: byte for byte audit_canon_dumps(record, AUDIT_FORMAT);
 * hash is SHA-256(prev || the same without "hash"). *out: malloc'd, caller
 * frees. */
int audit_prep_seal(const struct audit_prep *p, uint64_t seq, long long time_us,
    const uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN],
    char **out, size_t *out_len);

/* Recomputes the hash of a stored record (parsed): its canonical form
 * without "hash", chained on prev; the form is the record's own ("format"
 * 2, or 1 when it has none). TSI_ERR_PARSE for an unknown format. */
int audit_record_hash(const json_t *rec, const uint8_t prev[AUDIT_HASH_LEN],
    uint8_t hash[AUDIT_HASH_LEN]);
/* The format of a parsed record (AUDIT_FORMAT_V1, _V2), -1 when unknown. */
int audit_record_format(const json_t *rec);
void audit_hex(const uint8_t *in, size_t n, char *out /* 2n+1 */);
int audit_unhex(const char *in, uint8_t *out, size_t n);
/* "2026-11-22T19:23:50.123456Z" into out (at least 32 bytes). */
void audit_format_time(long long time_us, char *out, size_t out_len);
long long audit_now_us(void);
/* Meta (audit_meta.c). */
struct audit_point {
	uint64_t seq;
	uint8_t hash[AUDIT_HASH_LEN];
};
/* head: last committed record (seq 0 and a zero hash when empty).
 * prune: first retained seq and the hash its "prev" must carry (1 and zeros
 * when nothing was pruned). */
/* Test hook: the committer sleeps before taking a batch (records stay
 * queued) or after taking it (records are in flight). */
void audit_test_hold(struct tsi_audit *a, int before_ms, int inflight_ms);
/* Test hook: nonzero while the committer waits for work (idle, no batch
 * held or in flight), so that a test can start a burst from idle without
 * sleeping for it. */
int audit_test_idle(struct tsi_audit *a);

#endif /* TSI_AUDIT_CORE_H */
