/* audit_index.c - secondary index entries of a record. */
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <string.h>

size_t
audit_index_key(const char *value, long long time_us, uint64_t seq,
    uint8_t key[AUDIT_KEY_MAX])
{
	size_t n = 0;

	if (value != NULL) {
		n = strlen(value);
		if (n > AUDIT_IDX_VALUE_MAX)
			n = AUDIT_IDX_VALUE_MAX; /* queries re-check the record */
		memcpy(key, value, n);
		key[n++] = 0;
	}
	audit_be64_put(key + n, (uint64_t)time_us);
	audit_be64_put(key + n + 8, seq);
	return n + 16;
}

const char *
audit_claim_str(const json_t *rec, const char *name)
{
	return json_string_value(
	    json_object_get(json_object_get(rec, "claims"), name));
}

/* Where an entry goes: a cursor kept for the batch, or txn and dbi; or,
 * with fn set, to fn only (audit_index_each: the keys, nothing written). */
struct target {
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_cursor **depth; /* path index: a cursor per prefix depth, or NULL */
	audit_index_fn fn;
	void *arg;
	enum audit_idx idx;
};

static int
put_one(const struct target *g, const char *value, long long t, uint64_t seq,
    int del)
{
	uint8_t kb[AUDIT_KEY_MAX];
	MDB_val k, v = { 0, NULL };
	int rc;

	if (value != NULL && value[0] == '\0')
		return 0;
	k.mv_size = audit_index_key(value, t, seq, kb);
	k.mv_data = kb;
	if (g->fn != NULL)
		return g->fn(g->arg, g->idx, kb, k.mv_size);
	if (del) {
		rc = mdb_del(g->txn, g->dbi, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	if (g->c == NULL)
		return mdb_put(g->txn, g->dbi, &k, &v, 0);
	if (value == NULL) {
		/* time || seq only grows along the chain: append without a
		 * search; a key that does not (never written so) goes the
		 * ordinary way */
		rc = mdb_cursor_put(g->c, &k, &v, MDB_APPEND);
		if (rc != MDB_KEYEXIST)
			return rc;
	}
	return mdb_cursor_put(g->c, &k, &v, 0);
}

/* Path entries: "secret/", "secret/data/", ..., and the whole path, so that
 * a prefix query ending in '/' is one exact range scan. */
static int
put_path(const struct target *g, const char *path, long long t, uint64_t seq,
    int del)
{
	char pre[AUDIT_IDX_VALUE_MAX + 1];
	struct target gd = *g;
	size_t i, n, depth = 0;
	int rc;

	n = strlen(path);
	if (n > AUDIT_IDX_VALUE_MAX)
		n = AUDIT_IDX_VALUE_MAX;
	for (i = 0; i < n && depth < AUDIT_PATH_DEPTH_MAX; i++) {
		if (path[i] != '/' || i + 1 == n)
			continue;
		memcpy(pre, path, i + 1);
		pre[i + 1] = '\0';
		if (g->depth != NULL) {
			if (g->depth[depth] == NULL &&
			    (rc = mdb_cursor_open(g->txn, g->dbi,
			         &g->depth[depth])) != 0) {
				g->depth[depth] = NULL;
				return rc;
			}
			gd.c = g->depth[depth];
		}
		if ((rc = put_one(&gd, pre, t, seq, del)) != 0)
			return rc;
		depth++;
	}
	memcpy(pre, path, n);
	pre[n] = '\0';
	return put_one(g, pre, t, seq, del);
}

static int
put_strings(const struct target *g, const json_t *v, long long t, uint64_t seq,
    int del)
{
	size_t i;
	int rc;

	if (json_is_string(v))
		return put_one(g, json_string_value(v), t, seq, del);
	if (!json_is_array(v))
		return 0;
	for (i = 0; i < json_array_size(v); i++) {
		const char *s = json_string_value(json_array_get(v, i));

		if (s != NULL && (rc = put_one(g, s, t, seq, del)) != 0)
			return rc;
	}
	return 0;
}

static struct target
tgt(struct audit_env *e, MDB_txn *txn, enum audit_idx i)
{
	struct target g = { txn, e->idx[i], NULL, NULL, NULL, NULL, i };

	return g;
}

/* Every entry of a stored record, each index through gs[idx]: the one
 * derivation that pruning (delete) and verify (audit_index_each) share. */
static int
index_record(const struct target *gs, const json_t *rec, uint64_t seq,
    long long t, int del)
{
	const json_t *claims = json_object_get(rec, "claims");
	const char *s;
	int rc;

	if ((rc = put_one(&gs[AUDIT_IDX_TIME], NULL, t, seq, del)) != 0)
		goto out;
	s = json_string_value(json_object_get(rec, "decision"));
	if (s != NULL &&
	    (rc = put_one(&gs[AUDIT_IDX_DECISION], s, t, seq, del)) != 0)
		goto out;
	s = json_string_value(json_object_get(rec, "path"));
	if (s != NULL &&
	    (rc = put_path(&gs[AUDIT_IDX_PATH], s, t, seq, del)) != 0)
		goto out;
	if (!json_is_object(claims))
		goto out;
	if ((s = audit_claim_str(rec, "cluster-name")) != NULL &&
	    (rc = put_one(&gs[AUDIT_IDX_CLUSTER], s, t, seq, del)) != 0)
		goto out;
	if ((s = audit_claim_str(rec, "datacenter")) != NULL &&
	    (rc = put_one(&gs[AUDIT_IDX_DC], s, t, seq, del)) != 0)
		goto out;
	if ((s = audit_claim_str(rec, "namespace")) != NULL &&
	    (rc = put_one(&gs[AUDIT_IDX_NS], s, t, seq, del)) != 0)
		goto out;
	if ((rc = put_strings(&gs[AUDIT_IDX_IMAGE],
	         json_object_get(claims, "images"), t, seq, del)) != 0)
		goto out;
	rc = put_strings(&gs[AUDIT_IDX_IMAGE],
	    json_object_get(claims, "images-names"), t, seq, del);
out:
	return rc;
}

int
audit_index_update(struct audit_env *e, MDB_txn *txn, const json_t *rec,
    uint64_t seq, long long t, int del)
{
	struct target gs[AUDIT_IDX_N];
	int i;

	for (i = 0; i < AUDIT_IDX_N; i++)
		gs[i] = tgt(e, txn, (enum audit_idx)i);
	return index_record(gs, rec, seq, t, del); /* an LMDB code */
}

int
audit_index_each(const json_t *rec, uint64_t seq, long long t,
    audit_index_fn fn, void *arg)
{
	struct target gs[AUDIT_IDX_N];
	int i;

	memset(gs, 0, sizeof(gs));
	for (i = 0; i < AUDIT_IDX_N; i++) {
		gs[i].fn = fn;
		gs[i].arg = arg;
		gs[i].idx = (enum audit_idx)i;
	}
	return index_record(gs, rec, seq, t, 0);
}

/* The entries of a prepared record, each index through gs[idx]. */
static int
put_prep(const struct target *gs, const struct audit_prep *p, uint64_t seq,
    long long t)
{
	const uint8_t *q = p->idx, *end = p->idx + p->idx_len;
	const char *s;
	size_t n;
	int rc;

	if ((rc = put_one(&gs[AUDIT_IDX_TIME], NULL, t, seq, 0)) != 0)
		return rc;
	while (end - q > 1) {
		s = (const char *)q + 1;
		n = strnlen(s, (size_t)(end - q) - 1);
		if (n == (size_t)(end - q) - 1 || q[0] >= AUDIT_IDX_N)
			return EINVAL; /* malformed: never made by audit_prep_make */
		if (q[0] == AUDIT_IDX_PATH)
			rc = put_path(&gs[AUDIT_IDX_PATH], s, t, seq, 0);
		else
			rc = put_one(&gs[q[0]], s, t, seq, 0);
		if (rc != 0)
			return rc;
		q += n + 2;
	}
	return 0;
}

int
audit_index_put_prep(struct audit_env *e, MDB_txn *txn,
    const struct audit_prep *p, uint64_t seq, long long t)
{
	struct target gs[AUDIT_IDX_N];
	int i;

	for (i = 0; i < AUDIT_IDX_N; i++)
		gs[i] = tgt(e, txn, (enum audit_idx)i);
	return put_prep(gs, p, seq, t);
}

int
audit_index_cursors_open(struct audit_env *e, MDB_txn *txn,
    struct audit_index_cursors *ic)
{
	int i, rc;

	memset(ic, 0, sizeof(*ic));
	for (i = 0; i < AUDIT_IDX_N; i++) {
		if ((rc = mdb_cursor_open(txn, e->idx[i], &ic->c[i])) != 0) {
			ic->c[i] = NULL;
			audit_index_cursors_close(ic);
			return rc;
		}
	}
	return 0;
}

void
audit_index_cursors_close(struct audit_index_cursors *ic)
{
	int i;

	for (i = 0; i < AUDIT_IDX_N; i++) {
		if (ic->c[i] != NULL)
			mdb_cursor_close(ic->c[i]);
		ic->c[i] = NULL;
	}
	for (i = 0; i < AUDIT_PATH_DEPTH_MAX; i++) {
		if (ic->path[i] != NULL)
			mdb_cursor_close(ic->path[i]);
		ic->path[i] = NULL;
	}
}

int
audit_index_put_prep_c(struct audit_index_cursors *ic,
    const struct audit_prep *p, uint64_t seq, long long t)
{
	struct target gs[AUDIT_IDX_N];
	int i;

	for (i = 0; i < AUDIT_IDX_N; i++) {
		gs[i].txn = mdb_cursor_txn(ic->c[i]);
		gs[i].dbi = mdb_cursor_dbi(ic->c[i]);
		gs[i].c = ic->c[i];
		gs[i].depth = NULL;
		gs[i].fn = NULL;
	}
	gs[AUDIT_IDX_PATH].depth = ic->path;
	return put_prep(gs, p, seq, t);
}
