/*
 * audit_prep.c - a record serialised in the appender's thread.
 *
 * The committer is one thread for the whole server: everything it does per
 * record limits how many decisions per second can be made durable. So the
 * JSON work happens in the caller: audit_prep_make validates and strips the
 * record and writes each top-level "key":value once, in the canonical form
 * of docs/audit-format.md (audit_canon.c), grouped into the seven stretches
 * that lie before, between and after the writer's own keys ("format" <
 * "hash" < "prev" < "seq" < "time" < "time_us"). audit_prep_seal then only
 * splices the writer's fields in and hashes: the bytes are exactly the
 * canonical form of the stored record, which is what tsi_audit_verify
 * checks (tests/unit/audit/test_prep.c compares them with
 * audit_canon_dumps of the whole record over odd inputs).
 */
#include "audit_canon.h"
#include "audit_int.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The writer's keys in canonical order (ASCII: UTF-16 order is byte
 * order). */
static const char *const wkeys[AUDIT_PREP_SEGS - 1] = {
	"format",
	"hash",
	"prev",
	"seq",
	"time",
	"time_us",
};

struct kv {
	const char *k;
	size_t kl;
	json_t *v;
};

static int
key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	return audit_canon_key_cmp(AUDIT_FORMAT, a, al, b, bl);
}

static int
kv_cmp(const void *x, const void *y)
{
	const struct kv *a = x, *b = y;

	return key_cmp(a->k, a->kl, b->k, b->kl);
}

/* Sorts by key: insertion sort for the small objects records hold (no
 * callback per comparison), qsort beyond. Keys of one object are unique,
 * so any correct sort gives the same order. */
static void
sort_kvs(struct kv *kvs, size_t n)
{
	size_t i, j;
	struct kv t;

	if (n > 32) {
		qsort(kvs, n, sizeof(*kvs), kv_cmp);
		return;
	}
	for (i = 1; i < n; i++) {
		t = kvs[i];
		for (j = i; j > 0 &&
		     key_cmp(kvs[j - 1].k, kvs[j - 1].kl, t.k, t.kl) > 0;
		     j--)
			kvs[j] = kvs[j - 1];
		kvs[j] = t;
	}
}

static int
out_put(struct audit_canon_out *o, const void *s, size_t n)
{
	if (n > o->cap - o->n)
		return TSI_ERR_TOO_LARGE;
	memcpy(o->p + o->n, s, n);
	o->n += n;
	return TSI_OK;
}

static int
put_idx(struct tsi_buf *b, enum audit_idx idx, const char *s)
{
	uint8_t t = (uint8_t)idx;

	if (s == NULL || s[0] == '\0')
		return TSI_OK;
	if (tsi_buf_put(b, &t, 1) != TSI_OK ||
	    tsi_buf_put(b, s, strlen(s) + 1) != TSI_OK)
		return TSI_ERR_TOO_LARGE;
	return TSI_OK;
}

static int
put_idx_strings(struct tsi_buf *b, enum audit_idx idx, const json_t *v)
{
	size_t i;
	int r;

	if (json_is_string(v))
		return put_idx(b, idx, json_string_value(v));
	if (!json_is_array(v))
		return TSI_OK;
	for (i = 0; i < json_array_size(v); i++)
		if ((r = put_idx(b, idx,
		         json_string_value(json_array_get(v, i)))) != TSI_OK)
			return r;
	return TSI_OK;
}

/* The claims' part of index_values: what audit_index_update takes from
 * rec's claims object. */
static int
claims_index_values(const json_t *rec, struct tsi_buf *b)
{
	const json_t *claims = json_object_get(rec, "claims");
	int r;

	if (!json_is_object(claims))
		return TSI_OK;
	if ((r = put_idx(b, AUDIT_IDX_CLUSTER,
	         audit_claim_str(rec, "cluster-name"))) != TSI_OK ||
	    (r = put_idx(b, AUDIT_IDX_DC,
	         audit_claim_str(rec, "datacenter"))) != TSI_OK ||
	    (r = put_idx(b, AUDIT_IDX_NS, audit_claim_str(rec, "namespace"))) !=
	        TSI_OK ||
	    (r = put_idx_strings(b, AUDIT_IDX_IMAGE,
	         json_object_get(claims, "images"))) != TSI_OK)
		return r;
	return put_idx_strings(b, AUDIT_IDX_IMAGE,
	    json_object_get(claims, "images-names"));
}

/* What audit_index_update would take from rec, as (idx, string, NUL)*;
 * cl: the claims' values come from there instead of rec. */
static int
index_values(const json_t *rec, const struct tsi_audit_claims *cl,
    struct tsi_buf *b)
{
	int r;

	if ((r = put_idx(b, AUDIT_IDX_DECISION,
	         json_string_value(json_object_get(rec, "decision")))) !=
	        TSI_OK ||
	    (r = put_idx(b, AUDIT_IDX_PATH,
	         json_string_value(json_object_get(rec, "path")))) != TSI_OK)
		return r;
	if (cl != NULL)
		return cl->idx_len == 0 ? TSI_OK
		    : tsi_buf_put(b, cl->idx, cl->idx_len) == TSI_OK
		    ? TSI_OK
		    : TSI_ERR_TOO_LARGE;
	return claims_index_values(rec, b);
}

/*
 * Serialises the validated, stripped record c. cl: claims serialised
 * beforehand (c then has no "claims"): its text goes in at the key's
 * sorted place, its index values after the record's own.
 */
static int
prep_build(const json_t *c, const struct tsi_audit_claims *cl,
    struct audit_prep **out)
{
	struct audit_prep *p = NULL;
	struct audit_canon_out body = { NULL, 0,
		AUDIT_RECORD_MAX - AUDIT_PREP_WRITER_MAX };
	struct tsi_buf *idx = NULL;
	struct kv *kvs = NULL;
	void *it;
	size_t n = 0, i, seg = 0, w;
	int r = TSI_ERR_ALLOC;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (body.p = malloc(body.cap)) == NULL ||
	    (idx = tsi_buf_new(AUDIT_RECORD_MAX)) == NULL ||
	    (kvs = calloc(json_object_size(c) + 2, sizeof(*kvs))) == NULL)
		goto out;
	for (it = json_object_iter((json_t *)c); it != NULL;
	     it = json_object_iter_next((json_t *)c, it)) {
		kvs[n].k = json_object_iter_key(it);
		kvs[n].kl = json_object_iter_key_len(it);
		kvs[n].v = json_object_iter_value(it);
		n++;
	}
	if (cl != NULL) {
		kvs[n].k = "claims"; /* v NULL: cl's text */
		kvs[n].kl = 6;
		kvs[n].v = NULL;
		n++;
	}
	sort_kvs(kvs, n);
	for (i = 0; i < n; i++) {
		/* close the stretches of the writer's keys that sort first */
		while (seg < AUDIT_PREP_SEGS - 1 &&
		    key_cmp(wkeys[seg], strlen(wkeys[seg]), kvs[i].k,
		        kvs[i].kl) < 0)
			p->seg[++seg] = body.n;
		/* TSI_ERR_TOO_LARGE past the buffer's bound,
		 * TSI_ERR_INVALID_ARG for a value with no canonical form (a
		 * real, an integer beyond 2^53 - 1, nesting too deep) */
		if ((body.n > p->seg[seg] &&
		        (r = out_put(&body, ",", 1)) != TSI_OK) ||
		    (r = audit_canon_string(&body, AUDIT_FORMAT, kvs[i].k,
		         kvs[i].kl)) != TSI_OK ||
		    (r = out_put(&body, ":", 1)) != TSI_OK ||
		    (r = kvs[i].v != NULL
		            ? audit_canon_value(&body, AUDIT_FORMAT, kvs[i].v,
		                  1)
		            : out_put(&body, cl->text, cl->text_len)) != TSI_OK)
			goto out;
	}
	for (w = seg + 1; w <= AUDIT_PREP_SEGS; w++)
		p->seg[w] = body.n;
	if ((r = index_values(c, cl, idx)) != TSI_OK)
		goto out;
	p->idx_len = tsi_buf_len(idx);
	if ((p->idx = (uint8_t *)tsi_buf_take(idx, NULL)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	p->body = body.p;
	body.p = NULL;
	*out = p;
	p = NULL;
	r = TSI_OK;
out:
	free(kvs);
	free(body.p);
	tsi_buf_free(idx);
	audit_prep_free(p);
	return r;
}

int
audit_prep_make(const json_t *rec, struct audit_prep **out)
{
	const json_t *c;
	json_t *copy = NULL;
	int r;

	*out = NULL;
	if ((c = audit_record_view(rec, &copy, &r)) == NULL)
		return r;
	r = prep_build(c, NULL, out);
	json_decref(copy);
	return r;
}

int
tsi_audit_claims_new(const json_t *claims, struct tsi_audit_claims **out)
{
	struct tsi_audit_claims *cl = NULL;
	struct audit_canon_out text = { NULL, 0,
		AUDIT_RECORD_MAX - AUDIT_PREP_WRITER_MAX };
	struct tsi_buf *idx = NULL;
	const json_t *c;
	json_t *wrap = NULL, *copy = NULL;
	int r;

	*out = NULL;
	if (!json_is_object(claims))
		return TSI_ERR_INVALID_ARG;
	/* stripped exactly as inside a record: the record's own check and
	 * strip, on a minimal record around the claims */
	if ((wrap = json_pack("{sssssO}", "op", "claims", "decision", "allow",
	         "claims", (json_t *)claims)) == NULL)
		return TSI_ERR_ALLOC;
	if ((c = audit_record_view(wrap, &copy, &r)) == NULL)
		goto out;
	r = TSI_ERR_ALLOC;
	if ((cl = calloc(1, sizeof(*cl))) == NULL ||
	    (text.p = malloc(text.cap)) == NULL ||
	    (idx = tsi_buf_new(AUDIT_RECORD_MAX)) == NULL)
		goto out;
	/* depth 1: the claims sit inside the record object */
	if ((r = audit_canon_value(&text, AUDIT_FORMAT,
	         json_object_get(c, "claims"), 1)) != TSI_OK)
		goto out;
	if ((r = claims_index_values(c, idx)) != TSI_OK)
		goto out;
	r = TSI_ERR_ALLOC;
	if ((cl->text = malloc(text.n ? text.n : 1)) == NULL)
		goto out;
	memcpy(cl->text, text.p, text.n);
	cl->text_len = text.n;
	cl->idx_len = tsi_buf_len(idx);
	if ((cl->idx = (uint8_t *)tsi_buf_take(idx, NULL)) == NULL)
		goto out;
	cl->refs = 1;
	*out = cl;
	cl = NULL;
	r = TSI_OK;
out:
	tsi_audit_claims_unref(cl);
	free(text.p);
	tsi_buf_free(idx);
	json_decref(copy);
	json_decref(wrap);
	return r;
}

struct tsi_audit_claims *
tsi_audit_claims_ref(struct tsi_audit_claims *cl)
{
	if (cl != NULL)
		__atomic_add_fetch(&cl->refs, 1, __ATOMIC_RELAXED);
	return cl;
}

void
tsi_audit_claims_unref(struct tsi_audit_claims *cl)
{
	if (cl == NULL)
		return;
	if (cl->refs > 0 &&
	    __atomic_sub_fetch(&cl->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(cl->text);
	free(cl->idx);
	free(cl);
}

int
audit_prep_make_claims(const json_t *rec, const struct tsi_audit_claims *cl,
    struct audit_prep **out)
{
	const json_t *c;
	json_t *copy = NULL;
	int r;

	*out = NULL;
	if (cl == NULL || !json_is_object(rec) ||
	    json_object_get(rec, "claims") != NULL)
		return TSI_ERR_INVALID_ARG;
	if ((c = audit_record_view(rec, &copy, &r)) == NULL)
		return r;
	r = prep_build(c, cl, out);
	json_decref(copy);
	return r;
}

void
audit_prep_free(struct audit_prep *p)
{
	if (p == NULL)
		return;
	free(p->body);
	free(p->idx);
	free(p);
}

size_t
audit_prep_size(const struct audit_prep *p)
{
	return p->seg[AUDIT_PREP_SEGS];
}

/* Appends a piece to out (room checked by the caller), with a comma when
 * something came before it. */
static void
splice(char *out, size_t *n, const char *s, size_t len)
{
	if (len == 0)
		return;
	if (*n > 1)
		out[(*n)++] = ',';
	memcpy(out + *n, s, len);
	*n += len;
}

/* Where "hash" sits among the writer's keys. */
#define WKEY_HASH 1

/* "{...}" with or without the "hash" field, into out. */
static size_t
emit(const struct audit_prep *p, char *const wf[AUDIT_PREP_SEGS - 1],
    const size_t wl[AUDIT_PREP_SEGS - 1], int with_hash, char *out)
{
	size_t n = 0, i;

	out[n++] = '{';
	for (i = 0; i < AUDIT_PREP_SEGS; i++) {
		splice(out, &n, p->body + p->seg[i], p->seg[i + 1] - p->seg[i]);
		if (i < AUDIT_PREP_SEGS - 1 && (i != WKEY_HASH || with_hash))
			splice(out, &n, wf[i], wl[i]);
	}
	out[n++] = '}';
	return n;
}

/* "key":integer into f (room for 48 bytes). Returns its length, or -1. */
static int
int_field(char *f, const char *key, long long v)
{
	struct audit_canon_out o = { f, 0, 48 };
	int n = snprintf(f, 48, "\"%s\":", key);

	if (n < 0 || n >= 48 || v > AUDIT_CANON_INT_MAX ||
	    v < -AUDIT_CANON_INT_MAX)
		return -1;
	o.n = (size_t)n;
	if (audit_canon_int(&o, v) != TSI_OK)
		return -1;
	return (int)o.n;
}

int
audit_prep_seal(const struct audit_prep *p, uint64_t seq, long long time_us,
    const uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN],
    char **out, size_t *out_len)
{
	char ts[40], hx[2 * AUDIT_HASH_LEN + 1];
	char f_fmt[48], f_hash[80], f_prev[80], f_seq[48], f_time[56],
	    f_tus[48];
	char *wf[AUDIT_PREP_SEGS - 1] = { f_fmt, f_hash, f_prev, f_seq, f_time,
		f_tus };
	size_t wl[AUDIT_PREP_SEGS - 1], i, cap, n;
	char *buf = NULL;
	int r, len[AUDIT_PREP_SEGS - 1];

	*out = NULL;
	*out_len = 0;
	if (seq > (uint64_t)AUDIT_CANON_INT_MAX)
		return TSI_ERR_INTERNAL;
	audit_format_time(time_us, ts, sizeof(ts));
	audit_hex(prev, AUDIT_HASH_LEN, hx);
	len[0] = int_field(f_fmt, "format", AUDIT_FORMAT);
	len[1] = 0;
	len[2] = snprintf(f_prev, sizeof(f_prev), "\"prev\":\"%s\"", hx);
	len[3] = int_field(f_seq, "seq", (long long)seq);
	len[4] = snprintf(f_time, sizeof(f_time), "\"time\":\"%s\"", ts);
	len[5] = int_field(f_tus, "time_us", time_us);
	for (i = 0; i < AUDIT_PREP_SEGS - 1; i++) {
		if (len[i] < 0 || (size_t)len[i] >= 80)
			return TSI_ERR_INTERNAL;
		wl[i] = (size_t)len[i];
	}
	/* body, six fields, six commas, braces */
	cap = audit_prep_size(p) + sizeof(f_fmt) + sizeof(f_hash) +
	    sizeof(f_prev) + sizeof(f_seq) + sizeof(f_time) + sizeof(f_tus) +
	    16;
	if ((buf = malloc(cap)) == NULL)
		return TSI_ERR_ALLOC;
	n = emit(p, wf, wl, 0, buf);
	if ((r = audit_chain_hash(prev, buf, n, hash)) != TSI_OK)
		goto out;
	audit_hex(hash, AUDIT_HASH_LEN, hx);
	len[1] = snprintf(f_hash, sizeof(f_hash), "\"hash\":\"%s\"", hx);
	if (len[1] < 0 || (size_t)len[1] >= sizeof(f_hash)) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	wl[1] = (size_t)len[1];
	n = emit(p, wf, wl, 1, buf);
	if (n > AUDIT_RECORD_MAX) {
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	*out = buf;
	*out_len = n;
	buf = NULL;
	r = TSI_OK;
out:
	free(buf);
	return r;
}
