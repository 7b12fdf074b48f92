/*
 * audit_canon.h - the canonical JSON of audit records (docs/audit-format.md).
 *
 * Not a public header. One implementation of the bytes a record is stored
 * and hashed as, used by the writer (sealing) and by verify; jansson is
 * only the container the writer serialises from, never the definition.
 *
 * Two forms:
 *   AUDIT_FORMAT_V2 - the RFC 8785 subset of docs/audit-format.md: strings
 *     escaped as RFC 8785 says, integers within +-(2^53 - 1), true, false,
 *     null, arrays, objects with keys sorted by UTF-16 code units. No
 *     reals. Records carry "format":2.
 *   AUDIT_FORMAT_V1 - what records written before the format was versioned
 *     hold (no "format" field): the bytes jansson 2.14's
 *     json_dumps(JSON_SORT_KEYS | JSON_COMPACT) wrote, pinned here so that
 *     verifying an old log does not depend on the installed jansson.
 */
#ifndef TSI_AUDIT_CANON_H
#define TSI_AUDIT_CANON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define AUDIT_FORMAT_V1 1
#define AUDIT_FORMAT_V2 2
#define AUDIT_FORMAT AUDIT_FORMAT_V2 /* what the writer writes */
/* Containers nested at most (the outermost object counts as 1). */
#define AUDIT_CANON_DEPTH_MAX 32
/* Integers of format 2: the I-JSON (RFC 7493) range, exact as doubles. */
#define AUDIT_CANON_INT_MAX INT64_C(9007199254740991)

/* A bounded output: p (caller-owned) holds cap bytes, n are used. Writers
 * append and never pass cap; on failure n may have advanced (the caller
 * discards the output). */
struct audit_canon_out {
	char *p;
	size_t n, cap;
};

/*
 * Appends the canonical form (fmt: AUDIT_FORMAT_V1 or _V2) of v (borrowed)
 * to o. TSI_ERR_TOO_LARGE when o has no room; TSI_ERR_INVALID_ARG when v
 * has no canonical form: a real or an integer beyond AUDIT_CANON_INT_MAX
 * (format 2), invalid UTF-8 in a string or key, nesting beyond
 * AUDIT_CANON_DEPTH_MAX (depth: containers already open around v).
 */
int audit_canon_value(struct audit_canon_out *o, int fmt, const json_t *v,
    int depth);
/* A string s[0..n) (may hold NUL) with its quotes; errors as above. */
int audit_canon_string(struct audit_canon_out *o, int fmt, const char *s,
    size_t n);
/* An integer as both forms write it (no range check). */
int audit_canon_int(struct audit_canon_out *o, long long v);
/* Orders two keys (UTF-8, lengths given) as fmt sorts an object's members:
 * by UTF-16 code units (format 2), by bytes (format 1). */
int audit_canon_key_cmp(int fmt, const char *a, size_t al, const char *b,
    size_t bl);
/* The canonical form of v as a malloc'd, NUL-terminated string of at most
 * max bytes (caller frees); NULL with *err set (errors as above, or
 * TSI_ERR_ALLOC). *len (may be NULL): its length. */
char *audit_canon_dumps(const json_t *v, int fmt, size_t max, size_t *len,
    int *err);

/*
 * The strict reader of format 2: TSI_OK when buf[0..len) is exactly the
 * canonical form of some value (whatever audit_canon_value writes, and
 * nothing else: no whitespace, no other escape, no "-0", no leading zero,
 * no fraction or exponent, keys strictly ascending, valid UTF-8, nesting
 * within AUDIT_CANON_DEPTH_MAX); TSI_ERR_PARSE otherwise. Reads only
 * buf[0..len) (untrusted bytes; no NUL needed).
 *
 * member (may be NULL) is called for each member of a top-level object in
 * order, with the key as it is written between its quotes (escapes not
 * decoded) and the member's span buf[off..end) from the key's opening
 * quote to the end of its value; a nonzero return stops the parse with
 * that value. It may be called before a later byte turns out bad.
 */
typedef int (*audit_canon_member_fn)(void *arg, const char *key, size_t klen,
    size_t off, size_t end);
int audit_canon_check(const char *buf, size_t len, audit_canon_member_fn member,
    void *arg);

/*
 * The bytes a record is hashed over: stored (a canonical record object,
 * format 1 or 2) without its top-level "hash" member, into out (caller
 * provides len bytes). *out_len: their length. TSI_ERR_PARSE when there is
 * no "hash" member at [off, end) (the span audit_canon_check reported).
 */
int audit_canon_strip_member(const char *stored, size_t len, size_t off,
    size_t end, char *out, size_t *out_len);

#endif /* TSI_AUDIT_CANON_H */
