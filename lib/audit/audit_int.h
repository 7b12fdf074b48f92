/*
 * audit_int.h - internals of the audit store shared by lib/audit_*.c.
 *
 * Not a public header: the writer, reader, indexes, verify and retention
 * files agree here on the LMDB layout (docs/audit.md "Layout").
 */
#ifndef TSI_AUDIT_INT_H
#define TSI_AUDIT_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "tsi/audit.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_RECORD_MAX (64 * 1024)  /* canonical bytes of one record */
#define AUDIT_IDX_VALUE_MAX 256       /* bytes of a value kept in an index key */
#define AUDIT_KEY_MAX (AUDIT_IDX_VALUE_MAX + 1 + 16)
#define AUDIT_PATH_DEPTH_MAX 16       /* path prefixes indexed per record */
#define AUDIT_DEFAULT_MAP ((size_t)1 << 30)
#define AUDIT_MAX_READERS 126
#define AUDIT_HOLD_SLICES 8           /* group-commit hold: slices at most */

/* The secondary indexes. Every key is value || 0x00 || time_us || seq (both
 * big-endian u64), or time_us || seq for AUDIT_IDX_TIME, with an empty value:
 * a range scan on one value between two times yields matching seqs in seq
 * order (time_us never decreases along the chain). */
enum audit_idx {
	AUDIT_IDX_TIME = 0,
	AUDIT_IDX_DECISION,
	AUDIT_IDX_PATH,      /* every '/'-ended prefix of the path, and the path */
	AUDIT_IDX_CLUSTER,   /* claims["cluster-name"] */
	AUDIT_IDX_DC,        /* claims["datacenter"] */
	AUDIT_IDX_IMAGE,     /* each of claims["images"] and claims["images-names"] */
	AUDIT_IDX_NS,        /* claims["namespace"] */
	AUDIT_IDX_N
};

/* One LMDB environment, shared by the writer and by readers in the same
 * process (LMDB forbids opening one environment twice in a process: closing
 * the second handle would drop the first one's file locks). */
struct audit_env {
	MDB_env *env;
	MDB_dbi records;     /* be64 seq -> canonical JSON */
	MDB_dbi meta;        /* "head", "prune", "signed_head" */
	MDB_dbi idx[AUDIT_IDX_N];
	int rdonly;          /* opened MDB_RDONLY (no writer in this process) */
	int has_writer;
	dev_t dev;
	ino_t ino;
	int refs;            /* guarded by the registry lock */
	/* Readers hold it shared around each read transaction; the committer
	 * holds it exclusively to grow the map (mdb_env_set_mapsize needs no
	 * live transaction in the process). */
	pthread_rwlock_t resize;
	struct audit_env *next;
};

struct tsi_audit_reader {
	struct audit_env *e;
};

/* Opens or shares the environment in dir. writer: create it, read-write, map
 * of map_size bytes; otherwise MDB_RDONLY unless a writer of this process
 * already has it. *out: audit_env_release. */
int audit_env_acquire(const char *dir, int writer, size_t map_size,
    struct audit_env **out);
void audit_env_release(struct audit_env *e, int writer);
/* mdb_txn_begin for reading under e->resize (read-locked until
 * audit_env_read_end), picking up a map grown by another process. */
int audit_env_read_begin(struct audit_env *e, MDB_txn **txn);
void audit_env_read_end(struct audit_env *e, MDB_txn *txn);
/* Maps an LMDB or errno code to TSI_ERR_*. */
int audit_mdb_err(int rc);

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

/* A record prepared in the appender's thread (audit_prep.c): validated,
 * stripped, its top-level fields dumped canonically and grouped around the
 * writer's keys, and the values its index entries need. */
#define AUDIT_PREP_SEGS 7           /* stretches around the 6 writer keys */
#define AUDIT_PREP_WRITER_MAX 512   /* room kept for the writer's fields */
struct audit_prep {
	char *body;       /* "k":v,"k":v... of the caller's fields, sorted */
	size_t seg[AUDIT_PREP_SEGS + 1]; /* stretch i: body[seg[i], seg[i+1]) */
	uint8_t *idx;     /* index values: (enum audit_idx byte, string, NUL)* */
	size_t idx_len;
	unsigned flags;   /* TSI_AUDIT_* of the submission */
};
/* Validates and strips rec (borrowed) as audit_record_prepare does and
 * serialises it. *out: audit_prep_free. TSI_ERR_INVALID_ARG on a bad
 * record, TSI_ERR_TOO_LARGE when it would not fit in AUDIT_RECORD_MAX. */
int audit_prep_make(const json_t *rec, struct audit_prep **out);
void audit_prep_free(struct audit_prep *p);   /* accepts NULL */
/* A record's claims, checked, stripped and serialised once
 * (tsi_audit_claims_new): the canonical text of the claims object and its
 * index values, as audit_prep_make would make them inside a record. */
struct tsi_audit_claims {
	int refs;         /* atomic */
	char *text;       /* {...}, canonical */
	size_t text_len;
	uint8_t *idx;     /* (enum audit_idx byte, string, NUL)* */
	size_t idx_len;
};
/* audit_prep_make of rec (which must have no "claims") with cl's claims:
 * the same bytes and index values as audit_prep_make of rec with the
 * claims object cl was made from. */
int audit_prep_make_claims(const json_t *rec,
    const struct tsi_audit_claims *cl, struct audit_prep **out);
/* Queues a prepared record (audit_writer.c; takes p, also on failure):
 * tsi_audit_submit after its audit_prep_make. */
int audit_submit_prep(struct tsi_audit *a, struct audit_prep *p,
    tsi_audit_done_cb cb, void *arg);
size_t audit_prep_size(const struct audit_prep *p);
/* The stored bytes of the record with format, seq, time, time_us, prev and
 * hash spliced in: byte for byte audit_canon_dumps(record, AUDIT_FORMAT);
 * hash is SHA-256(prev || the same without "hash"). *out: malloc'd, caller
 * frees. */
int audit_prep_seal(const struct audit_prep *p, uint64_t seq,
    long long time_us, const uint8_t prev[AUDIT_HASH_LEN],
    uint8_t hash[AUDIT_HASH_LEN], char **out, size_t *out_len);

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
/* Parses a stored record. *rec: json_decref. */
int audit_record_load(const MDB_val *v, json_t **rec);

/* Indexes (audit_index.c). */

/* Adds (del == 0) or removes (del != 0) every index entry of a record.
 * Returns an LMDB code. */
int audit_index_update(struct audit_env *e, MDB_txn *txn, const json_t *rec,
    uint64_t seq, long long time_us, int del);
/* The keys audit_index_update writes for rec, each given to fn (which
 * returns nonzero to stop; that value is returned). A key may come twice
 * (the same string in "images" and "images-names"). Nothing is written. */
typedef int (*audit_index_fn)(void *arg, enum audit_idx idx,
    const uint8_t *key, size_t len);
int audit_index_each(const json_t *rec, uint64_t seq, long long time_us,
    audit_index_fn fn, void *arg);
/* The name of an index database ("idx_dc"). */
const char *audit_index_name(enum audit_idx idx);
/* Adds the index entries of a prepared record. Returns an LMDB code. */
int audit_index_put_prep(struct audit_env *e, MDB_txn *txn,
    const struct audit_prep *p, uint64_t seq, long long time_us);
/* One write cursor per index, kept for a whole batch: a cursor that stays
 * on a leaf page lets LMDB skip the descent from the root when the next key
 * of that index lands on the same page (consecutive records share most of
 * their values), and the time index is appended (MDB_APPEND). Owned by the
 * caller's write transaction: audit_index_cursors_close before it commits
 * or aborts. */
struct audit_index_cursors {
	MDB_cursor *c[AUDIT_IDX_N];
	/* the path index's prefixes, one cursor per depth (opened when first
	 * needed; c[AUDIT_IDX_PATH] takes the whole path): "secret/" of one
	 * record and of the next land on the same page, "secret/" and
	 * "secret/data/" of one record do not */
	MDB_cursor *path[AUDIT_PATH_DEPTH_MAX];
};
/* Opens the cursors in txn (all NULL on failure). Returns an LMDB code. */
int audit_index_cursors_open(struct audit_env *e, MDB_txn *txn,
    struct audit_index_cursors *ic);
void audit_index_cursors_close(struct audit_index_cursors *ic);
/* audit_index_put_prep through the cursors: the same entries. */
int audit_index_put_prep_c(struct audit_index_cursors *ic,
    const struct audit_prep *p, uint64_t seq, long long time_us);
/* Builds an index key: value || 0 || t || s (value NULL: the time index). */
size_t audit_index_key(const char *value, long long time_us, uint64_t seq,
    uint8_t key[AUDIT_KEY_MAX]);
/* The string under claims[name], or NULL. */
const char *audit_claim_str(const json_t *rec, const char *name);

/* Meta (audit_meta.c). */
struct audit_point {
	uint64_t seq;
	uint8_t hash[AUDIT_HASH_LEN];
};
/* head: last committed record (seq 0 and a zero hash when empty).
 * prune: first retained seq and the hash its "prev" must carry (1 and zeros
 * when nothing was pruned). */
int audit_meta_get_point(struct audit_env *e, MDB_txn *txn, const char *name,
    struct audit_point *p);
int audit_meta_put_point(struct audit_env *e, MDB_txn *txn, const char *name,
    const struct audit_point *p); /* LMDB code */
/* Signs head with signer and stores it as "signed_head". */
int audit_meta_sign_head(struct audit_env *e, MDB_txn *txn,
    const struct tsi_signer *signer, const struct audit_point *head);
/* Checks the stored signed head's signature; TSI_ERR_NOT_FOUND when none. */
int audit_meta_check_signed_head(struct audit_env *e, MDB_txn *txn,
    EVP_PKEY *trusted, struct audit_point *signed_head, char *why,
    size_t why_len);

/* Retention (audit_retention.c): prunes, in txn, the oldest records that
 * are older than cutoff_us (0: no age limit), or needed to bring the live
 * size under retain_bytes (0: no limit), and at least force_n of them; at
 * most max. Moves the prune point. *pruned: how many. */
int audit_prune_batch(struct audit_env *e, MDB_txn *txn, long long cutoff_us,
    size_t retain_bytes, size_t force_n, size_t max, size_t *pruned);
/* The same; records with decision "allow" and time_us >= keep_allow_us
 * (0: none) end the batch unless the age cutoff takes them (*held set to 1
 * when one did). */
int audit_prune_batch_keep(struct audit_env *e, MDB_txn *txn,
    long long cutoff_us, size_t retain_bytes, size_t force_n, size_t max,
    long long keep_allow_us, size_t *pruned, int *held);
/* Bytes held by live pages of every database. */
size_t audit_live_bytes(struct audit_env *e, MDB_txn *txn);

/* Test hook: the committer sleeps before taking a batch (records stay
 * queued) or after taking it (records are in flight). */
void audit_test_hold(struct tsi_audit *a, int before_ms, int inflight_ms);
/* Test hook: nonzero while the committer waits for work (idle, no batch
 * held or in flight), so that a test can start a burst from idle without
 * sleeping for it. */
int audit_test_idle(struct tsi_audit *a);

#endif /* TSI_AUDIT_INT_H */
