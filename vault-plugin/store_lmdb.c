/*
 * store_lmdb.c - the KV store on LMDB.
 *
 * Opened by kv_store_open for "lmdb:///dir". Three databases in one
 * environment:
 *   "meta": path -> JSON {"cur","old","ct","ut","v":[[version,created_us,
 *           deleted_us,destroyed],...]} (oldest first), then the path's
 *           settings when set: "mv", "cr", "dva", "cm" (custom_metadata)
 *   "data": path NUL version(8 bytes, big endian) -> sealed blob
 *   "conf": "mount" -> the mount's settings: max_versions, cas_required,
 *           delete_version_after (seconds), each 8 bytes big endian
 * The NUL separator keeps one path's versions together and apart from any
 * other path (validated paths never contain NUL). Every operation is one
 * transaction; LMDB serialises writers, which gives put its atomic
 * read-check-write.
 */
#include "store.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* Free bytes under which a failed write is taken for a full disk: more
 * than one value and its pages (values are at most max_body, 64 MiB). */
#define KV_FULL_SLACK ((unsigned long long)128 << 20)

struct kv_lmdb {
	struct kv_store base; /* first: the interface */
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi data;
	MDB_dbi conf;
	unsigned max_versions;
};

static int
lmdb_err(const char *what, int rc)
{
	tsi_log(TSI_LOG_ERROR, "kv.store_error", TSI_LS("op", what),
	    TSI_LS("lmdb", mdb_strerror(rc)));
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		return TSI_ERR_STORE_FULL;
	return TSI_ERR_STORE;
}

/*
 * A commit that could not write its pages. A full disk shows as ENOSPC or
 * EDQUOT, or as EIO: LMDB reports a short write (the file system took part
 * of the pages, then ran out) as EIO. An EIO on a file system with less
 * free room than the write could need is a full disk too: the caller
 * answers 503 "storage full" (retry later), not 500.
 */
static int
commit_err(struct kv_lmdb *s, int rc)
{
	struct statvfs sv;
	const char *path = NULL;
	int r = lmdb_err("commit", rc);

	if (rc == ENOSPC || rc == EDQUOT)
		return TSI_ERR_STORE_FULL;
	if (rc == EIO && mdb_env_get_path(s->env, &path) == 0 && path != NULL &&
	    statvfs(path, &sv) == 0 &&
	    (unsigned long long)sv.f_bavail * sv.f_frsize < KV_FULL_SLACK)
		return TSI_ERR_STORE_FULL;
	return r;
}

static int
data_key(const char *path, uint64_t version, uint8_t *key, size_t cap,
    size_t *len)
{
	size_t n = strlen(path);
	int i;

	if (n > KV_PATH_MAX || cap - 9 < n)
		return TSI_ERR_TOO_LARGE;
	memcpy(key, path, n);
	key[n] = '\0';
	for (i = 0; i < 8; i++)
		key[n + 1 + (size_t)i] = (uint8_t)(version >> (56 - 8 * i));
	*len = n + 9;
	return TSI_OK;
}

static int
pair_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv_pair *)a)->key,
	    ((const struct kv_pair *)b)->key);
}

/* The stored "cm" object (absent: none) into m's sorted pairs. */
static int
custom_decode(json_t *cm, struct kv_meta *m)
{
	const char *key;
	json_t *v;
	size_t i = 0;

	if (cm == NULL)
		return TSI_OK;
	if (!json_is_object(cm))
		return TSI_ERR_STORE;
	if (json_object_size(cm) == 0)
		return TSI_OK;
	if ((m->custom = calloc(json_object_size(cm), sizeof(*m->custom))) ==
	    NULL)
		return TSI_ERR_ALLOC;
	json_object_foreach (cm, key, v) {
		if (!json_is_string(v))
			return TSI_ERR_STORE;
		m->ncustom = i + 1;
		if ((m->custom[i].key = strdup(key)) == NULL ||
		    (m->custom[i].value = strdup(json_string_value(v))) == NULL)
			return TSI_ERR_ALLOC;
		i++;
	}
	qsort(m->custom, m->ncustom, sizeof(*m->custom), pair_cmp);
	return TSI_OK;
}

/* The general parse of the stored metadata: any JSON object of that
 * shape. */
static int
meta_decode_json(const void *text, size_t len, struct kv_meta *m)
{
	json_t *j, *arr, *e;
	json_error_t jerr;
	size_t i;
	int r = TSI_ERR_STORE;

	memset(m, 0, sizeof(*m));
	if ((j = json_loadb(text, len, 0, &jerr)) == NULL)
		return TSI_ERR_STORE;
	arr = json_object_get(j, "v");
	if (!json_is_array(arr))
		goto out;
	m->current = (uint64_t)json_integer_value(json_object_get(j, "cur"));
	m->oldest = (uint64_t)json_integer_value(json_object_get(j, "old"));
	m->created_us = json_integer_value(json_object_get(j, "ct"));
	m->updated_us = json_integer_value(json_object_get(j, "ut"));
	m->max_versions =
	    (unsigned)json_integer_value(json_object_get(j, "mv"));
	m->cas_required = json_is_true(json_object_get(j, "cr"));
	m->delete_after_s = json_integer_value(json_object_get(j, "dva"));
	if ((r = custom_decode(json_object_get(j, "cm"), m)) != TSI_OK)
		goto out;
	r = TSI_ERR_STORE;
	m->n = json_array_size(arr);
	if (m->n > 0 &&
	    (m->versions = calloc(m->n, sizeof(*m->versions))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	json_array_foreach (arr, i, e) {
		if (!json_is_array(e) || json_array_size(e) != 4)
			goto out;
		m->versions[i].version =
		    (uint64_t)json_integer_value(json_array_get(e, 0));
		m->versions[i].created_us =
		    json_integer_value(json_array_get(e, 1));
		m->versions[i].deleted_us =
		    json_integer_value(json_array_get(e, 2));
		m->versions[i].destroyed =
		    (int)json_integer_value(json_array_get(e, 3));
	}
	r = TSI_OK;
out:
	if (r != TSI_OK)
		kv_meta_clear(m);
	json_decref(j);
	return r;
}

/* A cursor over the exact text meta_encode writes. */
struct scan {
	const char *p, *end;
};

static int
scan_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return 0;
	s->p += n;
	return 1;
}

/* An integer as jansson prints json_int_t: -?(0|[1-9][0-9]*), in range. */
static int
scan_int(struct scan *s, long long *out)
{
	unsigned long long v = 0, lim = (unsigned long long)LLONG_MAX;
	int neg = 0, digits = 0;

	if (s->p < s->end && *s->p == '-') {
		neg = 1;
		lim++;
		s->p++;
	}
	if (s->p < s->end && *s->p == '0' && s->end - s->p > 1 &&
	    s->p[1] >= '0' && s->p[1] <= '9')
		return 0; /* not jansson's output: let the parser judge */
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		unsigned d = (unsigned)(*s->p - '0');
		if (v > (lim - d) / 10)
			return 0;
		v = v * 10 + d;
		s->p++;
		digits++;
	}
	if (digits == 0)
		return 0;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 1;
}

/* kv_meta_encode's own output, parsed without building JSON values (a read
 * costs one of these: 27 k instructions through jansson, a few hundred
 * here). 0 when the text is not exactly in that form; the caller then
 * takes the general parse, which gives the same result for any text this
 * accepts (tests/unit/vault test_kv_answer.c). */
static int
meta_decode_fast(const char *text, size_t len, struct kv_meta *m)
{
	struct scan s = { text, text + len };
	long long cur, old, ct, ut, f[4];
	const char *q;
	size_t n = 0, i, k;

	if (!scan_lit(&s, "{\"cur\":") || !scan_int(&s, &cur) ||
	    !scan_lit(&s, ",\"old\":") || !scan_int(&s, &old) ||
	    !scan_lit(&s, ",\"ct\":") || !scan_int(&s, &ct) ||
	    !scan_lit(&s, ",\"ut\":") || !scan_int(&s, &ut) ||
	    !scan_lit(&s, ",\"v\":["))
		return 0;
	for (q = s.p; q < s.end; q++)
		n += *q == '[';
	memset(m, 0, sizeof(*m));
	if (n > 0 && (m->versions = calloc(n, sizeof(*m->versions))) == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if ((i > 0 && !scan_lit(&s, ",")) || !scan_lit(&s, "["))
			goto fail;
		for (k = 0; k < 4; k++)
			if ((k > 0 && !scan_lit(&s, ",")) ||
			    !scan_int(&s, &f[k]))
				goto fail;
		if (!scan_lit(&s, "]"))
			goto fail;
		m->versions[i].version = (uint64_t)f[0];
		m->versions[i].created_us = f[1];
		m->versions[i].deleted_us = f[2];
		m->versions[i].destroyed = (int)f[3];
	}
	if (!scan_lit(&s, "]}") || s.p != s.end)
		goto fail;
	m->n = n;
	m->current = (uint64_t)cur;
	m->oldest = (uint64_t)old;
	m->created_us = ct;
	m->updated_us = ut;
	return 1;
fail:
	kv_meta_clear(m);
	return 0;
}

static int
kv_meta_decode(const void *text, size_t len, struct kv_meta *m)
{
	if (meta_decode_fast(text, len, m))
		return TSI_OK;
	return meta_decode_json(text, len, m);
}

/* Parses the stored metadata. */
static int
meta_decode(const MDB_val *val, struct kv_meta *m)
{
	return kv_meta_decode(val->mv_data, val->mv_size, m);
}

/* *out: malloc'd JSON text, caller frees. */
static int
kv_meta_encode(const struct kv_meta *m, char **out)
{
	json_t *j = NULL, *arr, *cm = NULL;
	size_t i;
	int r = TSI_ERR_ALLOC;

	if ((arr = json_array()) == NULL)
		return TSI_ERR_ALLOC;
	if (m->ncustom > 0 && (cm = json_object()) == NULL)
		goto out;
	for (i = 0; i < m->ncustom; i++)
		if (json_object_set_new(cm, m->custom[i].key,
		        json_string(m->custom[i].value)) != 0)
			goto out;
	for (i = 0; i < m->n; i++) {
		const struct kv_version_meta *v = &m->versions[i];
		if (json_array_append_new(arr,
		        json_pack("[IIIi]", (json_int_t)v->version,
		            (json_int_t)v->created_us,
		            (json_int_t)v->deleted_us, v->destroyed)) != 0)
			goto out;
	}
	j = json_pack("{sIsIsIsIsO}", "cur", (json_int_t)m->current, "old",
	    (json_int_t)m->oldest, "ct", (json_int_t)m->created_us, "ut",
	    (json_int_t)m->updated_us, "v", arr);
	if (j == NULL)
		goto out;
	/* Settings only when set: the common form stays the one the fast
	 * decoder reads. */
	if ((m->max_versions != 0 &&
	        json_object_set_new(j, "mv",
	            json_integer((json_int_t)m->max_versions)) != 0) ||
	    (m->cas_required &&
	        json_object_set_new(j, "cr", json_true()) != 0) ||
	    (m->delete_after_s != 0 &&
	        json_object_set_new(j, "dva",
	            json_integer((json_int_t)m->delete_after_s)) != 0) ||
	    (cm != NULL && json_object_set(j, "cm", cm) != 0))
		goto out;
	if ((*out = json_dumps(j, JSON_COMPACT)) == NULL)
		goto out;
	r = TSI_OK;
out:
	json_decref(cm);
	json_decref(arr);
	json_decref(j);
	return r;
}

static int
meta_read(struct kv_lmdb *s, MDB_txn *txn, const char *path, struct kv_meta *m)
{
	MDB_val k = { strlen(path), (void *)path }, v;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return TSI_ERR_NOT_FOUND;
	if (rc != 0)
		return lmdb_err("meta_get", rc);
	return meta_decode(&v, m);
}

static int
meta_write(struct kv_lmdb *s, MDB_txn *txn, const char *path,
    const struct kv_meta *m)
{
	MDB_val k = { strlen(path), (void *)path }, v;
	char *text = NULL;
	int r, rc;

	if ((r = kv_meta_encode(m, &text)) != TSI_OK)
		return r;
	v.mv_size = strlen(text);
	v.mv_data = text;
	rc = mdb_put(txn, s->meta, &k, &v, 0);
	free(text);
	return rc == 0 ? TSI_OK : lmdb_err("meta_put", rc);
}

#define MOUNT_KEY "mount"
#define MOUNT_LEN 24 /* max_versions, cas_required, delete_after_s */

/* The mount's settings are read by every get: a fixed binary form (three
 * big-endian 64-bit fields), not JSON, keeps that a copy. */
static void
u64_put(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t
u64_get(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The mount's settings as stored in "conf"; zero when never set. */
static int
conf_read(struct kv_lmdb *s, MDB_txn *txn, struct kv_mount_cfg *c)
{
	MDB_val k = { strlen(MOUNT_KEY), (void *)MOUNT_KEY }, v;
	const uint8_t *p;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = mdb_get(txn, s->conf, &k, &v);
	if (rc == MDB_NOTFOUND)
		return TSI_OK;
	if (rc != 0)
		return lmdb_err("conf_get", rc);
	if (v.mv_size != MOUNT_LEN)
		return TSI_ERR_STORE;
	p = v.mv_data;
	c->max_versions = (unsigned)u64_get(p);
	c->cas_required = u64_get(p + 8) != 0;
	c->delete_after_s = (long long)u64_get(p + 16);
	return TSI_OK;
}

/* Deletes the sealed value of version (absent is fine: destroyed or
 * already dropped). */
static int
data_drop(struct kv_lmdb *s, MDB_txn *txn, const char *path, uint64_t version)
{
	uint8_t key[KV_PATH_MAX + 16];
	size_t klen;
	MDB_val k;
	int r, rc;

	if ((r = data_key(path, version, key, sizeof(key), &klen)) != TSI_OK)
		return r;
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_del(txn, s->data, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_err("data_del", rc);
	return TSI_OK;
}

/* What an edit asks of meta_edit after changing m. */
#define EDIT_WRITE 0  /* store m (TSI_OK) */
#define EDIT_REMOVE 1 /* remove the path's metadata record */

/* Changes a path's metadata (and values) inside meta_edit's transaction.
 * Returns EDIT_WRITE, EDIT_REMOVE, or a TSI_ERR_* that aborts it. */
typedef int edit_fn(struct kv_lmdb *s, MDB_txn *txn, const char *path,
    struct kv_meta *m, void *arg);

/*
 * The one read-modify-write of a path: begin, read its metadata (create:
 * start empty when it has none; else TSI_ERR_NOT_FOUND), let fn change it,
 * write or remove it, commit. Every change of the store goes through here,
 * so each is one transaction and a full disk is reported the same way.
 */
static int
meta_edit(struct kv_lmdb *s, const char *path, int create, long long now_us,
    edit_fn *fn, void *arg)
{
	struct kv_meta m;
	MDB_txn *txn = NULL;
	MDB_val k = { strlen(path), (void *)path };
	int r, rc;

	memset(&m, 0, sizeof(m));
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err("txn_begin", rc);
	r = meta_read(s, txn, path, &m);
	if (r == TSI_ERR_NOT_FOUND && create) {
		memset(&m, 0, sizeof(m));
		m.created_us = now_us;
	} else if (r != TSI_OK)
		goto out;
	if ((r = fn(s, txn, path, &m, arg)) < 0)
		goto out;
	if (r == EDIT_REMOVE) {
		if ((rc = mdb_del(txn, s->meta, &k, NULL)) != 0) {
			r = lmdb_err("meta_del", rc);
			goto out;
		}
	} else {
		m.updated_us = now_us;
		if ((r = meta_write(s, txn, path, &m)) != TSI_OK)
			goto out;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	r = rc == 0 ? TSI_OK : commit_err(s, rc);
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	kv_meta_clear(&m);
	return r;
}

static struct kv_version_meta *
find_version(const struct kv_meta *m, uint64_t version)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->versions[i].version == version)
			return &m->versions[i];
	return NULL;
}

struct put_arg {
	long long cas;
	kv_seal_fn *seal;
	void *seal_arg;
	long long now_us;
	struct kv_version_meta *out;
};

static int
edit_put(struct kv_lmdb *s, MDB_txn *txn, const char *path, struct kv_meta *m,
    void *arg)
{
	struct put_arg *a = arg;
	struct kv_mount_cfg mc;
	struct kv_version_meta *nv;
	MDB_val k, v;
	uint8_t key[KV_PATH_MAX + 16];
	uint8_t *blob = NULL;
	size_t blen = 0, klen;
	unsigned keep;
	int r, rc;

	if ((r = conf_read(s, txn, &mc)) != TSI_OK)
		return r;
	if (a->cas < 0 && (m->cas_required || mc.cas_required))
		return TSI_ERR_DENIED;
	if (a->cas >= 0 && (uint64_t)a->cas != m->current)
		return TSI_ERR_EXISTS;
	if ((nv = realloc(m->versions, (m->n + 1) * sizeof(*nv))) == NULL)
		return TSI_ERR_ALLOC;
	m->versions = nv;
	nv = &m->versions[m->n++];
	memset(nv, 0, sizeof(*nv));
	nv->version = m->current + 1;
	nv->created_us = a->now_us;
	m->current = nv->version;
	if (m->oldest == 0)
		m->oldest = nv->version;
	*a->out = *nv;

	if ((r = a->seal(a->seal_arg, nv->version, &blob, &blen)) != TSI_OK)
		goto out;
	if ((r = data_key(path, nv->version, key, sizeof(key), &klen)) !=
	    TSI_OK)
		goto out;
	k.mv_size = klen;
	k.mv_data = key;
	v.mv_size = blen;
	v.mv_data = blob;
	if ((rc = mdb_put(txn, s->data, &k, &v, 0)) != 0) {
		r = lmdb_err("data_put", rc);
		goto out;
	}
	/* Drop the oldest versions beyond the limit, values and metadata. */
	keep = m->max_versions ? m->max_versions
	    : mc.max_versions  ? mc.max_versions
	                       : s->max_versions;
	while (m->n > keep) {
		if ((r = data_drop(s, txn, path, m->versions[0].version)) !=
		    TSI_OK)
			goto out;
		memmove(m->versions, m->versions + 1,
		    (m->n - 1) * sizeof(*m->versions));
		m->n--;
		m->oldest = m->versions[0].version;
	}
	r = EDIT_WRITE;
out:
	tsi_freezero(blob, blen);
	return r;
}

static int
lmdb_put(struct kv_store *base, const char *path, long long cas,
    kv_seal_fn *seal, void *arg, long long now_us, struct kv_version_meta *out)
{
	struct put_arg a = { cas, seal, arg, now_us, out };

	return meta_edit((struct kv_lmdb *)base, path, 1, now_us, edit_put, &a);
}

static int
lmdb_get(struct kv_store *base, const char *path, uint64_t version,
    long long now_us, struct kv_version_meta *meta, struct kv_meta *path_meta,
    uint8_t **blob, size_t *len)
{
	struct kv_lmdb *s = (struct kv_lmdb *)base;
	struct kv_meta m;
	struct kv_mount_cfg mc;
	const struct kv_version_meta *vm;
	MDB_txn *txn = NULL;
	MDB_val k, v;
	uint8_t key[KV_PATH_MAX + 16];
	long long dt;
	size_t klen;
	int r, rc;

	*blob = NULL;
	*len = 0;
	memset(&m, 0, sizeof(m));
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_err("txn_begin", rc);
	if ((r = meta_read(s, txn, path, &m)) != TSI_OK)
		goto out;
	if ((r = conf_read(s, txn, &mc)) != TSI_OK)
		goto out;
	if (version == 0)
		version = m.current;
	if ((vm = find_version(&m, version)) == NULL) {
		r = TSI_ERR_NOT_FOUND;
		goto out;
	}
	*meta = *vm;
	/* A deletion scheduled by delete_version_after shows (as in Vault)
	 * before it is due; once due the version reads as deleted. */
	dt = kv_deletion_us(vm, kv_delete_after(&m, &mc));
	meta->deleted_us = dt;
	if (vm->deleted_us != 0 || vm->destroyed || (dt != 0 && dt <= now_us)) {
		r = TSI_OK;
		goto out;
	}
	if ((r = data_key(path, version, key, sizeof(key), &klen)) != TSI_OK)
		goto out;
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_get(txn, s->data, &k, &v);
	if (rc != 0) {
		/* Metadata says the value exists: a missing value is damage. */
		r = lmdb_err("data_get", rc);
		goto out;
	}
	if ((*blob = malloc(v.mv_size ? v.mv_size : 1)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	memcpy(*blob, v.mv_data, v.mv_size);
	*len = v.mv_size;
	r = TSI_OK;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (r == TSI_OK && path_meta != NULL) {
		*path_meta = m; /* transferred */
		memset(&m, 0, sizeof(m));
	}
	kv_meta_clear(&m);
	return r;
}

static int
lmdb_meta(struct kv_store *base, const char *path, struct kv_meta *out)
{
	struct kv_lmdb *s = (struct kv_lmdb *)base;
	MDB_txn *txn = NULL;
	int r, rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_err("txn_begin", rc);
	r = meta_read(s, txn, path, out);
	mdb_txn_abort(txn);
	return r;
}

struct vop_arg {
	enum kv_vop op;
	const uint64_t *v;
	size_t n;
	long long now_us;
	struct kv_version_meta *out; /* soft_delete: the current version */
};

static int
edit_soft_delete(struct kv_lmdb *s, MDB_txn *txn, const char *path,
    struct kv_meta *m, void *arg)
{
	struct vop_arg *a = arg;
	struct kv_version_meta *vm;

	(void)s;
	(void)txn;
	(void)path;
	if ((vm = find_version(m, m->current)) == NULL)
		return TSI_ERR_NOT_FOUND;
	if (vm->deleted_us == 0)
		vm->deleted_us = a->now_us;
	*a->out = *vm;
	return EDIT_WRITE;
}

static int
lmdb_soft_delete(struct kv_store *base, const char *path, long long now_us,
    struct kv_version_meta *out)
{
	struct vop_arg a = { KV_VOP_DELETE, NULL, 0, now_us, out };

	return meta_edit((struct kv_lmdb *)base, path, 0, now_us,
	    edit_soft_delete, &a);
}

static int
edit_versions(struct kv_lmdb *s, MDB_txn *txn, const char *path,
    struct kv_meta *m, void *arg)
{
	struct vop_arg *a = arg;
	struct kv_version_meta *vm;
	size_t i;
	int r;

	for (i = 0; i < a->n; i++) {
		if ((vm = find_version(m, a->v[i])) == NULL)
			continue;
		switch (a->op) {
		case KV_VOP_DELETE:
			if (vm->deleted_us == 0 && !vm->destroyed)
				vm->deleted_us = a->now_us;
			break;
		case KV_VOP_UNDELETE:
			if (!vm->destroyed)
				vm->deleted_us = 0;
			break;
		case KV_VOP_DESTROY:
			if ((r = data_drop(s, txn, path, vm->version)) !=
			    TSI_OK)
				return r;
			vm->destroyed = 1;
			break;
		}
	}
	return EDIT_WRITE;
}

static int
lmdb_versions(struct kv_store *base, const char *path, enum kv_vop op,
    const uint64_t *v, size_t n, long long now_us)
{
	struct vop_arg a = { op, v, n, now_us, NULL };

	return meta_edit((struct kv_lmdb *)base, path, 0, now_us, edit_versions,
	    &a);
}

/* m's custom metadata with c's applied: replaced, or merged (a NULL
 * value removing its key). */
static int
custom_apply(struct kv_meta *m, const struct kv_meta_cfg *c)
{
	struct kv_pair *all = NULL;
	size_t n = 0, i, j, cap;
	int r = TSI_ERR_ALLOC;

	cap = (c->custom_merge ? m->ncustom : 0) + c->ncustom;
	if (cap > 0 && (all = calloc(cap, sizeof(*all))) == NULL)
		return TSI_ERR_ALLOC;
	if (c->custom_merge) {
		for (i = 0; i < m->ncustom; i++) {
			all[n++] = m->custom[i]; /* moved */
			m->custom[i].key = m->custom[i].value = NULL;
		}
	}
	for (i = 0; i < c->ncustom; i++) {
		for (j = 0; j < n && strcmp(all[j].key, c->custom[i].key) != 0;
		     j++)
			;
		if (j == n) {
			if (c->custom[i].value == NULL)
				continue;
			all[n].value = NULL;
			if ((all[n].key = strdup(c->custom[i].key)) == NULL)
				goto out;
			n++;
		}
		free(all[j].value);
		all[j].value = NULL;
		if (c->custom[i].value == NULL) {
			free(all[j].key);
			all[j] = all[--n];
			all[n].key = all[n].value = NULL; /* moved to j */
			continue;
		}
		if ((all[j].value = strdup(c->custom[i].value)) == NULL)
			goto out;
	}
	qsort(all, n, sizeof(*all), pair_cmp);
	kv_pairs_free(m->custom, m->ncustom);
	m->custom = all;
	m->ncustom = n;
	all = NULL;
	r = TSI_OK;
out:
	if (all != NULL) {
		/* A failed strdup left its pair's value NULL: still freeable. */
		kv_pairs_free(all, n);
	}
	return r;
}

static int
edit_set_meta(struct kv_lmdb *s, MDB_txn *txn, const char *path,
    struct kv_meta *m, void *arg)
{
	const struct kv_meta_cfg *c = arg;
	int r;

	(void)s;
	(void)txn;
	(void)path;
	if (c->set_max_versions)
		m->max_versions = c->max_versions;
	if (c->set_cas_required)
		m->cas_required = c->cas_required;
	if (c->set_delete_after)
		m->delete_after_s = c->delete_after_s;
	if (c->set_custom && (r = custom_apply(m, c)) != TSI_OK)
		return r;
	return EDIT_WRITE;
}

static int
lmdb_set_meta(struct kv_store *base, const char *path,
    const struct kv_meta_cfg *c, long long now_us)
{
	return meta_edit((struct kv_lmdb *)base, path, 1, now_us, edit_set_meta,
	    (void *)c);
}

static int
edit_remove(struct kv_lmdb *s, MDB_txn *txn, const char *path,
    struct kv_meta *m, void *arg)
{
	size_t i;
	int r;

	(void)arg;
	for (i = 0; i < m->n; i++)
		if ((r = data_drop(s, txn, path, m->versions[i].version)) !=
		    TSI_OK)
			return r;
	return EDIT_REMOVE;
}

static int
lmdb_remove(struct kv_store *base, const char *path)
{
	return meta_edit((struct kv_lmdb *)base, path, 0, 0, edit_remove, NULL);
}

static int
names_add(struct kv_names *l, const char *name, size_t len)
{
	char **nn;

	if ((nn = realloc(l->name, (l->n + 1) * sizeof(*nn))) == NULL)
		return TSI_ERR_ALLOC;
	l->name = nn;
	if ((nn[l->n] = strndup(name, len)) == NULL)
		return TSI_ERR_ALLOC;
	l->n++;
	return TSI_OK;
}

static int
lmdb_list(struct kv_store *base, const char *prefix, size_t max,
    struct kv_names *out)
{
	struct kv_lmdb *s = (struct kv_lmdb *)base;
	struct kv_names l = { 0, NULL };
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t plen = strlen(prefix);
	int r = TSI_ERR_STORE, rc;

	memset(out, 0, sizeof(*out));
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) {
		r = lmdb_err("txn_begin", rc);
		goto out;
	}
	if ((rc = mdb_cursor_open(txn, s->meta, &cur)) != 0) {
		r = lmdb_err("cursor_open", rc);
		goto out;
	}
	k.mv_size = plen;
	k.mv_data = (void *)prefix;
	rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0 && l.n < max) {
		const char *kp = k.mv_data;
		const char *rest, *slash;
		size_t rlen, nlen;

		if (k.mv_size < plen || memcmp(kp, prefix, plen) != 0)
			break;
		rest = kp + plen;
		rlen = k.mv_size - plen;
		slash = memchr(rest, '/', rlen);
		nlen = slash ? (size_t)(slash - rest) + 1 : rlen;
		/* Keys are sorted: one folder's entries are adjacent. */
		if (nlen > 0 && nlen <= KV_PATH_MAX &&
		    !(l.n > 0 && strlen(l.name[l.n - 1]) == nlen &&
		        memcmp(l.name[l.n - 1], rest, nlen) == 0) &&
		    (r = names_add(&l, rest, nlen)) != TSI_OK)
			goto out;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		r = lmdb_err("cursor_get", rc);
		goto out;
	}
	*out = l;
	memset(&l, 0, sizeof(l));
	r = TSI_OK;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	kv_names_clear(&l);
	return r;
}

static int
lmdb_get_config(struct kv_store *base, struct kv_mount_cfg *out)
{
	struct kv_lmdb *s = (struct kv_lmdb *)base;
	MDB_txn *txn = NULL;
	int r, rc;

	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
		return lmdb_err("txn_begin", rc);
	r = conf_read(s, txn, out);
	mdb_txn_abort(txn);
	return r;
}

static int
lmdb_set_config(struct kv_store *base, const struct kv_mount_cfg *c)
{
	struct kv_lmdb *s = (struct kv_lmdb *)base;
	MDB_txn *txn = NULL;
	MDB_val k = { strlen(MOUNT_KEY), (void *)MOUNT_KEY }, v;
	uint8_t buf[MOUNT_LEN];
	int r, rc;

	u64_put(buf, c->max_versions);
	u64_put(buf + 8, c->cas_required ? 1 : 0);
	u64_put(buf + 16, (uint64_t)c->delete_after_s);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
		return lmdb_err("txn_begin", rc);
	v.mv_size = sizeof(buf);
	v.mv_data = buf;
	if ((rc = mdb_put(txn, s->conf, &k, &v, 0)) != 0) {
		r = lmdb_err("conf_put", rc);
		goto out;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	r = rc == 0 ? TSI_OK : commit_err(s, rc);
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return r;
}

static void
lmdb_close(struct kv_store *base)
{
	struct kv_lmdb *s = (struct kv_lmdb *)base;

	if (s == NULL)
		return;
	if (s->env != NULL)
		mdb_env_close(s->env);
	free(s);
}

static const struct kv_store_ops lmdb_ops = {
	.name = "lmdb",
	.put = lmdb_put,
	.get = lmdb_get,
	.meta = lmdb_meta,
	.soft_delete = lmdb_soft_delete,
	.versions = lmdb_versions,
	.set_meta = lmdb_set_meta,
	.remove = lmdb_remove,
	.list = lmdb_list,
	.get_config = lmdb_get_config,
	.set_config = lmdb_set_config,
	.close = lmdb_close,
};

/* where: the directory ("lmdb:///var/lib/tsi/kv" gives "/var/lib/tsi/kv"). */
static int
lmdb_open(const char *dir, const struct kv_store_opts *opts,
    struct kv_store **out)
{
	struct kv_lmdb *s;
	MDB_txn *txn = NULL;
	size_t map = opts->map_size ? opts->map_size : (size_t)1 << 30;
	unsigned readers = opts->max_readers ? opts->max_readers : 256;
	int r = TSI_ERR_STORE, rc;

	if (*dir == '\0')
		return TSI_ERR_INVALID_ARG;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		tsi_log(TSI_LOG_ERROR, "kv.open_failed", TSI_LS("dir", dir),
		    TSI_LS("error", strerror(errno)));
		return TSI_ERR_IO;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return TSI_ERR_ALLOC;
	s->base.ops = &lmdb_ops;
	s->max_versions = opts->max_versions ? opts->max_versions : 10;
	if ((rc = mdb_env_create(&s->env)) != 0) {
		s->env = NULL;
		r = lmdb_err("env_create", rc);
		goto out;
	}
	if ((rc = mdb_env_set_mapsize(s->env, map)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, readers)) != 0) {
		r = lmdb_err("env_set", rc);
		goto out;
	}
	/*
	 * MDB_NORDAHEAD: reads are point lookups at random places of the
	 * B-trees; the kernel's readahead would pull the neighbouring
	 * 128 KiB of the file into the page cache (and map them into this
	 * process) for every cold page. Only list scans read sequentially,
	 * and they are bounded and rare.
	 */
	if ((rc = mdb_env_open(s->env, dir, MDB_NORDAHEAD, 0600)) != 0) {
		r = lmdb_err("env_open", rc);
		goto out;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "data", MDB_CREATE, &s->data)) != 0 ||
	    (rc = mdb_dbi_open(txn, "conf", MDB_CREATE, &s->conf)) != 0) {
		r = lmdb_err("dbi_open", rc);
		goto out;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		r = lmdb_err("commit", rc);
		goto out;
	}
	*out = &s->base;
	s = NULL;
	r = TSI_OK;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	lmdb_close(s ? &s->base : NULL);
	return r;
}

const struct kv_backend kv_backend_lmdb = {
	.scheme = "lmdb",
	.open = lmdb_open,
};
