/*
 * audit_lmdb_verify.c - the LMDB backend's verify op: walks the chain from
 * the prune point to the head.
 *
 * Names the first record that was edited (hash or canonical form differs),
 * is missing (a gap in seq, or the tail is shorter than the head says) or is
 * out of order (a record stored under another seq than its own), checks
 * the signed head when there is one, and checks the indexes against the
 * records: every entry a record needs is there, and no other entry is.
 */
#include "audit_canon.h"
#include "audit_backend.h"
#include "audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walk {
	struct tsi_audit_verify_result *res;
	int broken;
	/* the index check */
	struct audit_env *e;
	MDB_txn *txn;
	uint64_t expected[AUDIT_IDX_N]; /* distinct keys the records need */
};

static void bad(struct walk *w, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
bad(struct walk *w, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	if (w->broken)
		return;
	w->broken = 1;
	w->res->first_bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(w->res->reason, sizeof(w->res->reason), fmt, ap);
	va_end(ap);
}

/*
 * The index entries of one record, as audit_index_each derives them: each
 * must be in its index (a record missing from an index is skipped by every
 * query filtering on it). Counted once per distinct key, so that after the
 * walk an index holding more entries than the records need is known to
 * hold entries that point at no record carrying that value.
 */
struct rec_key {
	enum audit_idx idx;
	size_t len;
	uint8_t key[AUDIT_KEY_MAX];
};

struct rec_keys {
	struct walk *w;
	uint64_t seq;
	size_t n, cap;
	struct rec_key *k; /* grows: a record has as many as it has images */
};

static int
need_key(void *arg, enum audit_idx idx, const uint8_t *key, size_t len)
{
	struct rec_keys *rk = arg;
	struct walk *w = rk->w;
	MDB_val k = { len, (void *)key }, v;
	size_t i;
	int rc;

	for (i = 0; i < rk->n; i++)
		if (rk->k[i].idx == idx && rk->k[i].len == len &&
		    memcmp(rk->k[i].key, key, len) == 0)
			return 0; /* the same string twice (images, names) */
	if (rk->n == rk->cap) {
		size_t cap = rk->cap ? 2 * rk->cap : 32;
		struct rec_key *nk = realloc(rk->k, cap * sizeof(*nk));

		if (nk == NULL) {
			bad(w, rk->seq, "out of memory checking the indexes");
			return 1;
		}
		rk->k = nk;
		rk->cap = cap;
	}
	{
		rk->k[rk->n].idx = idx;
		rk->k[rk->n].len = len;
		memcpy(rk->k[rk->n].key, key, len);
		rk->n++;
	}
	rc = mdb_get(w->txn, w->e->idx[idx], &k, &v);
	if (rc == MDB_NOTFOUND) {
		bad(w, rk->seq,
		    "record %llu is missing from index %s (value "
		    "\"%.*s\"): filtered queries would skip it",
		    (unsigned long long)rk->seq, audit_index_name(idx),
		    len > 16 ? (int)(len - 17) : 0, (const char *)key);
		return 1;
	}
	if (rc != 0) {
		bad(w, rk->seq, "index %s: %s", audit_index_name(idx),
		    mdb_strerror(rc));
		return 1;
	}
	w->expected[idx]++;
	return 0;
}

static void
check_indexes(struct walk *w, const json_t *rec, uint64_t seq)
{
	struct rec_keys rk;
	long long t = json_integer_value(json_object_get(rec, "time_us"));

	memset(&rk, 0, sizeof(rk));
	rk.w = w;
	rk.seq = seq;
	audit_index_each(rec, seq, t, need_key, &rk);
	free(rk.k);
}

/* Whether key is one of the entries record seq needs in idx. */
struct key_find {
	enum audit_idx idx;
	const uint8_t *key;
	size_t len;
	int found;
};

static int
find_key(void *arg, enum audit_idx idx, const uint8_t *key, size_t len)
{
	struct key_find *kf = arg;

	if (idx == kf->idx && len == kf->len &&
	    memcmp(key, kf->key, len) == 0) {
		kf->found = 1;
		return 1;
	}
	return 0;
}

/* An index holds more entries than the records need: names the first
 * entry that points at no retained record, or at one without its value. */
static void
find_stray(struct walk *w, enum audit_idx idx)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct key_find kf;
	json_t *rec = NULL;
	uint64_t seq;
	int rc;

	if (mdb_cursor_open(w->txn, w->e->idx[idx], &c) != 0) {
		bad(w, 0, "index %s: cannot be read", audit_index_name(idx));
		return;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !w->broken;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint8_t sk[8];
		MDB_val rk = { 8, sk }, rv;

		if (k.mv_size < 16) {
			bad(w, 0, "index %s holds a malformed key",
			    audit_index_name(idx));
			break;
		}
		seq =
		    audit_be64_get((const uint8_t *)k.mv_data + k.mv_size - 8);
		audit_be64_put(sk, seq);
		if (mdb_get(w->txn, w->e->records, &rk, &rv) != 0) {
			bad(w, seq,
			    "index %s has an entry for record %llu, which "
			    "is not in the chain",
			    audit_index_name(idx), (unsigned long long)seq);
			break;
		}
		if (audit_record_load(&rv, &rec) != TSI_OK)
			break; /* the chain walk names it */
		kf.idx = idx;
		kf.key = k.mv_data;
		kf.len = k.mv_size;
		kf.found = 0;
		audit_index_each(rec, seq,
		    json_integer_value(json_object_get(rec, "time_us")),
		    find_key, &kf);
		json_decref(rec);
		rec = NULL;
		if (!kf.found)
			bad(w, seq,
			    "index %s has an entry for record %llu that "
			    "the record does not carry (value \"%.*s\")",
			    audit_index_name(idx), (unsigned long long)seq,
			    k.mv_size > 16 ? (int)(k.mv_size - 17) : 0,
			    (const char *)k.mv_data);
	}
	if (!w->broken)
		bad(w, 0, "index %s holds more entries than its records need",
		    audit_index_name(idx));
	mdb_cursor_close(c);
}

/* After the walk: every index holds exactly the entries the records need
 * (each of which was found during the walk), and nothing else. */
static void
check_index_counts(struct walk *w)
{
	MDB_stat st;
	int i;

	for (i = 0; i < AUDIT_IDX_N && !w->broken; i++) {
		if (mdb_stat(w->txn, w->e->idx[i], &st) != 0) {
			bad(w, 0, "index %s cannot be read",
			    audit_index_name((enum audit_idx)i));
			return;
		}
		if (st.ms_entries != w->expected[i])
			find_stray(w, (enum audit_idx)i);
	}
}

/* The top-level "hash" member of a stored record, found by the strict
 * reader. */
struct hash_span {
	size_t off, end;
	int found;
};

static int
hash_member(void *arg, const char *key, size_t klen, size_t off, size_t end)
{
	struct hash_span *h = arg;

	if (klen == 4 && memcmp(key, "hash", 4) == 0) {
		h->off = off;
		h->end = end;
		h->found = 1;
	}
	return 0;
}

/*
 * The hash of a stored record chained on prev, from its bytes, and whether
 * they are its canonical form. Format 2: the strict reader accepts only
 * canonical bytes, and the hash covers them without the "hash" member.
 * Format 1 (no "format" field): the pinned jansson 2.14 form of the parsed
 * record must give the stored bytes back, and the hash covers that form
 * without "hash" (docs/audit-format.md "Format 1"). Returns 0, or -1 with
 * the chain marked broken.
 */
static int
record_hash(struct walk *w, const MDB_val *v, const json_t *rec, uint64_t seq,
    const uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN])
{
	struct hash_span hs = { 0, 0, 0 };
	char *body = NULL;
	size_t len = 0;
	int fmt, r, rc = -1;

	fmt = audit_record_format(rec);
	if (fmt == AUDIT_FORMAT_V2) {
		if (audit_canon_check(v->mv_data, v->mv_size, hash_member,
		        &hs) != TSI_OK ||
		    !hs.found) {
			bad(w, seq,
			    "record %llu is not in canonical form "
			    "(edited)",
			    (unsigned long long)seq);
			goto out;
		}
		if ((body = malloc(v->mv_size)) == NULL ||
		    audit_canon_strip_member(v->mv_data, v->mv_size, hs.off,
		        hs.end, body, &len) != TSI_OK ||
		    audit_chain_hash(prev, body, len, hash) != TSI_OK) {
			bad(w, seq,
			    "record %llu: its hash could not be computed",
			    (unsigned long long)seq);
			goto out;
		}
	} else if (fmt == AUDIT_FORMAT_V1) {
		body = audit_canon_dumps(rec, AUDIT_FORMAT_V1, AUDIT_RECORD_MAX,
		    &len, &r);
		if (body == NULL || len != v->mv_size ||
		    memcmp(body, v->mv_data, len) != 0) {
			bad(w, seq,
			    "record %llu is not in canonical form "
			    "(edited)",
			    (unsigned long long)seq);
			goto out;
		}
		if (audit_record_hash(rec, prev, hash) != TSI_OK) {
			bad(w, seq,
			    "record %llu: its hash could not be computed",
			    (unsigned long long)seq);
			goto out;
		}
	} else {
		bad(w, seq, "record %llu has an unknown format (edited)",
		    (unsigned long long)seq);
		goto out;
	}
	rc = 0;
out:
	free(body);
	return rc;
}

/* Checks one stored record against the expected seq and prev. */
static void
check_record(struct walk *w, const MDB_val *k, const MDB_val *v,
    uint64_t expect, const uint8_t prev[AUDIT_HASH_LEN],
    uint8_t hash[AUDIT_HASH_LEN])
{
	char prevhex[2 * AUDIT_HASH_LEN + 1];
	uint8_t stored[AUDIT_HASH_LEN];
	uint64_t seq = audit_be64_get(k->mv_data);
	json_t *rec = NULL;
	json_int_t own;
	const char *p;

	if (audit_record_load(v, &rec) != TSI_OK) {
		bad(w, seq, "record %llu is not a JSON object (edited)",
		    (unsigned long long)seq);
		goto out;
	}
	own = json_integer_value(json_object_get(rec, "seq"));
	if ((uint64_t)own != seq) {
		bad(w, seq,
		    "record stored as seq %llu says it is seq %llu "
		    "(reordered or moved)",
		    (unsigned long long)seq, (unsigned long long)own);
		goto out;
	}
	if (record_hash(w, v, rec, seq, prev, hash) != 0)
		goto out;
	p = json_string_value(json_object_get(rec, "prev"));
	audit_hex(prev, AUDIT_HASH_LEN, prevhex);
	if (p == NULL || strcmp(p, prevhex) != 0) {
		bad(w, seq,
		    "record %llu: prev does not match the hash of record "
		    "%llu (a record before it was changed, removed or "
		    "reordered)",
		    (unsigned long long)seq, (unsigned long long)(expect - 1));
		goto out;
	}
	if (audit_unhex(json_string_value(json_object_get(rec, "hash")), stored,
	        AUDIT_HASH_LEN) != TSI_OK ||
	    memcmp(stored, hash, AUDIT_HASH_LEN) != 0) {
		bad(w, seq,
		    "record %llu: hash does not match its content "
		    "(edited)",
		    (unsigned long long)seq);
		goto out;
	}
	check_indexes(w, rec, seq);
out:
	json_decref(rec);
}

int
audit_lmdb_verify(void *be, EVP_PKEY *trusted,
    struct tsi_audit_verify_result *res)
{
	struct audit_env *e = be;
	struct walk w;
	struct audit_point pp, head, sh;
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t expect;
	char why[160];
	int r, rc, have_sh = 0;

	if (res == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.res = res;
	w.e = e;
	if ((r = audit_env_read_begin(e, &txn)) != TSI_OK)
		return r;
	w.txn = txn;
	if ((r = audit_meta_get_point(e, txn, "prune", &pp)) != TSI_OK ||
	    (r = audit_meta_get_point(e, txn, "head", &head)) != TSI_OK)
		goto out;
	r = audit_meta_check_signed_head(e, txn, trusted, &sh, why,
	    sizeof(why));
	if (r == TSI_OK) {
		have_sh = 1;
	} else if (r == TSI_ERR_NOT_FOUND) {
		if (trusted != NULL) {
			bad(&w, head.seq,
			    "no signed head to check against the "
			    "trusted key (head seq %llu)",
			    (unsigned long long)head.seq);
		}
	} else if (r == TSI_ERR_DENIED || r == TSI_ERR_PARSE) {
		bad(&w, 0, "%s", why);
	} else {
		goto out;
	}
	if (have_sh && sh.seq > head.seq)
		bad(&w, head.seq + 1,
		    "signed head is at seq %llu but the chain "
		    "ends at %llu (records removed from the end)",
		    (unsigned long long)sh.seq, (unsigned long long)head.seq);

	expect = pp.seq;
	memcpy(prev, pp.hash, AUDIT_HASH_LEN);
	if ((rc = mdb_cursor_open(txn, e->records, &c)) != 0) {
		r = audit_mdb_err(rc);
		goto out;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !w.broken;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t seq;

		if (k.mv_size != 8) {
			bad(&w, expect,
			    "a key of %llu bytes in the records "
			    "database (expected 8)",
			    (unsigned long long)k.mv_size);
			break;
		}
		seq = audit_be64_get(k.mv_data);
		if (seq < expect) {
			bad(&w, seq,
			    "record %llu precedes the first retained "
			    "record %llu",
			    (unsigned long long)seq,
			    (unsigned long long)expect);
			break;
		}
		if (seq > expect) {
			bad(&w, expect,
			    "record %llu is missing (the next stored "
			    "record is %llu)",
			    (unsigned long long)expect,
			    (unsigned long long)seq);
			break;
		}
		check_record(&w, &k, &v, expect, prev, hash);
		if (w.broken)
			break;
		if (have_sh && seq == sh.seq &&
		    memcmp(hash, sh.hash, AUDIT_HASH_LEN) != 0)
			bad(&w, seq,
			    "record %llu does not match the signed "
			    "head",
			    (unsigned long long)seq);
		memcpy(prev, hash, AUDIT_HASH_LEN);
		res->records++;
		expect++;
	}
	if (rc != 0 && rc != MDB_NOTFOUND && !w.broken) {
		r = audit_mdb_err(rc);
		goto out;
	}
	if (!w.broken && expect - 1 < head.seq)
		bad(&w, expect, "record %llu is missing (the head is at %llu)",
		    (unsigned long long)expect, (unsigned long long)head.seq);
	if (!w.broken && expect - 1 > head.seq)
		bad(&w, head.seq + 1,
		    "records go past the head: stored up to "
		    "%llu, head at %llu",
		    (unsigned long long)(expect - 1),
		    (unsigned long long)head.seq);
	if (!w.broken && memcmp(prev, head.hash, AUDIT_HASH_LEN) != 0)
		bad(&w, head.seq, "the head hash does not match record %llu",
		    (unsigned long long)head.seq);
	if (!w.broken)
		check_index_counts(&w);
	r = w.broken ? TSI_ERR_DENIED : TSI_OK;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	audit_env_read_end(e, txn);
	return r;
}
