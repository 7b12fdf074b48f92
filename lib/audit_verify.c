/*
 * audit_verify.c - walks the chain from the prune point to the head.
 *
 * Names the first record that was edited (hash or canonical form differs),
 * is missing (a gap in seq, or the tail is shorter than the head says) or is
 * out of order (a record stored under another seq than its own), and checks
 * the signed head when there is one.
 */
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
	char *canon = NULL;
	json_int_t own;
	const char *p;

	if (audit_record_load(v, &rec) != TSI_OK) {
		bad(w, seq, "record %llu is not a JSON object (edited)",
		    (unsigned long long)seq);
		goto out;
	}
	own = json_integer_value(json_object_get(rec, "seq"));
	if ((uint64_t)own != seq) {
		bad(w, seq, "record stored as seq %llu says it is seq %llu "
		    "(reordered or moved)", (unsigned long long)seq,
		    (unsigned long long)own);
		goto out;
	}
	canon = json_dumps(rec, JSON_SORT_KEYS | JSON_COMPACT);
	if (canon == NULL || strlen(canon) != v->mv_size ||
	    memcmp(canon, v->mv_data, v->mv_size) != 0) {
		bad(w, seq, "record %llu is not in canonical form (edited)",
		    (unsigned long long)seq);
		goto out;
	}
	p = json_string_value(json_object_get(rec, "prev"));
	audit_hex(prev, AUDIT_HASH_LEN, prevhex);
	if (p == NULL || strcmp(p, prevhex) != 0) {
		bad(w, seq, "record %llu: prev does not match the hash of record "
		    "%llu (a record before it was changed, removed or reordered)",
		    (unsigned long long)seq, (unsigned long long)(expect - 1));
		goto out;
	}
	if (audit_unhex(json_string_value(json_object_get(rec, "hash")), stored,
	    AUDIT_HASH_LEN) != TSI_OK ||
	    audit_record_hash(rec, prev, hash) != TSI_OK ||
	    memcmp(stored, hash, AUDIT_HASH_LEN) != 0) {
		bad(w, seq, "record %llu: hash does not match its content "
		    "(edited)", (unsigned long long)seq);
		goto out;
	}
out:
	free(canon);
	json_decref(rec);
}

int
tsi_audit_verify_key(struct tsi_audit_reader *rd, EVP_PKEY *trusted,
    struct tsi_audit_verify_result *res)
{
	struct walk w = { res, 0 };
	struct audit_point pp, head, sh;
	uint8_t prev[AUDIT_HASH_LEN], hash[AUDIT_HASH_LEN];
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint64_t expect;
	char why[160];
	int r, rc, have_sh = 0;

	if (rd == NULL || res == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(res, 0, sizeof(*res));
	if ((r = audit_env_read_begin(rd->e, &txn)) != TSI_OK)
		return r;
	if ((r = audit_meta_get_point(rd->e, txn, "prune", &pp)) != TSI_OK ||
	    (r = audit_meta_get_point(rd->e, txn, "head", &head)) != TSI_OK)
		goto out;
	r = audit_meta_check_signed_head(rd->e, txn, trusted, &sh, why, sizeof(why));
	if (r == TSI_OK) {
		have_sh = 1;
	} else if (r == TSI_ERR_NOT_FOUND) {
		if (trusted != NULL) {
			bad(&w, head.seq, "no signed head to check against the "
			    "trusted key (head seq %llu)",
			    (unsigned long long)head.seq);
		}
	} else if (r == TSI_ERR_DENIED || r == TSI_ERR_PARSE) {
		bad(&w, 0, "%s", why);
	} else {
		goto out;
	}
	if (have_sh && sh.seq > head.seq)
		bad(&w, head.seq + 1, "signed head is at seq %llu but the chain "
		    "ends at %llu (records removed from the end)",
		    (unsigned long long)sh.seq, (unsigned long long)head.seq);

	expect = pp.seq;
	memcpy(prev, pp.hash, AUDIT_HASH_LEN);
	if ((rc = mdb_cursor_open(txn, rd->e->records, &c)) != 0) {
		r = audit_mdb_err(rc);
		goto out;
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !w.broken;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t seq;

		if (k.mv_size != 8) {
			bad(&w, expect, "a key of %llu bytes in the records "
			    "database (expected 8)",
			    (unsigned long long)k.mv_size);
			break;
		}
		seq = audit_be64_get(k.mv_data);
		if (seq < expect) {
			bad(&w, seq, "record %llu precedes the first retained "
			    "record %llu", (unsigned long long)seq,
			    (unsigned long long)expect);
			break;
		}
		if (seq > expect) {
			bad(&w, expect, "record %llu is missing (the next stored "
			    "record is %llu)", (unsigned long long)expect,
			    (unsigned long long)seq);
			break;
		}
		check_record(&w, &k, &v, expect, prev, hash);
		if (w.broken)
			break;
		if (have_sh && seq == sh.seq &&
		    memcmp(hash, sh.hash, AUDIT_HASH_LEN) != 0)
			bad(&w, seq, "record %llu does not match the signed "
			    "head", (unsigned long long)seq);
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
		bad(&w, head.seq + 1, "records go past the head: stored up to "
		    "%llu, head at %llu", (unsigned long long)(expect - 1),
		    (unsigned long long)head.seq);
	if (!w.broken && memcmp(prev, head.hash, AUDIT_HASH_LEN) != 0)
		bad(&w, head.seq, "the head hash does not match record %llu",
		    (unsigned long long)head.seq);
	r = w.broken ? TSI_ERR_DENIED : TSI_OK;
out:
	if (c != NULL)
		mdb_cursor_close(c);
	audit_env_read_end(rd->e, txn);
	return r;
}

int
tsi_audit_verify(struct tsi_audit_reader *r, struct tsi_audit_verify_result *res)
{
	return tsi_audit_verify_key(r, NULL, res);
}
