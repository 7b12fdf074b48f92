/*
 * store.c - the inventory, pending EKs and enrollment sessions in LMDB
 * (data_dir/attest).
 *
 * Databases, all keyed by text, all values JSON objects:
 *   nodes     node name -> the inventory entry (location, tags, EK hash,
 *             state, and once enrolled the AK name and certificate serial)
 *   ek        EK SHA-256 hex -> {"node": name}: one EK, one node
 *   sessions  session hex -> the state between enroll/start and finish
 *   pending   EK SHA-256 hex -> an EK that tried to enroll unregistered
 * Whatever must hold together (an entry and its EK index; a session taken
 * and its node bound to the AK and certificate) is written in one write
 * transaction: LMDB has one writer at a time, so a check and the write it
 * guards cannot interleave with another request's.
 */
#include "attest.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VALUE_MAX (256 * 1024)

static int
mdb_err(int rc, const char *what)
{
	tsi_log(TSI_LOG_ERROR, "store.failed", TSI_LS("op", what),
	    TSI_LS("error", mdb_strerror(rc)));
	return rc == MDB_MAP_FULL ? TSI_ERR_STORE_FULL : TSI_ERR_STORE;
}

int
attest_store_open(struct attest *a, const char *dir, size_t map_size)
{
	MDB_txn *txn = NULL;
	int rc;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return TSI_ERR_IO;
	if ((rc = mdb_env_create(&a->env)) != 0)
		return mdb_err(rc, "env_create");
	if ((rc = mdb_env_set_maxdbs(a->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(a->env, map_size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(a->env, 126)) != 0 ||
	    (rc = mdb_env_open(a->env, dir, MDB_NOTLS, 0600)) != 0)
		goto fail;
	if ((rc = mdb_txn_begin(a->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "nodes", MDB_CREATE, &a->db_nodes)) != 0 ||
	    (rc = mdb_dbi_open(txn, "ek", MDB_CREATE, &a->db_ek)) != 0 ||
	    (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &a->db_sessions)) !=
	        0 ||
	    (rc = mdb_dbi_open(txn, "pending", MDB_CREATE, &a->db_pending)) !=
	        0)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		goto fail;
	}
	return TSI_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(a->env);
	a->env = NULL;
	return mdb_err(rc, "open");
}

void
attest_store_close(struct attest *a)
{
	if (a->env != NULL)
		mdb_env_close(a->env);
	a->env = NULL;
}

int
attest_store_begin(struct attest *a, int rdonly, MDB_txn **txn)
{
	int rc = mdb_txn_begin(a->env, NULL, rdonly ? MDB_RDONLY : 0, txn);

	return rc == 0 ? TSI_OK : mdb_err(rc, "txn_begin");
}

int
attest_store_commit(MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);

	return rc == 0 ? TSI_OK : mdb_err(rc, "commit");
}

int
attest_store_get(struct attest *a, MDB_txn *txn, MDB_dbi dbi, const char *key,
    json_t **out)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	json_error_t je;
	int rc;

	(void)a;
	if (k.mv_size == 0 || k.mv_size > 511)
		return TSI_ERR_NOT_FOUND;
	if ((rc = mdb_get(txn, dbi, &k, &v)) == MDB_NOTFOUND)
		return TSI_ERR_NOT_FOUND;
	if (rc != 0)
		return mdb_err(rc, "get");
	*out = json_loadb(v.mv_data, v.mv_size, JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		tsi_log(TSI_LOG_ERROR, "store.corrupt", TSI_LS("key", key));
		return TSI_ERR_STORE;
	}
	return TSI_OK;
}

int
attest_store_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const json_t *val)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	char *text;
	int rc;

	if ((text = json_dumps(val, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return TSI_ERR_ALLOC;
	v.mv_size = strlen(text);
	v.mv_data = text;
	if (v.mv_size > VALUE_MAX) {
		tsi_strfree(text);
		return TSI_ERR_TOO_LARGE;
	}
	rc = mdb_put(txn, dbi, &k, &v, 0);
	tsi_strfree(text); /* sessions hold a credential secret */
	return rc == 0 ? TSI_OK : mdb_err(rc, "put");
}

int
attest_store_del(MDB_txn *txn, MDB_dbi dbi, const char *key)
{
	MDB_val k = { strlen(key), (void *)key };
	int rc = mdb_del(txn, dbi, &k, NULL);

	if (rc == MDB_NOTFOUND)
		return TSI_ERR_NOT_FOUND;
	return rc == 0 ? TSI_OK : mdb_err(rc, "del");
}

int
attest_store_pending(struct attest *a, const char *ek_sha256,
    const char *remote)
{
	MDB_txn *txn = NULL;
	MDB_stat st;
	json_t *e = NULL;
	long long now = attest_now();
	int r;

	if ((r = attest_store_begin(a, 0, &txn)) != TSI_OK)
		return r;
	if (attest_store_get(a, txn, a->db_pending, ek_sha256, &e) == TSI_OK) {
		json_object_set_new(e, "last_seen", json_integer(now));
		json_object_set_new(e, "attempts",
		    json_integer(
		        json_integer_value(json_object_get(e, "attempts")) +
		        1));
	} else {
		/* Bounded: unauthenticated callers create these. */
		if (mdb_stat(txn, a->db_pending, &st) != 0 ||
		    st.ms_entries >= ATTEST_PENDING_MAX) {
			r = TSI_ERR_STORE_FULL;
			goto out;
		}
		e = json_pack("{sssIsIsIss}", "ek_sha256", ek_sha256,
		    "first_seen", (json_int_t)now, "last_seen", (json_int_t)now,
		    "attempts", (json_int_t)1, "remote", remote ? remote : "");
	}
	if (e == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	if ((r = attest_store_put(txn, a->db_pending, ek_sha256, e)) != TSI_OK)
		goto out;
	r = attest_store_commit(txn);
	txn = NULL;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	json_decref(e);
	return r;
}

void
attest_store_expire(struct attest *a, long long now, size_t max)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t seen = 0;
	int rc, dirty = 0;

	if (attest_store_begin(a, 0, &txn) != TSI_OK)
		return;
	if (mdb_cursor_open(txn, a->db_sessions, &cur) != 0)
		goto out;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0 && seen++ < max) {
		json_t *s = json_loadb(v.mv_data, v.mv_size, 0, NULL);
		long long exp =
		    json_integer_value(json_object_get(s, "expires_at"));

		json_decref(s);
		if (s == NULL || exp <= now) {
			if (mdb_cursor_del(cur, 0) != 0)
				break;
			dirty = 1;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (dirty) {
		if (mdb_txn_commit(txn) != 0)
			tsi_log(TSI_LOG_WARN, "store.expire_failed");
	} else
		mdb_txn_abort(txn);
}
