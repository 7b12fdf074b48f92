/*
 * audit_lmdb_reader.c - the LMDB backend's reader ops (audit_backend.h):
 * get, filtered queries over the indexes, info.
 *
 * A query walks every index named by its filters at once (a leapfrog join
 * over keys value || 0 || time || seq, all in seq order), so it visits only
 * the records that match every indexed filter within the time window; the
 * record itself is then checked against all filters exactly.
 */
#include "audit_backend.h"
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <stdlib.h>
#include <string.h>

int
audit_lmdb_reader_open(const char *dir, void **be)
{
	struct audit_env *e = NULL;
	int rc;

	*be = NULL;
	if ((rc = audit_env_acquire(dir, 0, 0, &e)) != TSI_OK)
		return rc;
	*be = e;
	return TSI_OK;
}

void
audit_lmdb_reader_close(void *be)
{
	audit_env_release(be, 0);
}

static int
get_in_txn(struct audit_env *e, MDB_txn *txn, uint64_t seq, json_t **rec)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	audit_be64_put(kb, seq);
	if ((rc = mdb_get(txn, e->records, &k, &v)) != 0)
		return audit_mdb_err(rc);
	return audit_record_load(&v, rec);
}

int
audit_lmdb_get(void *be, uint64_t seq, json_t **rec)
{
	struct audit_env *e = be;
	MDB_txn *txn = NULL;
	int rc;

	if (rec == NULL)
		return TSI_ERR_INVALID_ARG;
	*rec = NULL;
	if ((rc = audit_env_read_begin(e, &txn)) != TSI_OK)
		return rc;
	rc = get_in_txn(e, txn, seq, rec);
	audit_env_read_end(e, txn);
	return rc;
}

/* One index range: keys prefix || t || s. */
struct scan {
	MDB_cursor *c;
	uint8_t prefix[AUDIT_IDX_VALUE_MAX + 1];
	size_t plen;
	int positioned;
	uint64_t t, s; /* current position, valid when positioned */
};

struct pos {
	uint64_t t, s;
};

static int
pos_lt(struct pos a, struct pos b)
{
	return a.t < b.t || (a.t == b.t && a.s < b.s);
}

/* Reads the cursor's key; 1 when it is inside the scan's range. */
static int
scan_key(struct scan *sc, const MDB_val *k, int rc)
{
	const uint8_t *p = k->mv_data;

	if (rc != 0 || k->mv_size != sc->plen + 16 ||
	    memcmp(p, sc->prefix, sc->plen) != 0)
		return 0;
	sc->t = audit_be64_get(p + sc->plen);
	sc->s = audit_be64_get(p + sc->plen + 8);
	sc->positioned = 1;
	return 1;
}

/* Moves sc to its first key >= target. 0 when the range is exhausted. */
static int
scan_seek(struct scan *sc, struct pos target)
{
	uint8_t kb[AUDIT_KEY_MAX];
	MDB_val k, v;
	struct pos cur;
	int rc;

	if (sc->positioned) {
		cur.t = sc->t;
		cur.s = sc->s;
		if (!pos_lt(cur, target))
			return 1;
		/* the common step is to the very next key */
		rc = mdb_cursor_get(sc->c, &k, &v, MDB_NEXT);
		if (!scan_key(sc, &k, rc))
			return 0;
		cur.t = sc->t;
		cur.s = sc->s;
		if (!pos_lt(cur, target))
			return 1;
	}
	memcpy(kb, sc->prefix, sc->plen);
	audit_be64_put(kb + sc->plen, target.t);
	audit_be64_put(kb + sc->plen + 8, target.s);
	k.mv_size = sc->plen + 16;
	k.mv_data = kb;
	rc = mdb_cursor_get(sc->c, &k, &v, MDB_SET_RANGE);
	return scan_key(sc, &k, rc);
}

static int
str_in(const json_t *arr, const char *s)
{
	size_t i;

	if (json_is_string(arr))
		return strcmp(json_string_value(arr), s) == 0;
	for (i = 0; i < json_array_size(arr); i++) {
		const char *x = json_string_value(json_array_get(arr, i));

		if (x != NULL && strcmp(x, s) == 0)
			return 1;
	}
	return 0;
}

static int
claim_eq(const json_t *rec, const char *name, const char *want)
{
	const char *v;

	if (want == NULL)
		return 1;
	v = audit_claim_str(rec, name);
	return v != NULL && strcmp(v, want) == 0;
}

/* The exact check of every filter on a record. */
static int
matches(const json_t *rec, const struct tsi_audit_query *q)
{
	const json_t *claims = json_object_get(rec, "claims");
	long long t = json_integer_value(json_object_get(rec, "time_us"));
	const char *s;

	if ((q->since_us && t < q->since_us) ||
	    (q->until_us && t >= q->until_us))
		return 0;
	if ((uint64_t)json_integer_value(json_object_get(rec, "seq")) <=
	    q->after_seq)
		return 0;
	if (q->decision != NULL) {
		s = json_string_value(json_object_get(rec, "decision"));
		if (s == NULL || strcmp(s, q->decision) != 0)
			return 0;
	}
	if (q->op != NULL) {
		s = json_string_value(json_object_get(rec, "op"));
		if (s == NULL || strcmp(s, q->op) != 0)
			return 0;
	}
	if (q->status != 0 &&
	    (!json_is_integer(json_object_get(rec, "status")) ||
	        json_integer_value(json_object_get(rec, "status")) !=
	            q->status))
		return 0;
	if (q->path_prefix != NULL) {
		s = json_string_value(json_object_get(rec, "path"));
		if (s == NULL ||
		    strncmp(s, q->path_prefix, strlen(q->path_prefix)) != 0)
			return 0;
	}
	if (!claim_eq(rec, "cluster-name", q->cluster_name) ||
	    !claim_eq(rec, "datacenter", q->datacenter) ||
	    !claim_eq(rec, "namespace", q->namespace_))
		return 0;
	if (q->image != NULL &&
	    !str_in(json_object_get(claims, "images"), q->image) &&
	    !str_in(json_object_get(claims, "images-names"), q->image))
		return 0;
	return 1;
}

static int
add_scan(struct audit_env *e, MDB_txn *txn, struct scan *scans, size_t *n,
    enum audit_idx idx, const char *value, size_t vlen)
{
	struct scan *sc = &scans[*n];
	int rc;

	memset(sc, 0, sizeof(*sc));
	if (vlen > AUDIT_IDX_VALUE_MAX)
		vlen = AUDIT_IDX_VALUE_MAX;
	if (value != NULL) {
		memcpy(sc->prefix, value, vlen);
		sc->prefix[vlen] = 0;
		sc->plen = vlen + 1;
	}
	if ((rc = mdb_cursor_open(txn, e->idx[idx], &sc->c)) != 0)
		return audit_mdb_err(rc);
	(*n)++;
	return TSI_OK;
}

/* The longest prefix of p that ends in '/', which the path index holds. */
static size_t
path_index_len(const char *p)
{
	const char *slash = strrchr(p, '/');

	return slash == NULL ? 0 : (size_t)(slash - p) + 1;
}

static int
build_scans(struct audit_env *e, MDB_txn *txn, const struct tsi_audit_query *q,
    struct scan *scans, size_t *n)
{
	int r = TSI_OK;
	size_t pl;

	*n = 0;
#define ADD(idx, v) \
	do { \
		if ((v) != NULL && (v)[0] != '\0' && r == TSI_OK) \
			r = add_scan(e, txn, scans, n, (idx), (v), strlen(v)); \
	} while (0)
	ADD(AUDIT_IDX_IMAGE, q->image);
	ADD(AUDIT_IDX_NS, q->namespace_);
	ADD(AUDIT_IDX_CLUSTER, q->cluster_name);
	ADD(AUDIT_IDX_DC, q->datacenter);
	ADD(AUDIT_IDX_DECISION, q->decision);
#undef ADD
	if (r == TSI_OK && q->path_prefix != NULL &&
	    (pl = path_index_len(q->path_prefix)) > 0)
		r = add_scan(e, txn, scans, n, AUDIT_IDX_PATH, q->path_prefix,
		    pl);
	if (r == TSI_OK && *n == 0 && (q->since_us || q->until_us))
		r = add_scan(e, txn, scans, n, AUDIT_IDX_TIME, NULL, 0);
	return r;
}

/* Where the query starts: the first record after after_seq, not before
 * since_us. 0 when nothing is left. */
static int
start_pos(struct audit_env *e, MDB_txn *txn, const struct tsi_audit_query *q,
    struct pos *p)
{
	MDB_cursor *c = NULL;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	json_t *rec = NULL;
	int ok = 1;

	p->t = q->since_us > 0 ? (uint64_t)q->since_us : 0;
	p->s = 0;
	if (q->after_seq == 0)
		return 1;
	if (mdb_cursor_open(txn, e->records, &c) != 0)
		return 0;
	audit_be64_put(kb, q->after_seq + 1);
	if (mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) != 0 ||
	    audit_record_load(&v, &rec) != TSI_OK) {
		ok = 0;
	} else if ((uint64_t)json_integer_value(
	               json_object_get(rec, "time_us")) >= p->t) {
		p->t = (uint64_t)json_integer_value(
		    json_object_get(rec, "time_us"));
		p->s = audit_be64_get(k.mv_data);
	}
	json_decref(rec);
	mdb_cursor_close(c);
	return ok;
}

struct emit {
	const struct tsi_audit_query *q;
	int (*cb)(const json_t *, void *);
	void *arg;
	size_t limit, emitted;
	uint64_t last;
	int stopped; /* the callback asked to stop */
	int more;    /* a match exists past the limit */
};

/* Checks one candidate; 1 when the walk should end. */
static int
consider(struct audit_env *e, MDB_txn *txn, uint64_t seq, struct emit *em,
    const MDB_val *val)
{
	json_t *rec = NULL;
	int done = 0;

	if (val != NULL) {
		if (audit_record_load(val, &rec) != TSI_OK)
			return 0;
	} else if (get_in_txn(e, txn, seq, &rec) != TSI_OK) {
		return 0; /* an index entry without its record: pruned under us */
	}
	if (!matches(rec, em->q))
		goto out;
	if (em->emitted == em->limit) {
		em->more = 1;
		done = 1;
		goto out;
	}
	em->emitted++;
	em->last = seq;
	if (em->cb(rec, em->arg) != 0) {
		em->stopped = 1;
		done = 1;
	}
out:
	json_decref(rec);
	return done;
}

static void
walk_records(struct audit_env *e, MDB_txn *txn, struct emit *em)
{
	MDB_cursor *c = NULL;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	if (mdb_cursor_open(txn, e->records, &c) != 0)
		return;
	audit_be64_put(kb, em->q->after_seq + 1);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (k.mv_size == 8 &&
		    consider(e, txn, audit_be64_get(k.mv_data), em, &v))
			break;
	mdb_cursor_close(c);
}

static void
walk_join(struct audit_env *e, MDB_txn *txn, struct scan *scans, size_t n,
    struct pos target, struct emit *em)
{
	struct pos cur;
	size_t i;
	int aligned;

	for (;;) {
		do {
			aligned = 1;
			for (i = 0; i < n; i++) {
				if (!scan_seek(&scans[i], target))
					return;
				cur.t = scans[i].t;
				cur.s = scans[i].s;
				if (pos_lt(target, cur)) {
					target = cur;
					aligned = 0;
				}
			}
		} while (!aligned);
		if (em->q->until_us && target.t >= (uint64_t)em->q->until_us)
			return;
		if (consider(e, txn, target.s, em, NULL))
			return;
		target.s++;
	}
}

/*
 * Whether the indexes can be trusted to name every record: the time index
 * holds one entry per record. Index entries deleted with a record's (by
 * hand, or a bug) would make every indexed query skip it silently; then
 * the query reads the records themselves (slower, complete) and says so.
 * A partial loss (one index of one record) is what verify finds.
 */
static int
indexes_complete(struct audit_env *e, MDB_txn *txn)
{
	MDB_stat rs, ts;

	if (mdb_stat(txn, e->records, &rs) != 0 ||
	    mdb_stat(txn, e->idx[AUDIT_IDX_TIME], &ts) != 0)
		return 0;
	if (rs.ms_entries == ts.ms_entries)
		return 1;
	tsi_log(TSI_LOG_WARN, "audit.index_incomplete",
	    TSI_LI("records", (long long)rs.ms_entries),
	    TSI_LI("time_index", (long long)ts.ms_entries),
	    TSI_LS("action", "query reads every record; run tsi audit verify"));
	return 0;
}

/* The last seq in the records table of txn; 0 when empty. */
static uint64_t
head_in_txn(struct audit_env *e, MDB_txn *txn)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t seq = 0;

	if (mdb_cursor_open(txn, e->records, &c) != 0)
		return 0;
	if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
		seq = audit_be64_get(k.mv_data);
	mdb_cursor_close(c);
	return seq;
}

int
audit_lmdb_query(void *be, const struct tsi_audit_query *q,
    int (*cb)(const json_t *rec, void *arg), void *arg, uint64_t *next_seq,
    uint64_t *cursor)
{
	struct audit_env *e = be;
	struct scan scans[8];
	struct emit em;
	struct pos start;
	MDB_txn *txn = NULL;
	size_t n = 0, i;
	int rc;

	if (q == NULL || cb == NULL)
		return TSI_ERR_INVALID_ARG;
	if (cursor != NULL)
		*cursor = 0;
	if (next_seq != NULL)
		*next_seq = 0;
	if (q->since_us < 0 || q->until_us < 0)
		return TSI_ERR_INVALID_ARG;
	memset(&em, 0, sizeof(em));
	em.q = q;
	em.cb = cb;
	em.arg = arg;
	em.limit = q->limit ? q->limit : 100;
	if ((rc = audit_env_read_begin(e, &txn)) != TSI_OK)
		return rc;
	memset(scans, 0, sizeof(scans));
	if ((rc = build_scans(e, txn, q, scans, &n)) != TSI_OK)
		goto out;
	if (n == 0 || !indexes_complete(e, txn))
		walk_records(e, txn, &em);
	else if (start_pos(e, txn, q, &start))
		walk_join(e, txn, scans, n, start, &em);
	if (next_seq != NULL && (em.more || em.stopped))
		*next_seq = em.last;
	if (cursor != NULL) {
		uint64_t c = q->after_seq;

		if (em.more || em.stopped || q->until_us != 0) {
			if (em.last > c)
				c = em.last;
		} else if (head_in_txn(e, txn) > c) {
			c = head_in_txn(e, txn);
		}
		*cursor = c;
	}
	rc = TSI_OK;
out:
	for (i = 0; i < n; i++)
		mdb_cursor_close(scans[i].c);
	audit_env_read_end(e, txn);
	return rc;
}

int
audit_lmdb_info(void *be, struct tsi_audit_info *info)
{
	struct audit_env *e = be;
	MDB_txn *txn = NULL;
	MDB_stat st;
	MDB_envinfo ei;
	struct audit_point head, pp;
	MDB_val k = { 11, "signed_head" }, v;
	json_t *j;
	int rc;

	if (info == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(info, 0, sizeof(*info));
	if ((rc = audit_env_read_begin(e, &txn)) != TSI_OK)
		return rc;
	if ((rc = audit_meta_get_point(e, txn, "head", &head)) != TSI_OK ||
	    (rc = audit_meta_get_point(e, txn, "prune", &pp)) != TSI_OK)
		goto out;
	info->last_seq = head.seq;
	info->first_seq = pp.seq;
	if (mdb_stat(txn, e->records, &st) == 0)
		info->records = st.ms_entries;
	info->live_bytes = audit_live_bytes(e, txn);
	if (mdb_env_info(e->env, &ei) == 0)
		info->map_size = ei.me_mapsize;
	if (mdb_get(txn, e->meta, &k, &v) == 0 &&
	    (j = json_loadb(v.mv_data, v.mv_size, 0, NULL)) != NULL) {
		info->signed_seq =
		    (uint64_t)json_integer_value(json_object_get(j, "seq"));
		snprintf(info->signed_kid, sizeof(info->signed_kid), "%s",
		    json_string_value(json_object_get(j, "kid"))
		        ? json_string_value(json_object_get(j, "kid"))
		        : "");
		json_decref(j);
	}
	rc = TSI_OK;
out:
	audit_env_read_end(e, txn);
	return rc;
}
