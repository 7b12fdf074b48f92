/*
 * audit_canon.c - canonical JSON of audit records (docs/audit-format.md):
 * the writer of both record formats and the strict reader of format 2.
 *
 * The writer runs in every appender's thread for every record, so the
 * common case (short printable ASCII strings, small objects) is a scan and
 * a memcpy; everything else is still written here, byte by byte, from the
 * rules of the spec, never by asking jansson to dump.
 */
#include "audit_canon.h"
#include "tsi/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
put(struct audit_canon_out *o, const void *s, size_t n)
{
	if (n > o->cap - o->n)
		return TSI_ERR_TOO_LARGE;
	memcpy(o->p + o->n, s, n);
	o->n += n;
	return TSI_OK;
}

/*
 * Decodes one UTF-8 sequence at s[*i..n) as RFC 3629 allows (no overlong
 * forms, no surrogates, nothing past U+10FFFF). Returns the code point and
 * advances *i, or -1.
 */
static long
utf8_next(const unsigned char *s, size_t n, size_t *i)
{
	unsigned char c = s[*i];
	size_t len, k;
	long cp, min;

	if (c < 0x80) {
		(*i)++;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n - *i < len)
		return -1;
	for (k = 1; k < len; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[*i + k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += len;
	return cp;
}

/* The escape of a byte below 0x20 or of '"' / '\\': the short forms both
 * formats share, else \u00xx (format 2: lower-case hex, RFC 8785; format
 * 1: upper case, as jansson wrote it). */
static int
put_escape(struct audit_canon_out *o, int fmt, unsigned char c)
{
	char e[8];

	switch (c) {
	case '"': return put(o, "\\\"", 2);
	case '\\': return put(o, "\\\\", 2);
	case '\b': return put(o, "\\b", 2);
	case '\f': return put(o, "\\f", 2);
	case '\n': return put(o, "\\n", 2);
	case '\r': return put(o, "\\r", 2);
	case '\t': return put(o, "\\t", 2);
	default: break;
	}
	if (snprintf(e, sizeof(e),
	        fmt == AUDIT_FORMAT_V1 ? "\\u%04X" : "\\u%04x", c) != 6)
		return TSI_ERR_INTERNAL;
	return put(o, e, 6);
}

int
audit_canon_string(struct audit_canon_out *o, int fmt, const char *str,
    size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run;
	int r;

	if ((r = put(o, "\"", 1)) != TSI_OK)
		return r;
	while (i < n) {
		/* a run of bytes written as they are */
		for (run = i; run < n && s[run] >= 0x20 && s[run] < 0x80 &&
		     s[run] != '"' && s[run] != '\\';
		     run++)
			;
		if (run > i && (r = put(o, s + i, run - i)) != TSI_OK)
			return r;
		i = run;
		if (i == n)
			break;
		if (s[i] >= 0x80) {
			run = i;
			if (utf8_next(s, n, &i) < 0)
				return TSI_ERR_INVALID_ARG;
			if ((r = put(o, s + run, i - run)) != TSI_OK)
				return r;
			continue;
		}
		if ((r = put_escape(o, fmt, s[i])) != TSI_OK)
			return r;
		i++;
	}
	return put(o, "\"", 1);
}

int
audit_canon_int(struct audit_canon_out *o, long long v)
{
	char tmp[24], out[24];
	unsigned long long u =
	    v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
	size_t n = 0, i = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		out[i++] = '-';
	while (n > 0)
		out[i++] = tmp[--n];
	return put(o, out, i);
}

/* Format 1's reals: jansson 2.14's jsonp_dtostr at its default precision
 * (%.17g, ".0" added to a whole number, the exponent without '+' or
 * leading zeros). */
static int
put_real_v1(struct audit_canon_out *o, double d)
{
	char b[64], *e, *start, *end;
	int len;

	if (d != d || d - d != 0)
		return TSI_ERR_INVALID_ARG; /* NaN, infinities: no JSON */
	len = snprintf(b, sizeof(b), "%.17g", d);
	if (len < 0 || (size_t)len >= sizeof(b) - 3)
		return TSI_ERR_INTERNAL;
	if (strspn(b, "0123456789-") == (size_t)len) {
		b[len++] = '.';
		b[len++] = '0';
		b[len] = '\0';
	}
	if ((e = strchr(b, 'e')) != NULL) {
		start = e + 1;
		end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end,
			    (size_t)len - (size_t)(end - b) + 1);
			len -= (int)(end - start);
		}
	}
	return put(o, b, (size_t)len);
}

/* The UTF-16 code unit a code point starts with (its high surrogate when
 * it lies beyond the BMP). */
static long
utf16_first(long cp)
{
	return cp < 0x10000 ? cp : 0xd800 + ((cp - 0x10000) >> 10);
}

static int
cp_cmp16(long a, long b)
{
	long ua = utf16_first(a), ub = utf16_first(b);

	if (ua != ub)
		return ua < ub ? -1 : 1;
	/* the same first unit: both BMP and equal, or both beyond it with
	 * the same high surrogate, where the low ones order as the code
	 * points do */
	return a < b ? -1 : a > b ? 1 : 0;
}

int
audit_canon_key_cmp(int fmt, const char *a, size_t al, const char *b, size_t bl)
{
	const unsigned char *x = (const unsigned char *)a,
	                    *y = (const unsigned char *)b;
	size_t m = al < bl ? al : bl, i, ia, ib;
	long ca, cb;

	for (i = 0; i < m && x[i] == y[i]; i++)
		;
	if (i == m)
		return al < bl ? -1 : al > bl ? 1 : 0;
	if (fmt == AUDIT_FORMAT_V1 || (x[i] < 0x80 && y[i] < 0x80))
		return x[i] < y[i] ? -1 : 1;
	/* the code points that differ start where the common prefix's last
	 * complete sequence ends: UTF-8 resynchronises on lead bytes */
	while (i > 0 && (x[i] & 0xc0) == 0x80)
		i--;
	ia = ib = i;
	ca = utf8_next(x, al, &ia);
	cb = utf8_next(y, bl, &ib);
	if (ca < 0 || cb < 0) /* not UTF-8: the writer refuses it anyway */
		return x[i] < y[i] ? -1 : x[i] > y[i] ? 1 : 0;
	return cp_cmp16(ca, cb);
}

struct member {
	const char *k;
	size_t kl;
	const json_t *v;
};

static int
member_cmp_v1(const void *p, const void *q)
{
	const struct member *a = p, *b = q;

	return audit_canon_key_cmp(AUDIT_FORMAT_V1, a->k, a->kl, b->k, b->kl);
}

static int
member_cmp_v2(const void *p, const void *q)
{
	const struct member *a = p, *b = q;

	return audit_canon_key_cmp(AUDIT_FORMAT_V2, a->k, a->kl, b->k, b->kl);
}

/* Keys of one object are distinct, so any correct sort gives one order:
 * insertion sort for the small objects records hold, qsort beyond. */
static void
sort_members(struct member *m, size_t n, int fmt)
{
	size_t i, j;
	struct member t;

	if (n > 16) {
		qsort(m, n, sizeof(*m),
		    fmt == AUDIT_FORMAT_V1 ? member_cmp_v1 : member_cmp_v2);
		return;
	}
	for (i = 1; i < n; i++) {
		t = m[i];
		for (j = i; j > 0 &&
		     audit_canon_key_cmp(fmt, m[j - 1].k, m[j - 1].kl, t.k,
		         t.kl) > 0;
		     j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
}

#define STACK_MEMBERS 32

static int
put_object(struct audit_canon_out *o, int fmt, const json_t *v, int depth)
{
	struct member stack[STACK_MEMBERS], *m = stack;
	size_t n = json_object_size(v), i = 0;
	void *it;
	int r = TSI_ERR_ALLOC;

	if (n > STACK_MEMBERS && (m = malloc(n * sizeof(*m))) == NULL)
		return TSI_ERR_ALLOC;
	for (it = json_object_iter((json_t *)v); it != NULL && i < n;
	     it = json_object_iter_next((json_t *)v, it)) {
		m[i].k = json_object_iter_key(it);
		m[i].kl = json_object_iter_key_len(it);
		m[i].v = json_object_iter_value(it);
		i++;
	}
	n = i;
	sort_members(m, n, fmt);
	if ((r = put(o, "{", 1)) != TSI_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if ((i > 0 && (r = put(o, ",", 1)) != TSI_OK) ||
		    (r = audit_canon_string(o, fmt, m[i].k, m[i].kl)) !=
		        TSI_OK ||
		    (r = put(o, ":", 1)) != TSI_OK ||
		    (r = audit_canon_value(o, fmt, m[i].v, depth + 1)) !=
		        TSI_OK)
			goto out;
	}
	r = put(o, "}", 1);
out:
	if (m != stack)
		free(m);
	return r;
}

static int
put_array(struct audit_canon_out *o, int fmt, const json_t *v, int depth)
{
	size_t i;
	int r;

	if ((r = put(o, "[", 1)) != TSI_OK)
		return r;
	for (i = 0; i < json_array_size(v); i++)
		if ((i > 0 && (r = put(o, ",", 1)) != TSI_OK) ||
		    (r = audit_canon_value(o, fmt, json_array_get(v, i),
		         depth + 1)) != TSI_OK)
			return r;
	return put(o, "]", 1);
}

int
audit_canon_value(struct audit_canon_out *o, int fmt, const json_t *v,
    int depth)
{
	json_int_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return audit_canon_string(o, fmt, json_string_value(v),
		    json_string_length(v));
	case JSON_INTEGER:
		i = json_integer_value(v);
		if (fmt != AUDIT_FORMAT_V1 &&
		    (i > AUDIT_CANON_INT_MAX || i < -AUDIT_CANON_INT_MAX))
			return TSI_ERR_INVALID_ARG;
		return audit_canon_int(o, (long long)i);
	case JSON_REAL:
		if (fmt != AUDIT_FORMAT_V1)
			return TSI_ERR_INVALID_ARG;
		return put_real_v1(o, json_real_value(v));
	case JSON_TRUE: return put(o, "true", 4);
	case JSON_FALSE: return put(o, "false", 5);
	case JSON_NULL: return put(o, "null", 4);
	case JSON_ARRAY:
	case JSON_OBJECT:
		if (depth >= AUDIT_CANON_DEPTH_MAX)
			return TSI_ERR_INVALID_ARG;
		return json_is_array(v) ? put_array(o, fmt, v, depth)
		                        : put_object(o, fmt, v, depth);
	default: break;
	}
	return TSI_ERR_INVALID_ARG;
}

char *
audit_canon_dumps(const json_t *v, int fmt, size_t max, size_t *len, int *err)
{
	struct audit_canon_out o = { NULL, 0, max };
	int r;

	if ((o.p = malloc(max + 1)) == NULL) {
		*err = TSI_ERR_ALLOC;
		return NULL;
	}
	if ((r = audit_canon_value(&o, fmt, v, 0)) != TSI_OK) {
		free(o.p);
		*err = r;
		return NULL;
	}
	o.p[o.n] = '\0';
	if (len != NULL)
		*len = o.n;
	*err = TSI_OK;
	return o.p;
}

/*
 * The strict reader. Every rule of the writer is checked in the order the
 * bytes come; the position only moves forward past bytes already checked.
 */
struct rd {
	const unsigned char *s;
	size_t n, i;
};

static int
hexdig(unsigned char c)
{
	/* lower case only: the writer never writes upper-case hex */
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One escape after its backslash: the only ones the writer makes. Returns
 * the byte it stands for, or -1. */
static int
read_escape(struct rd *d)
{
	int h0, h1, c;

	if (d->i == d->n)
		return -1;
	switch (d->s[d->i++]) {
	case '"': return '"';
	case '\\': return '\\';
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'u': break;
	default: return -1;
	}
	if (d->n - d->i < 4 || d->s[d->i] != '0' || d->s[d->i + 1] != '0' ||
	    (h0 = hexdig(d->s[d->i + 2])) < 0 ||
	    (h1 = hexdig(d->s[d->i + 3])) < 0)
		return -1;
	c = h0 << 4 | h1;
	/* \u00xx only for the controls without a short form */
	if (c >= 0x20 || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
	    c == '\t')
		return -1;
	d->i += 4;
	return c;
}

/* A string from its opening quote; *cs..*ce: its contents as written. */
static int
read_string(struct rd *d, size_t *cs, size_t *ce)
{
	unsigned char c;

	if (d->i == d->n || d->s[d->i] != '"')
		return -1;
	*cs = ++d->i;
	while (d->i < d->n) {
		c = d->s[d->i];
		if (c == '"') {
			*ce = d->i++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			d->i++;
			if (read_escape(d) < 0)
				return -1;
		} else if (c >= 0x80) {
			if (utf8_next(d->s, d->n, &d->i) < 0)
				return -1;
		} else {
			d->i++;
		}
	}
	return -1;
}

/* The next code point of a checked string's contents (escapes decoded). */
static long
content_next(const unsigned char *s, size_t n, size_t *i)
{
	struct rd d;
	int c;

	if (s[*i] != '\\')
		return utf8_next(s, n, i);
	d.s = s;
	d.n = n;
	d.i = *i + 1;
	c = read_escape(&d);
	*i = d.i;
	return c;
}

/* Orders two checked keys (contents as written) by UTF-16 code units. */
static int
key_cmp_written(const unsigned char *a, size_t al, const unsigned char *b,
    size_t bl)
{
	size_t i = 0, j = 0;
	long ca, cb;
	int c;

	while (i < al && j < bl) {
		ca = content_next(a, al, &i);
		cb = content_next(b, bl, &j);
		if ((c = cp_cmp16(ca, cb)) != 0)
			return c;
	}
	return i < al ? 1 : j < bl ? -1 : 0;
}

static int
read_int(struct rd *d)
{
	uint64_t v = 0;
	size_t start;
	int neg = 0;

	if (d->i < d->n && d->s[d->i] == '-') {
		neg = 1;
		d->i++;
	}
	if (d->i == d->n || d->s[d->i] < '0' || d->s[d->i] > '9')
		return -1;
	if (d->s[d->i] == '0') {
		/* "0" alone; "-0" and leading zeros are not canonical */
		if (neg)
			return -1;
		d->i++;
	} else {
		start = d->i;
		while (d->i < d->n && d->s[d->i] >= '0' && d->s[d->i] <= '9') {
			if (d->i - start >= 16)
				return -1; /* 17 digits exceed 2^53 - 1 */
			v = v * 10 + (uint64_t)(d->s[d->i] - '0');
			d->i++;
		}
		if (v > (uint64_t)AUDIT_CANON_INT_MAX)
			return -1;
	}
	/* a fraction or an exponent would follow here */
	if (d->i < d->n &&
	    (d->s[d->i] == '.' || d->s[d->i] == 'e' || d->s[d->i] == 'E' ||
	        (d->s[d->i] >= '0' && d->s[d->i] <= '9')))
		return -1;
	return 0;
}

static int
read_lit(struct rd *d, const char *lit, size_t n)
{
	if (d->n - d->i < n || memcmp(d->s + d->i, lit, n) != 0)
		return -1;
	d->i += n;
	return 0;
}

struct top {
	audit_canon_member_fn fn;
	void *arg;
	int stop;
};

static int read_value(struct rd *d, int depth, struct top *t);

static int
read_object(struct rd *d, int depth, struct top *t)
{
	size_t ks, ke, pks = 0, pke = 0, off;
	int first = 1;

	d->i++; /* '{' */
	if (d->i < d->n && d->s[d->i] == '}') {
		d->i++;
		return 0;
	}
	for (;;) {
		off = d->i;
		if (read_string(d, &ks, &ke) != 0)
			return -1;
		if (!first &&
		    key_cmp_written(d->s + pks, pke - pks, d->s + ks,
		        ke - ks) >= 0)
			return -1; /* out of order, or a duplicate */
		if (d->i == d->n || d->s[d->i++] != ':' ||
		    read_value(d, depth + 1, NULL) != 0)
			return -1;
		if (t != NULL && t->fn != NULL &&
		    (t->stop = t->fn(t->arg, (const char *)d->s + ks, ke - ks,
		         off, d->i)) != 0)
			return -1;
		first = 0;
		pks = ks;
		pke = ke;
		if (d->i == d->n)
			return -1;
		if (d->s[d->i] == '}') {
			d->i++;
			return 0;
		}
		if (d->s[d->i++] != ',')
			return -1;
	}
}

static int
read_array(struct rd *d, int depth)
{
	d->i++; /* '[' */
	if (d->i < d->n && d->s[d->i] == ']') {
		d->i++;
		return 0;
	}
	for (;;) {
		if (read_value(d, depth + 1, NULL) != 0 || d->i == d->n)
			return -1;
		if (d->s[d->i] == ']') {
			d->i++;
			return 0;
		}
		if (d->s[d->i++] != ',')
			return -1;
	}
}

/* depth: containers open around this value. t: set for the top level. */
static int
read_value(struct rd *d, int depth, struct top *t)
{
	size_t cs, ce;

	if (d->i == d->n)
		return -1;
	switch (d->s[d->i]) {
	case '{':
	case '[':
		if (depth >= AUDIT_CANON_DEPTH_MAX)
			return -1;
		return d->s[d->i] == '{' ? read_object(d, depth, t)
		                         : read_array(d, depth);
	case '"': return read_string(d, &cs, &ce);
	case 't': return read_lit(d, "true", 4);
	case 'f': return read_lit(d, "false", 5);
	case 'n': return read_lit(d, "null", 4);
	default: return read_int(d);
	}
}

int
audit_canon_check(const char *buf, size_t len, audit_canon_member_fn member,
    void *arg)
{
	struct rd d = { (const unsigned char *)buf, len, 0 };
	struct top t = { member, arg, 0 };

	if (buf == NULL)
		return TSI_ERR_PARSE;
	if (read_value(&d, 0, &t) != 0)
		return t.stop != 0 ? t.stop : TSI_ERR_PARSE;
	return d.i == d.n ? TSI_OK : TSI_ERR_PARSE;
}

int
audit_canon_strip_member(const char *stored, size_t len, size_t off, size_t end,
    char *out, size_t *out_len)
{
	if (off == 0 || off >= end || end >= len)
		return TSI_ERR_PARSE;
	/* with the comma before it, or, first in its object, after it */
	if (stored[off - 1] == ',')
		off--;
	else if (stored[end] == ',')
		end++;
	memcpy(out, stored, off);
	memcpy(out + off, stored + end, len - end);
	*out_len = len - (end - off);
	return TSI_OK;
}
