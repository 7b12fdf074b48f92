/*
 * audit_lmdb_writer.c - the LMDB backend's writer ops (audit_backend.h,
 * docs/audit.md "Backends"): a batch's synced transaction, map growth,
 * retention passes, the probe, the head, the signed head.
 */
#include "audit_backend.h"
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct lmdb_w {
	struct audit_env *e;
	int lockfd;
	size_t map_max;
	size_t reserve_bytes;
};

/* Classifies an LMDB/errno code for the committer: only a full map is
 * "full" (growing or pruning helps); a full disk is an I/O failure. */
static int
classify(int rc)
{
	int r;

	if (rc == 0)
		return TSI_OK;
	if (rc == MDB_MAP_FULL)
		return TSI_ERR_STORE_FULL;
	r = audit_mdb_err(rc);
	return r == TSI_ERR_STORE_FULL ? TSI_ERR_IO : r;
}

/* The room after a transaction whose live pages were live: the largest
 * map the log may have, less those pages. An estimate (the free list and
 * LMDB's copy-on-write pages are not counted apart), which only decides
 * when unauthenticated records are refused. */
static size_t
room_of(struct lmdb_w *w, size_t live)
{
	MDB_envinfo info;
	size_t max;

	if (mdb_env_info(w->e->env, &info) != 0)
		return AUDIT_ROOM_UNKNOWN;
	max = info.me_mapsize > w->map_max ? info.me_mapsize : w->map_max;
	return live < max ? max - live : 0;
}

/* The batch's write cursors: records, and one per index. */
struct batch_cursors {
	MDB_cursor *rec;
	struct audit_index_cursors idx;
};

static int
put_record(struct batch_cursors *bc, const struct audit_prep *p,
    struct audit_point *h, long long *t)
{
	uint8_t kb[8], hash[AUDIT_HASH_LEN];
	char *body = NULL;
	size_t len = 0;
	MDB_val k = { 8, kb }, v;
	long long now = audit_now_us();
	uint64_t seq = h->seq + 1;
	int rc;

	/* time never goes back along the chain: the indexes rely on it */
	if (now > *t)
		*t = now;
	if (audit_prep_seal(p, seq, *t, h->hash, hash, &body, &len) != TSI_OK)
		return ENOMEM;
	audit_be64_put(kb, seq);
	v.mv_size = len;
	v.mv_data = body;
	rc = mdb_cursor_put(bc->rec, &k, &v, MDB_APPEND);
	if (rc == 0)
		rc = audit_index_put_prep_c(&bc->idx, p, seq, *t);
	free(body);
	if (rc != 0)
		return rc;
	h->seq = seq;
	memcpy(h->hash, hash, AUDIT_HASH_LEN);
	return 0;
}

static int
lmdb_append_batch(void *be, struct audit_prep *const *recs, size_t n,
    struct audit_prep *const *late, size_t n_late, struct audit_point *head,
    long long *last_time_us, size_t *room, struct audit_be_err *err)
{
	struct lmdb_w *w = be;
	MDB_txn *txn = NULL;
	struct batch_cursors bc;
	struct audit_point h = *head;
	long long t = *last_time_us;
	size_t i, live = 0;
	int rc;

	*room = AUDIT_ROOM_UNKNOWN;
	memset(&bc, 0, sizeof(bc));
	err->step = "txn_begin";
	if ((rc = mdb_txn_begin(w->e->env, NULL, 0, &txn)) != 0)
		goto out;
	if ((rc = mdb_cursor_open(txn, w->e->records, &bc.rec)) != 0) {
		bc.rec = NULL;
		goto out;
	}
	if ((rc = audit_index_cursors_open(w->e, txn, &bc.idx)) != 0)
		goto out;
	err->step = "put";
	for (i = 0; i < n; i++)
		if ((rc = put_record(&bc, recs[i], &h, &t)) != 0)
			goto out;
	for (i = 0; i < n_late; i++)
		if ((rc = put_record(&bc, late[i], &h, &t)) != 0)
			goto out;
	if ((rc = audit_meta_put_point(w->e, txn, "head", &h)) != 0)
		goto out;
	audit_index_cursors_close(&bc.idx);
	mdb_cursor_close(bc.rec);
	bc.rec = NULL;
	if (w->reserve_bytes > 0)
		live = audit_live_bytes(w->e, txn);
	err->step = "commit";
	rc = mdb_txn_commit(txn); /* synced: the env is not MDB_NOSYNC */
	txn = NULL;
	if (rc == 0) {
		*head = h;
		*last_time_us = t;
		if (w->reserve_bytes > 0)
			*room = room_of(w, live);
	}
out:
	audit_index_cursors_close(&bc.idx);
	if (bc.rec != NULL)
		mdb_cursor_close(bc.rec);
	if (txn != NULL)
		mdb_txn_abort(txn);
	err->msg = mdb_strerror(rc);
	return classify(rc);
}

static int
grow_map(struct lmdb_w *w, size_t size)
{
	int rc;

	pthread_rwlock_wrlock(&w->e->resize);
	rc = mdb_env_set_mapsize(w->e->env, size);
	pthread_rwlock_unlock(&w->e->resize);
	if (rc != 0)
		tsi_log(TSI_LOG_ERROR, "audit.map_grow_failed",
		    TSI_LS("error", mdb_strerror(rc)));
	else
		tsi_log(TSI_LOG_WARN, "audit.map_grown",
		    TSI_LI("map_size", (long long)size));
	return rc;
}

/* MDB_MAP_FULL: doubles the map, up to opts.map_max. */
static int
lmdb_make_room(void *be)
{
	struct lmdb_w *w = be;
	MDB_envinfo info;
	size_t next;

	mdb_env_info(w->e->env, &info);
	if (w->map_max > info.me_mapsize) {
		next = info.me_mapsize * 2;
		if (next > w->map_max || next < info.me_mapsize)
			next = w->map_max;
		if (grow_map(w, next) == 0)
			return 1;
	}
	return 0;
}

/* One pruning transaction. In a full map LMDB cannot even record deletions
 * (it copies pages on write), so then the map first grows by a small
 * reserve: 1/32 of it, at least 256 KiB. */
static int
lmdb_prune(void *be, const struct audit_prune_req *q, size_t *pruned,
    size_t *room)
{
	struct lmdb_w *w = be;
	MDB_envinfo info;
	MDB_txn *txn = NULL;
	size_t reserve, live;
	int attempt, r = TSI_OK, rc, held = 0;

	*room = AUDIT_ROOM_UNKNOWN;
	for (attempt = 0; attempt < 2; attempt++) {
		*pruned = 0;
		if ((rc = mdb_txn_begin(w->e->env, NULL, 0, &txn)) != 0)
			return audit_mdb_err(rc);
		r = audit_prune_batch_keep(w->e, txn, q->cutoff_us, q->bytes,
		    q->force_n, q->max, q->keep_allow_us, pruned, &held);
		if (r == TSI_OK && q->on_held != NULL)
			q->on_held(q->arg, held);
		if (r == TSI_OK && *pruned == 0) {
			mdb_txn_abort(txn);
			return TSI_OK;
		}
		if (r == TSI_OK) {
			live = audit_live_bytes(w->e, txn);
			if ((rc = mdb_txn_commit(txn)) == 0) {
				*room = room_of(w, live);
				return TSI_OK;
			}
			r = audit_mdb_err(rc);
		} else {
			mdb_txn_abort(txn);
		}
		*pruned = 0;
		if (r != TSI_ERR_STORE_FULL || attempt > 0)
			return r;
		mdb_env_info(w->e->env, &info);
		reserve = info.me_mapsize / 32;
		if (reserve < 256 * 1024)
			reserve = 256 * 1024;
		if (grow_map(w, info.me_mapsize + reserve) != 0)
			return r;
	}
	return r;
}

/* A synced write of a few records' size under meta "probe". */
static int
lmdb_probe(void *be)
{
	struct lmdb_w *w = be;
	MDB_txn *txn = NULL;
	static uint8_t b[16384];
	MDB_val k = { 5, "probe" }, v = { sizeof(b), b };
	int rc;

	audit_be64_put(b, (uint64_t)audit_now_us());
	if ((rc = mdb_txn_begin(w->e->env, NULL, 0, &txn)) == 0 &&
	    (rc = mdb_put(txn, w->e->meta, &k, &v, 0)) == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	return classify(rc);
}

static int
lmdb_sign_head(void *be, const struct tsi_signer *signer,
    const struct audit_point *head)
{
	struct lmdb_w *w = be;
	MDB_txn *txn = NULL;
	int r;

	if (mdb_txn_begin(w->e->env, NULL, 0, &txn) != 0)
		return TSI_ERR_STORE;
	if ((r = audit_meta_sign_head(w->e, txn, signer, head)) != TSI_OK) {
		mdb_txn_abort(txn);
		return r;
	}
	return mdb_txn_commit(txn) == 0 ? TSI_OK : TSI_ERR_STORE;
}

static int
lmdb_load_head(void *be, struct audit_point *head, long long *last_time_us)
{
	struct lmdb_w *w = be;
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	json_t *rec = NULL;
	struct audit_point meta;
	int r, rc;

	if ((rc = mdb_txn_begin(w->e->env, NULL, MDB_RDONLY, &txn)) != 0)
		return audit_mdb_err(rc);
	if ((r = audit_meta_get_point(w->e, txn, "head", &meta)) != TSI_OK)
		goto out;
	*head = meta;
	*last_time_us = 0;
	if ((rc = mdb_cursor_open(txn, w->e->records, &c)) != 0) {
		r = audit_mdb_err(rc);
		goto out;
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8 &&
	    audit_record_load(&v, &rec) == TSI_OK) {
		*last_time_us =
		    json_integer_value(json_object_get(rec, "time_us"));
		if (audit_be64_get(k.mv_data) != meta.seq)
			tsi_log(TSI_LOG_ERROR, "audit.head_mismatch",
			    TSI_LI("meta_seq", (long long)meta.seq),
			    TSI_LI("last_seq",
			        (long long)audit_be64_get(k.mv_data)));
	}
	r = TSI_OK;
out:
	json_decref(rec);
	if (c != NULL)
		mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return r;
}

static size_t
lmdb_room(void *be)
{
	struct lmdb_w *w = be;
	MDB_txn *rt = NULL;
	size_t live;

	if (mdb_txn_begin(w->e->env, NULL, MDB_RDONLY, &rt) != 0)
		return AUDIT_ROOM_UNKNOWN;
	live = audit_live_bytes(w->e, rt);
	mdb_txn_abort(rt);
	return room_of(w, live);
}

static void
lmdb_close(void *be)
{
	struct lmdb_w *w = be;

	if (w == NULL)
		return;
	if (w->e != NULL)
		audit_env_release(w->e, 1);
	if (w->lockfd >= 0)
		close(w->lockfd);
	free(w);
}

static int
lmdb_open(const char *dir, const struct tsi_audit_opts *o, void **be)
{
	struct lmdb_w *w;
	char lockpath[4096];
	int r;

	*be = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return TSI_ERR_ALLOC;
	w->lockfd = -1;
	w->map_max = o->map_max;
	w->reserve_bytes = o->reserve_bytes;
	if ((r = audit_env_acquire(dir, 1, o->map_size, &w->e)) != TSI_OK)
		goto out;
	/* One writer per log, across processes too: two committers would fork
	 * the chain. flock, unlike fcntl locks, is not dropped when another
	 * descriptor of the file is closed in this process. */
	if (snprintf(lockpath, sizeof(lockpath), "%s/writer.lock", dir) >=
	    (int)sizeof(lockpath)) {
		r = TSI_ERR_INVALID_ARG;
		goto out;
	}
	if ((w->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) <
	    0) {
		r = TSI_ERR_IO;
		goto out;
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
		tsi_log(TSI_LOG_ERROR, "audit.open", TSI_LS("dir", dir),
		    TSI_LS("error", "another writer has this audit log open"));
		r = TSI_ERR_EXISTS;
		goto out;
	}
	*be = w;
	w = NULL;
	r = TSI_OK;
out:
	lmdb_close(w);
	return r;
}

/* An LMDB environment is a directory holding data.mdb. */
static int
lmdb_exists(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/data.mdb", dir) <
	    (int)sizeof(path) &&
	    stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

const struct tsi_audit_backend_ops audit_lmdb_backend = {
	.scheme = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.load_head = lmdb_load_head,
	.append_batch = lmdb_append_batch,
	.make_room = lmdb_make_room,
	.prune = lmdb_prune,
	.probe = lmdb_probe,
	.sign_head = lmdb_sign_head,
	.room = lmdb_room,
	.reader_open = audit_lmdb_reader_open,
	.reader_close = audit_lmdb_reader_close,
	.get = audit_lmdb_get,
	.query = audit_lmdb_query,
	.info = audit_lmdb_info,
	.verify = audit_lmdb_verify,
	.exists = lmdb_exists,
};
