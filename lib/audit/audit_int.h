/*
 * audit_int.h - internals of the LMDB audit backend shared by its files
 * (audit_db.c, audit_index.c, audit_meta.c, audit_retention.c,
 * audit_lmdb_*.c): the environment, the layout (docs/audit.md "Layout").
 * Not a public header; the backend-neutral code includes audit_core.h.
 */
#ifndef TSI_AUDIT_INT_H
#define TSI_AUDIT_INT_H

#include <lmdb.h>

#include "audit_core.h"

/* One LMDB environment, shared by the writer and by readers in the same
 * process (LMDB forbids opening one environment twice in a process: closing
 * the second handle would drop the first one's file locks). */
struct audit_env {
	MDB_env *env;
	MDB_dbi records; /* be64 seq -> canonical JSON */
	MDB_dbi meta;    /* "head", "prune", "signed_head" */
	MDB_dbi idx[AUDIT_IDX_N];
	int rdonly; /* opened MDB_RDONLY (no writer in this process) */
	int has_writer;
	dev_t dev;
	ino_t ino;
	int refs; /* guarded by the registry lock */
	/* Readers hold it shared around each read transaction; the committer
	 * holds it exclusively to grow the map (mdb_env_set_mapsize needs no
	 * live transaction in the process). */
	pthread_rwlock_t resize;
	struct audit_env *next;
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
/* The LMDB reader ops (audit_lmdb_reader.c, audit_lmdb_verify.c); be is
 * the environment (audit_lmdb_reader_open). */
int audit_lmdb_reader_open(const char *dir, void **be);
void audit_lmdb_reader_close(void *be);
int audit_lmdb_get(void *be, uint64_t seq, json_t **rec);
int audit_lmdb_query(void *be, const struct tsi_audit_query *q,
    int (*cb)(const json_t *rec, void *arg), void *arg, uint64_t *next_seq,
    uint64_t *cursor);
int audit_lmdb_info(void *be, struct tsi_audit_info *info);
int audit_lmdb_verify(void *be, EVP_PKEY *trusted,
    struct tsi_audit_verify_result *res);
/* Maps an LMDB or errno code to TSI_ERR_*. */
int audit_mdb_err(int rc);

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
typedef int (*audit_index_fn)(void *arg, enum audit_idx idx, const uint8_t *key,
    size_t len);
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

#endif /* TSI_AUDIT_INT_H */
