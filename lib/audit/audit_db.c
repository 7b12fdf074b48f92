/* audit_db.c - the audit LMDB environment: opening, sharing, read txns. */
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const idx_names[AUDIT_IDX_N] = {
	"idx_time",
	"idx_decision",
	"idx_path",
	"idx_cluster",
	"idx_dc",
	"idx_image",
	"idx_namespace",
};

const char *
audit_index_name(enum audit_idx idx)
{
	return (unsigned)idx < AUDIT_IDX_N ? idx_names[idx] : "?";
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct audit_env *registry;

void
audit_be64_put(uint8_t out[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

uint64_t
audit_be64_get(const uint8_t in[8])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

int
audit_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return TSI_OK;
	case MDB_NOTFOUND: return TSI_ERR_NOT_FOUND;
	case MDB_MAP_FULL:
	case ENOSPC:
	case EDQUOT: return TSI_ERR_STORE_FULL;
	case ENOENT: return TSI_ERR_NOT_FOUND;
	case ENOMEM: return TSI_ERR_ALLOC;
	case EACCES:
	case EPERM:
	case EROFS: return TSI_ERR_IO;
	default: return TSI_ERR_STORE;
	}
}

static int
open_dbis(struct audit_env *e, int writer)
{
	MDB_txn *txn = NULL;
	unsigned flags = writer ? MDB_CREATE : 0;
	int rc, i;

	if ((rc = mdb_txn_begin(e->env, NULL, writer ? 0 : MDB_RDONLY, &txn)) !=
	    0)
		goto out;
	if ((rc = mdb_dbi_open(txn, "records", flags, &e->records)) != 0)
		goto out;
	if ((rc = mdb_dbi_open(txn, "meta", flags, &e->meta)) != 0)
		goto out;
	for (i = 0; i < AUDIT_IDX_N; i++)
		if ((rc = mdb_dbi_open(txn, idx_names[i], flags, &e->idx[i])) !=
		    0)
			goto out;
	rc = mdb_txn_commit(txn);
	txn = NULL;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != 0)
		tsi_log(TSI_LOG_ERROR, "audit.open",
		    TSI_LS("error", mdb_strerror(rc)));
	return rc;
}

static int
env_open(const char *dir, int writer, size_t map_size, struct audit_env *e)
{
	int rc;

	if ((rc = mdb_env_create(&e->env)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(e->env, AUDIT_IDX_N + 4)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxreaders(e->env, AUDIT_MAX_READERS)) != 0)
		return rc;
	if (writer && (rc = mdb_env_set_mapsize(e->env, map_size)) != 0)
		return rc;
	/* MDB_NOTLS: read transactions are not tied to a thread slot, so the
	 * HTTP threads and the committer can share the handle. No MDB_NOSYNC:
	 * every commit is durable before it returns. */
	rc = mdb_env_open(e->env, dir, MDB_NOTLS | (writer ? 0 : MDB_RDONLY),
	    0640);
	if (rc != 0)
		return rc;
	return open_dbis(e, writer);
}

int
audit_env_acquire(const char *dir, int writer, size_t map_size,
    struct audit_env **out)
{
	struct audit_env *e = NULL, *it;
	struct stat st;
	int r = TSI_ERR_INTERNAL, rc;

	*out = NULL;
	if (writer && mkdir(dir, 0750) != 0 && errno != EEXIST) {
		tsi_log(TSI_LOG_ERROR, "audit.open", TSI_LS("dir", dir),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_IO;
	}
	if (stat(dir, &st) != 0) {
		tsi_log(TSI_LOG_ERROR, "audit.open", TSI_LS("dir", dir),
		    TSI_LS("error", strerror(errno)));
		return errno == ENOENT ? TSI_ERR_NOT_FOUND : TSI_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode))
		return TSI_ERR_INVALID_ARG;
	pthread_mutex_lock(&registry_lock);
	for (it = registry; it != NULL; it = it->next) {
		if (it->dev != st.st_dev || it->ino != st.st_ino)
			continue;
		if (writer && (it->has_writer || it->rdonly)) {
			/* One writer per log; a read-only handle cannot be
			 * upgraded while readers use it. */
			r = TSI_ERR_EXISTS;
			goto out;
		}
		if (writer)
			it->has_writer = 1;
		it->refs++;
		*out = it;
		r = TSI_OK;
		goto out;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	pthread_rwlock_init(&e->resize, NULL);
	if ((rc = env_open(dir, writer, map_size, e)) != 0) {
		tsi_log(TSI_LOG_ERROR, "audit.open", TSI_LS("dir", dir),
		    TSI_LS("error", mdb_strerror(rc)));
		r = audit_mdb_err(rc);
		if (!writer && rc == MDB_NOTFOUND)
			r = TSI_ERR_NOT_FOUND;
		goto out;
	}
	e->rdonly = !writer;
	e->has_writer = writer;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->refs = 1;
	e->next = registry;
	registry = e;
	*out = e;
	e = NULL;
	r = TSI_OK;
out:
	pthread_mutex_unlock(&registry_lock);
	if (e != NULL) {
		if (e->env != NULL)
			mdb_env_close(e->env);
		pthread_rwlock_destroy(&e->resize);
		free(e);
	}
	return r;
}

void
audit_env_release(struct audit_env *e, int writer)
{
	struct audit_env **pp;

	if (e == NULL)
		return;
	pthread_mutex_lock(&registry_lock);
	if (writer)
		e->has_writer = 0;
	if (--e->refs > 0) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
	mdb_env_close(e->env);
	pthread_rwlock_destroy(&e->resize);
	free(e);
}

int
audit_env_read_begin(struct audit_env *e, MDB_txn **txn)
{
	int rc;

	pthread_rwlock_rdlock(&e->resize);
	rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn);
	if (rc == MDB_MAP_RESIZED) {
		/* Another process grew the map: adopt its size. Only read-only
		 * handles see this (a writer in this process grows its own). */
		pthread_rwlock_unlock(&e->resize);
		pthread_rwlock_wrlock(&e->resize);
		rc = mdb_env_set_mapsize(e->env, 0);
		pthread_rwlock_unlock(&e->resize);
		pthread_rwlock_rdlock(&e->resize);
		if (rc == 0)
			rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn);
	}
	if (rc != 0) {
		pthread_rwlock_unlock(&e->resize);
		tsi_log(TSI_LOG_ERROR, "audit.read",
		    TSI_LS("error", mdb_strerror(rc)));
		*txn = NULL;
		return audit_mdb_err(rc);
	}
	return TSI_OK;
}

void
audit_env_read_end(struct audit_env *e, MDB_txn *txn)
{
	if (txn == NULL)
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&e->resize);
}
