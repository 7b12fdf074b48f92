/*
 * audit_prep.c - a record serialised in the appender's thread.
 *
 * The committer is one thread for the whole server: everything it does per
 * record limits how many decisions per second can be made durable. So the
 * JSON work happens in the caller: audit_prep_make validates and strips the
 * record and dumps each top-level "key":value once, in canonical form (keys
 * sorted as jansson's JSON_SORT_KEYS sorts them, compact), grouped into the
 * six stretches that lie before, between and after the writer's own keys
 * ("hash" < "prev" < "seq" < "time" < "time_us"). audit_prep_seal then only
 * splices the writer's fields in and hashes: the bytes are exactly what
 * json_dumps(record, JSON_SORT_KEYS | JSON_COMPACT) gives for the stored
 * record, which is what tsi_audit_verify recomputes (tests/unit/audit
 * test_prep.c checks this over odd inputs).
 */
#include "audit_int.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The writer's keys in canonical (byte-wise) order. */
static const char *const wkeys[AUDIT_PREP_SEGS - 1] = {
	"hash", "prev", "seq", "time", "time_us",
};

struct kv {
	const char *k;
	size_t kl;
	json_t *v;
};

/* jansson 2.14 JSON_SORT_KEYS: bytes compared as unsigned, then the shorter
 * key first. */
static int
key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl ? 1 : 0;
}

static int
kv_cmp(const void *x, const void *y)
{
	const struct kv *a = x, *b = y;

	return key_cmp(a->k, a->kl, b->k, b->kl);
}

static int
put_cb(const char *buffer, size_t size, void *data)
{
	return tsi_buf_put(data, buffer, size) == TSI_OK ? 0 : -1;
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

/* What audit_index_update would take from rec, as (idx, string, NUL)*. */
static int
index_values(const json_t *rec, struct tsi_buf *b)
{
	const json_t *claims = json_object_get(rec, "claims");
	int r;

	if ((r = put_idx(b, AUDIT_IDX_DECISION,
	    json_string_value(json_object_get(rec, "decision")))) != TSI_OK ||
	    (r = put_idx(b, AUDIT_IDX_PATH,
	    json_string_value(json_object_get(rec, "path")))) != TSI_OK)
		return r;
	if (!json_is_object(claims))
		return TSI_OK;
	if ((r = put_idx(b, AUDIT_IDX_CLUSTER,
	    audit_claim_str(rec, "cluster-name"))) != TSI_OK ||
	    (r = put_idx(b, AUDIT_IDX_DC,
	    audit_claim_str(rec, "datacenter"))) != TSI_OK ||
	    (r = put_idx(b, AUDIT_IDX_NS,
	    audit_claim_str(rec, "namespace"))) != TSI_OK ||
	    (r = put_idx_strings(b, AUDIT_IDX_IMAGE,
	    json_object_get(claims, "images"))) != TSI_OK)
		return r;
	return put_idx_strings(b, AUDIT_IDX_IMAGE,
	    json_object_get(claims, "images-names"));
}

int
audit_prep_make(const json_t *rec, struct audit_prep **out)
{
	struct audit_prep *p = NULL;
	struct tsi_buf *body = NULL, *idx = NULL;
	struct kv *kvs = NULL;
	const json_t *c;
	json_t *copy = NULL, *ks = NULL;
	void *it;
	size_t n = 0, i, seg = 0, w;
	int r;

	*out = NULL;
	if ((c = audit_record_view(rec, &copy, &r)) == NULL)
		return r;
	r = TSI_ERR_ALLOC;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (body = tsi_buf_new(AUDIT_RECORD_MAX - AUDIT_PREP_WRITER_MAX)) == NULL ||
	    (idx = tsi_buf_new(AUDIT_RECORD_MAX)) == NULL ||
	    (kvs = calloc(json_object_size(c) + 1, sizeof(*kvs))) == NULL)
		goto out;
	for (it = json_object_iter((json_t *)c); it != NULL;
	    it = json_object_iter_next((json_t *)c, it)) {
		kvs[n].k = json_object_iter_key(it);
		kvs[n].kl = json_object_iter_key_len(it);
		kvs[n].v = json_object_iter_value(it);
		n++;
	}
	qsort(kvs, n, sizeof(*kvs), kv_cmp);
	for (i = 0; i < n; i++) {
		/* close the stretches of the writer's keys that sort first */
		while (seg < AUDIT_PREP_SEGS - 1 && key_cmp(wkeys[seg],
		    strlen(wkeys[seg]), kvs[i].k, kvs[i].kl) < 0)
			p->seg[++seg] = tsi_buf_len(body);
		if (tsi_buf_len(body) > p->seg[seg] &&
		    (r = tsi_buf_put(body, ",", 1)) != TSI_OK)
			goto out;
		if ((ks = json_stringn_nocheck(kvs[i].k, kvs[i].kl)) == NULL) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		if (json_dump_callback(ks, put_cb, body, JSON_ENCODE_ANY) != 0 ||
		    tsi_buf_put(body, ":", 1) != TSI_OK ||
		    json_dump_callback(kvs[i].v, put_cb, body,
		    AUDIT_CANON_FLAGS | JSON_ENCODE_ANY) != 0) {
			/* the buffer's bound is the only way these fail here
			 * short of memory */
			r = TSI_ERR_TOO_LARGE;
			goto out;
		}
		json_decref(ks);
		ks = NULL;
	}
	for (w = seg + 1; w <= AUDIT_PREP_SEGS; w++)
		p->seg[w] = tsi_buf_len(body);
	if ((r = index_values(c, idx)) != TSI_OK)
		goto out;
	p->idx_len = tsi_buf_len(idx);
	if ((p->idx = (uint8_t *)tsi_buf_take(idx, NULL)) == NULL ||
	    (p->body = tsi_buf_take(body, NULL)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	*out = p;
	p = NULL;
	r = TSI_OK;
out:
	json_decref(ks);
	json_decref(copy);
	free(kvs);
	tsi_buf_free(body);
	tsi_buf_free(idx);
	audit_prep_free(p);
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

/* "{...}" with or without the "hash" field, into out. */
static size_t
emit(const struct audit_prep *p, char *const wf[AUDIT_PREP_SEGS - 1],
    const size_t wl[AUDIT_PREP_SEGS - 1], int with_hash, char *out)
{
	size_t n = 0, i;

	out[n++] = '{';
	for (i = 0; i < AUDIT_PREP_SEGS; i++) {
		splice(out, &n, p->body + p->seg[i], p->seg[i + 1] - p->seg[i]);
		if (i < AUDIT_PREP_SEGS - 1 && (i > 0 || with_hash))
			splice(out, &n, wf[i], wl[i]);
	}
	out[n++] = '}';
	return n;
}

int
audit_prep_seal(const struct audit_prep *p, uint64_t seq, long long time_us,
    const uint8_t prev[AUDIT_HASH_LEN], uint8_t hash[AUDIT_HASH_LEN],
    char **out, size_t *out_len)
{
	char ts[40], hx[2 * AUDIT_HASH_LEN + 1];
	char f_hash[80], f_prev[80], f_seq[48], f_time[56], f_tus[48];
	char *wf[AUDIT_PREP_SEGS - 1] = { f_hash, f_prev, f_seq, f_time, f_tus };
	size_t wl[AUDIT_PREP_SEGS - 1], i, cap, n;
	char *buf = NULL;
	int r, len[AUDIT_PREP_SEGS - 1];

	*out = NULL;
	*out_len = 0;
	audit_format_time(time_us, ts, sizeof(ts));
	audit_hex(prev, AUDIT_HASH_LEN, hx);
	len[0] = 0;
	len[1] = snprintf(f_prev, sizeof(f_prev), "\"prev\":\"%s\"", hx);
	len[2] = snprintf(f_seq, sizeof(f_seq), "\"seq\":%lld", (long long)seq);
	len[3] = snprintf(f_time, sizeof(f_time), "\"time\":\"%s\"", ts);
	len[4] = snprintf(f_tus, sizeof(f_tus), "\"time_us\":%lld", time_us);
	for (i = 1; i < AUDIT_PREP_SEGS - 1; i++) {
		if (len[i] < 0 || (size_t)len[i] >= 80)
			return TSI_ERR_INTERNAL;
		wl[i] = (size_t)len[i];
	}
	wl[0] = 0;
	/* body, five fields, five commas, braces */
	cap = audit_prep_size(p) + sizeof(f_hash) + sizeof(f_prev) +
	    sizeof(f_seq) + sizeof(f_time) + sizeof(f_tus) + 16;
	if ((buf = malloc(cap)) == NULL)
		return TSI_ERR_ALLOC;
	n = emit(p, wf, wl, 0, buf);
	if ((r = audit_chain_hash(prev, buf, n, hash)) != TSI_OK)
		goto out;
	audit_hex(hash, AUDIT_HASH_LEN, hx);
	len[0] = snprintf(f_hash, sizeof(f_hash), "\"hash\":\"%s\"", hx);
	if (len[0] < 0 || (size_t)len[0] >= sizeof(f_hash)) {
		r = TSI_ERR_INTERNAL;
		goto out;
	}
	wl[0] = (size_t)len[0];
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
