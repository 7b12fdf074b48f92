/*
 * audit_backend.h - the table of audit log backends (not a public header).
 *
 * A log is named by a URL whose scheme picks a row of audit_backends[]
 * (lib/audit/audit_backend.c); the rest of the URL is the backend's own address
 * ("lmdb:///var/lib/tsi/audit": a directory). The committer
 * (audit_writer.c: queue, group commit, time bound, hash chain, callbacks)
 * reaches its store only through a row's ops; the contracts are in
 * docs/audit.md "Backends". Adding a backend is a row here and its files;
 * tests/unit/audit/test_backend.c, written against the public interface,
 * is the suite every row must pass (one line there).
 */
#ifndef TSI_AUDIT_BACKEND_H
#define TSI_AUDIT_BACKEND_H

#include "audit_core.h"

/* Why a store op failed, for the status's last_error and the log line:
 * static strings, never NULL after a failure. */
struct audit_be_err {
	const char *step; /* "txn_begin", "put", "commit" */
	const char *msg;  /* the store's own words */
};

/* A retention pass (prune): the oldest records older than cutoff_us (0: no
 * age limit), or needed to bring the live size under bytes (0: none), and
 * at least force_n of them; at most max. Records with decision "allow"
 * and time_us >= keep_allow_us (0: none) end the pass unless the age
 * cutoff takes them. */
struct audit_prune_req {
	long long cutoff_us;
	size_t bytes;
	size_t force_n;
	size_t max;
	long long keep_allow_us;
	/* called with 1 when an allowed record held the pass, 0 when none
	 * did, once per attempt that read the store */
	void (*on_held)(void *arg, int held);
	void *arg;
};

#define AUDIT_ROOM_UNKNOWN ((size_t)-1)

struct tsi_audit_backend_ops {
	const char *scheme; /* "lmdb" */

	/* Writer. be is the op's state from open; every op but open and close
	 * runs on the committer thread only. */

	/* Opens (creating) the log at addr (borrowed for the call) for the one
	 * writer, across processes: TSI_ERR_EXISTS when another has it. o is
	 * tsi_audit_open's options with defaults applied. *be: close. */
	int (
	    *open)(const char *addr, const struct tsi_audit_opts *o, void **be);
	void (*close)(void *be);
	/* The last committed point (seq 0, zero hash when empty) and the
	 * time_us of the last record (0 when empty). */
	int (*load_head)(void *be, struct audit_point *head,
	    long long *last_time_us);
	/* Writes recs[0..n) then late[0..n_late) (borrowed) chained on *head
	 * in one durable transaction with their index entries and the new
	 * head: record i gets seq head->seq + 1 + i, time_us never below
	 * *last_time_us. On TSI_OK *head and *last_time_us have advanced and
	 * *room is the room left (AUDIT_ROOM_UNKNOWN when not measured: only
	 * when opts.reserve_bytes is set). On failure nothing was written and
	 * *err says why: TSI_ERR_STORE_FULL when the store is out of room
	 * (make_room or prune may help), another TSI_ERR_* otherwise. The hot
	 * path: no allocation per record beyond the record's bytes. */
	int (*append_batch)(void *be, struct audit_prep *const *recs, size_t n,
	    struct audit_prep *const *late, size_t n_late,
	    struct audit_point *head, long long *last_time_us, size_t *room,
	    struct audit_be_err *err);
	/* After TSI_ERR_STORE_FULL: grows the store within opts.map_max.
	 * 1 when there is more room, 0 when it cannot grow (the committer
	 * then prunes by size if the operator allows it). */
	int (*make_room)(void *be);
	/* One retention pass in one durable transaction, moving the prune
	 * point (docs/audit.md "Retention"); when the store is too full even
	 * to record deletions it makes room first. *pruned: how many; *room
	 * as for append_batch (measured whenever something was pruned). */
	int (*prune)(void *be, const struct audit_prune_req *q, size_t *pruned,
	    size_t *room);
	/* While unhealthy: a durable write of a few records' size. TSI_OK when
	 * commits work again, TSI_ERR_STORE_FULL when out of room, another
	 * TSI_ERR_* otherwise. */
	int (*probe)(void *be);
	/* Signs head with signer and stores it durably as the signed head. */
	int (*sign_head)(void *be, const struct tsi_signer *signer,
	    const struct audit_point *head);
	/* The room left now (AUDIT_ROOM_UNKNOWN when it cannot be told). */
	size_t (*room)(void *be);

	/* Reader. Each op has the contract of the public function of the same
	 * name (include/tsi/audit.h) with the reader's state rbe from
	 * reader_open in place of the handle (never NULL); readers may be used
	 * from several threads and beside the writer in the same process. */

	/* tsi_audit_reader_open of the address: TSI_ERR_NOT_FOUND when no
	 * log is there. *rbe: reader_close. */
	int (*reader_open)(const char *addr, void **rbe);
	void (*reader_close)(void *rbe);
	/* tsi_audit_get: the record of seq as stored (the bytes of
	 * docs/audit-format.md), parsed. */
	int (*get)(void *rbe, uint64_t seq, json_t **rec);
	/* tsi_audit_query_cursor: records matching q in seq order after
	 * q->after_seq, at most q->limit, with the paging seq and the poller's
	 * cursor. */
	int (*query)(void *rbe, const struct tsi_audit_query *q,
	    int (*cb)(const json_t *rec, void *arg), void *arg,
	    uint64_t *next_seq, uint64_t *cursor);
	/* tsi_audit_reader_info: first/last seq, records, sizes, the signed
	 * head. */
	int (*info)(void *rbe, struct tsi_audit_info *info);
	/* tsi_audit_verify_key: the chain from the prune point to the head,
	 * the signed head, the indexes against the records. */
	int (*verify)(void *rbe, EVP_PKEY *trusted,
	    struct tsi_audit_verify_result *res);
	/* 1 when a log is stored at addr, without opening it */
	int (*exists)(const char *addr);
};

/* The LMDB row (audit_lmdb_writer.c). */
extern const struct tsi_audit_backend_ops audit_lmdb_backend;

/* The row for url's scheme and, in *addr, where the address starts in
 * url; NULL when the scheme is unknown or the address malformed. */
const struct tsi_audit_backend_ops *audit_backend_find(const char *url,
    const char **addr);

/* tsi_audit_open of the log at addr (borrowed) through ops (audit_writer.c). */
int audit_open_backend(const struct tsi_audit_backend_ops *ops,
    const char *addr, const struct tsi_audit_opts *opts,
    struct tsi_audit **out);

#endif /* TSI_AUDIT_BACKEND_H */
