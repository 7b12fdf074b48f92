/*
 * audit_retention.c - pruning the oldest records by age and by size.
 *
 * Records go oldest first, with their index entries, and the prune point
 * (first retained seq, and the hash its "prev" must carry) moves in the same
 * transaction, so verify still anchors the remaining chain.
 */
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <string.h>

size_t
audit_live_bytes(struct audit_env *e, MDB_txn *txn)
{
	MDB_stat st;
	size_t total = 0;
	int i;

	if (mdb_stat(txn, e->records, &st) == 0)
		total += (st.ms_branch_pages + st.ms_leaf_pages +
		             st.ms_overflow_pages) *
		    st.ms_psize;
	for (i = 0; i < AUDIT_IDX_N; i++)
		if (mdb_stat(txn, e->idx[i], &st) == 0)
			total += (st.ms_branch_pages + st.ms_leaf_pages +
			             st.ms_overflow_pages) *
			    st.ms_psize;
	return total;
}

/* How many of the oldest records to drop to get under retain_bytes. */
static size_t
size_excess(struct audit_env *e, MDB_txn *txn, size_t retain_bytes)
{
	MDB_stat st;
	size_t live, per;

	if (retain_bytes == 0 || mdb_stat(txn, e->records, &st) != 0 ||
	    st.ms_entries == 0)
		return 0;
	live = audit_live_bytes(e, txn);
	if (live <= retain_bytes)
		return 0;
	per = live / st.ms_entries;
	if (per == 0)
		per = 1;
	return (live - retain_bytes + per - 1) / per;
}

int
audit_prune_batch(struct audit_env *e, MDB_txn *txn, long long cutoff_us,
    size_t retain_bytes, size_t force_n, size_t max, size_t *pruned)
{
	int held = 0;

	return audit_prune_batch_keep(e, txn, cutoff_us, retain_bytes, force_n,
	    max, 0, pruned, &held);
}

/* An allowed decision (a release, a change, a login) young enough to be
 * kept from pruning by size. */
static int
kept(const json_t *rec, long long t, long long cutoff_us,
    long long keep_allow_us)
{
	const char *d;

	if (keep_allow_us <= 0 || t < keep_allow_us ||
	    (cutoff_us > 0 && t < cutoff_us))
		return 0;
	d = json_string_value(json_object_get(rec, "decision"));
	return d != NULL && strcmp(d, "allow") == 0;
}

int
audit_prune_batch_keep(struct audit_env *e, MDB_txn *txn, long long cutoff_us,
    size_t retain_bytes, size_t force_n, size_t max, long long keep_allow_us,
    size_t *pruned, int *held)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	json_t *rec = NULL;
	struct audit_point pp;
	size_t by_size, n = 0;
	long long t;
	uint64_t seq;
	int r = TSI_ERR_INTERNAL, rc;

	*pruned = 0;
	*held = 0;
	by_size = size_excess(e, txn, retain_bytes);
	if (by_size < force_n)
		by_size = force_n;
	if ((r = audit_meta_get_point(e, txn, "prune", &pp)) != TSI_OK)
		return r;
	if ((rc = mdb_cursor_open(txn, e->records, &c)) != 0)
		return audit_mdb_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < max;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			r = TSI_ERR_PARSE;
			goto out;
		}
		seq = audit_be64_get(k.mv_data);
		if ((r = audit_record_load(&v, &rec)) != TSI_OK) {
			tsi_log(TSI_LOG_ERROR, "audit.prune_bad_record",
			    TSI_LI("seq", (long long)seq));
			goto out;
		}
		t = json_integer_value(json_object_get(rec, "time_us"));
		if (!(n < by_size || (cutoff_us > 0 && t < cutoff_us)))
			break;
		if (kept(rec, t, cutoff_us, keep_allow_us)) {
			/* pruning is oldest first (the chain keeps one
			 * prune point): it stops at the first kept record */
			*held = 1;
			break;
		}
		if (audit_unhex(json_string_value(json_object_get(rec, "hash")),
		        pp.hash, AUDIT_HASH_LEN) != TSI_OK) {
			r = TSI_ERR_PARSE;
			goto out;
		}
		if ((rc = audit_index_update(e, txn, rec, seq, t, 1)) != 0 ||
		    (rc = mdb_cursor_del(c, 0)) != 0) {
			r = audit_mdb_err(rc);
			goto out;
		}
		pp.seq = seq + 1;
		json_decref(rec);
		rec = NULL;
		n++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		r = audit_mdb_err(rc);
		goto out;
	}
	if (n > 0 && (rc = audit_meta_put_point(e, txn, "prune", &pp)) != 0) {
		r = audit_mdb_err(rc);
		goto out;
	}
	*pruned = n;
	r = TSI_OK;
out:
	json_decref(rec);
	mdb_cursor_close(c);
	return r;
}
