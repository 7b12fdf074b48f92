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
	return json_string_value(json_object_get(json_object_get(rec, "claims"),
	    name));
}

static int
put_one(MDB_txn *txn, MDB_dbi dbi, const char *value, long long t,
    uint64_t seq, int del)
{
	uint8_t kb[AUDIT_KEY_MAX];
	MDB_val k, v = { 0, NULL };
	int rc;

	if (value != NULL && value[0] == '\0')
		return 0;
	k.mv_size = audit_index_key(value, t, seq, kb);
	k.mv_data = kb;
	if (del) {
		rc = mdb_del(txn, dbi, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	return mdb_put(txn, dbi, &k, &v, 0);
}

/* Path entries: "secret/", "secret/data/", ..., and the whole path, so that
 * a prefix query ending in '/' is one exact range scan. */
static int
put_path(MDB_txn *txn, MDB_dbi dbi, const char *path, long long t,
    uint64_t seq, int del)
{
	char pre[AUDIT_IDX_VALUE_MAX + 1];
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
		if ((rc = put_one(txn, dbi, pre, t, seq, del)) != 0)
			return rc;
		depth++;
	}
	memcpy(pre, path, n);
	pre[n] = '\0';
	return put_one(txn, dbi, pre, t, seq, del);
}

static int
put_strings(MDB_txn *txn, MDB_dbi dbi, const json_t *v, long long t,
    uint64_t seq, int del)
{
	size_t i;
	int rc;

	if (json_is_string(v))
		return put_one(txn, dbi, json_string_value(v), t, seq, del);
	if (!json_is_array(v))
		return 0;
	for (i = 0; i < json_array_size(v); i++) {
		const char *s = json_string_value(json_array_get(v, i));

		if (s != NULL && (rc = put_one(txn, dbi, s, t, seq, del)) != 0)
			return rc;
	}
	return 0;
}

int
audit_index_update(struct audit_env *e, MDB_txn *txn, const json_t *rec,
    uint64_t seq, long long t, int del)
{
	const json_t *claims = json_object_get(rec, "claims");
	const char *s;
	int rc;

	if ((rc = put_one(txn, e->idx[AUDIT_IDX_TIME], NULL, t, seq, del)) != 0)
		goto out;
	s = json_string_value(json_object_get(rec, "decision"));
	if (s != NULL &&
	    (rc = put_one(txn, e->idx[AUDIT_IDX_DECISION], s, t, seq, del)) != 0)
		goto out;
	s = json_string_value(json_object_get(rec, "path"));
	if (s != NULL &&
	    (rc = put_path(txn, e->idx[AUDIT_IDX_PATH], s, t, seq, del)) != 0)
		goto out;
	if (!json_is_object(claims))
		goto out;
	if ((s = audit_claim_str(rec, "cluster-name")) != NULL &&
	    (rc = put_one(txn, e->idx[AUDIT_IDX_CLUSTER], s, t, seq, del)) != 0)
		goto out;
	if ((s = audit_claim_str(rec, "datacenter")) != NULL &&
	    (rc = put_one(txn, e->idx[AUDIT_IDX_DC], s, t, seq, del)) != 0)
		goto out;
	if ((s = audit_claim_str(rec, "namespace")) != NULL &&
	    (rc = put_one(txn, e->idx[AUDIT_IDX_NS], s, t, seq, del)) != 0)
		goto out;
	if ((rc = put_strings(txn, e->idx[AUDIT_IDX_IMAGE],
	    json_object_get(claims, "images"), t, seq, del)) != 0)
		goto out;
	rc = put_strings(txn, e->idx[AUDIT_IDX_IMAGE],
	    json_object_get(claims, "images-names"), t, seq, del);
out:
	return rc; /* an LMDB code: the committer maps it */
}

int
audit_index_put_prep(struct audit_env *e, MDB_txn *txn,
    const struct audit_prep *p, uint64_t seq, long long t)
{
	const uint8_t *q = p->idx, *end = p->idx + p->idx_len;
	const char *s;
	size_t n;
	int rc;

	if ((rc = put_one(txn, e->idx[AUDIT_IDX_TIME], NULL, t, seq, 0)) != 0)
		return rc;
	while (end - q > 1) {
		s = (const char *)q + 1;
		n = strnlen(s, (size_t)(end - q) - 1);
		if (n == (size_t)(end - q) - 1 || q[0] >= AUDIT_IDX_N)
			return EINVAL; /* malformed: never made by audit_prep_make */
		if (q[0] == AUDIT_IDX_PATH)
			rc = put_path(txn, e->idx[AUDIT_IDX_PATH], s, t, seq, 0);
		else
			rc = put_one(txn, e->idx[q[0]], s, t, seq, 0);
		if (rc != 0)
			return rc;
		q += n + 2;
	}
	return 0;
}
