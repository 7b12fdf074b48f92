/*
 * login_wire.c - the login's body scanner and answer writer (login_wire.h).
 *
 * Both handle only the plain case themselves and leave every other case to
 * jansson, so that what tsi-vault accepts and the bytes it answers are
 * jansson's in every case: a string is "plain" when all its bytes are
 * printable ASCII other than '"' and '\' (jansson reads and writes such a
 * string as the bytes themselves); a body or a value that is not plain is
 * read by vault_login_parse, or written by json_dumps.
 */
#include "login_wire.h"

#include "tsi/buf.h"
#include "tsi/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bigger than any answer a 16 KB JWT can lead to (metadata is at most a
 * few times the claims). */
#define ANSWER_MAX (1024 * 1024)
#define JOIN_MAX (64 * 1024)

/* 1 for the bytes of a plain string: 0x20-0x7e but '"' and '\\'. A table,
 * since every byte of a 2.5 KB token goes through it. */
static const unsigned char plain[256] = {
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	1,
	1,
	0,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	0,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	1,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
	0,
};

static int
plain_byte(unsigned char c)
{
	return plain[c];
}

/* ---- the body ---- */

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* A plain string at p: its bytes in [*s, *s + *n); the byte after it, or
 * NULL when p is not at one. */
static const char *
plain_string(const char *p, const char *end, const char **s, size_t *n)
{
	const char *q;

	if (p == end || *p != '"')
		return NULL;
	for (q = p + 1; q < end && plain_byte((unsigned char)*q); q++)
		;
	if (q == end || *q != '"')
		return NULL;
	*s = p + 1;
	*n = (size_t)(q - (p + 1));
	return q + 1;
}

int
vault_login_body_scan(const char *body, size_t len,
    struct vault_login_body *out)
{
	const char *p, *end, *k, *val;
	size_t klen, vlen;
	int i, have_role = 0, have_jwt = 0;

	if (body == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	end = body + len;
	p = skip_ws(body, end);
	if (p == end || *p++ != '{')
		return TSI_ERR_PARSE;
	for (i = 0; i < 2; i++) {
		p = skip_ws(p, end);
		if ((p = plain_string(p, end, &k, &klen)) == NULL)
			return TSI_ERR_PARSE;
		p = skip_ws(p, end);
		if (p == end || *p++ != ':')
			return TSI_ERR_PARSE;
		p = skip_ws(p, end);
		if ((p = plain_string(p, end, &val, &vlen)) == NULL)
			return TSI_ERR_PARSE;
		if (klen == 4 && memcmp(k, "role", 4) == 0 && !have_role) {
			have_role = 1;
			out->role = val;
			out->rolelen = vlen;
		} else if (klen == 3 && memcmp(k, "jwt", 3) == 0 && !have_jwt) {
			have_jwt = 1;
			out->jwt = val;
			out->jwtlen = vlen;
		} else
			return TSI_ERR_PARSE; /* another member, or a repeat */
		p = skip_ws(p, end);
		if (p == end || *p++ != (i == 0 ? ',' : '}'))
			return TSI_ERR_PARSE;
	}
	if (skip_ws(p, end) != end)
		return TSI_ERR_PARSE;
	return TSI_OK;
}

/* ---- the answer ---- */

/* Appends s[0..n) as a JSON string, exactly as json_dumps writes it. */
static int
put_string(struct tsi_buf *b, const char *s, size_t n)
{
	json_t *j;
	char *text;
	size_t i;
	int r;

	for (i = 0; i < n && plain_byte((unsigned char)s[i]); i++)
		;
	if (i == n) {
		if ((r = tsi_buf_put(b, "\"", 1)) != TSI_OK ||
		    (r = tsi_buf_put(b, s, n)) != TSI_OK)
			return r;
		return tsi_buf_put(b, "\"", 1);
	}
	/* Escapes, control bytes or UTF-8: jansson's own encoding. */
	if ((j = json_stringn(s, n)) == NULL)
		return TSI_ERR_PARSE;
	text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (text == NULL)
		return TSI_ERR_ALLOC;
	r = tsi_buf_puts(b, text);
	tsi_strfree(text);
	return r;
}

static int
put_cstring(struct tsi_buf *b, const char *s)
{
	size_t i;
	int r;

	/* One pass for the common case: the NUL is not a plain byte. */
	for (i = 0; plain_byte((unsigned char)s[i]); i++)
		;
	if (s[i] != '\0')
		return put_string(b, s, i + strlen(s + i));
	if ((r = tsi_buf_put(b, "\"", 1)) != TSI_OK ||
	    (r = tsi_buf_put(b, s, i)) != TSI_OK)
		return r;
	return tsi_buf_put(b, "\"", 1);
}

/* "key": as a member name, the comma before it unless first. */
static int
put_key(struct tsi_buf *b, int *first, const char *key)
{
	int r;

	if (!*first && (r = tsi_buf_put(b, ",", 1)) != TSI_OK)
		return r;
	*first = 0;
	if ((r = put_cstring(b, key)) != TSI_OK)
		return r;
	return tsi_buf_put(b, ":", 1);
}

/*
 * One claim as the metadata string: *s points to it (into num, into join,
 * or into the claim); 0 when the claim is left out. As the JSON tree this
 * replaced: C strings (a NUL ends a value), arrays joined with "," where
 * only string elements add text, a join over JOIN_MAX left out.
 */
static int
claim_text(const json_t *val, char *num, size_t numlen, struct tsi_buf *join,
    const char **s)
{
	const json_t *e;
	size_t i;

	if (json_is_string(val))
		*s = json_string_value(val);
	else if (json_is_integer(val)) {
		snprintf(num, numlen, "%lld",
		    (long long)json_integer_value(val));
		*s = num;
	} else if (json_is_real(val)) {
		snprintf(num, numlen, "%g", json_real_value(val));
		*s = num;
	} else if (json_is_boolean(val))
		*s = json_is_true(val) ? "true" : "false";
	else if (json_is_array(val)) {
		tsi_buf_reset(join);
		json_array_foreach (val, i, e) {
			if (i > 0 && tsi_buf_put(join, ",", 1) != TSI_OK)
				return 0;
			if (json_is_string(e) &&
			    tsi_buf_puts(join, json_string_value(e)) != TSI_OK)
				return 0;
		}
		*s = tsi_buf_str(join);
	} else
		return 0;
	return 1;
}

static int
put_metadata(struct tsi_buf *b, const json_t *claims)
{
	struct tsi_buf *join = NULL;
	const char *key, *s;
	json_t *val;
	char num[32];
	int first = 1, r;

	if ((r = tsi_buf_put(b, "{", 1)) != TSI_OK)
		return r;
	if ((join = tsi_buf_new(JOIN_MAX)) == NULL)
		return TSI_ERR_ALLOC;
	json_object_foreach ((json_t *)claims, key, val) {
		if (!claim_text(val, num, sizeof(num), join, &s))
			continue;
		if ((r = put_key(b, &first, key)) != TSI_OK ||
		    (r = put_cstring(b, s)) != TSI_OK)
			goto out;
	}
	r = tsi_buf_put(b, "}", 1);
out:
	tsi_buf_free(join);
	return r;
}

/* Nonzero when json_string would take s. */
static int
encodable(const char *s)
{
	const char *p;
	json_t *j;

	for (p = s; *p != '\0' && plain_byte((unsigned char)*p); p++)
		;
	if (*p == '\0')
		return 1;
	if ((j = json_string(s)) == NULL)
		return 0;
	json_decref(j);
	return 1;
}

static int
put_rules(struct tsi_buf *b, const char *const *rules, size_t n)
{
	size_t i;
	int first = 1, r;

	if ((r = tsi_buf_put(b, "[", 1)) != TSI_OK)
		return r;
	for (i = 0; i < n; i++) {
		/* Not UTF-8: json_string refused it, so the tree this
		 * replaced never held it. */
		if (!encodable(rules[i]))
			continue;
		if ((!first && (r = tsi_buf_put(b, ",", 1)) != TSI_OK) ||
		    (r = put_cstring(b, rules[i])) != TSI_OK)
			return r;
		first = 0;
	}
	return tsi_buf_put(b, "]", 1);
}

char *
vault_login_answer_text(const struct vault_login_answer *a)
{
	struct tsi_buf *b;
	char *text = NULL;
	int first = 1, r;

	if (a == NULL || (b = tsi_buf_new(ANSWER_MAX)) == NULL)
		return NULL;
	if ((r = tsi_buf_put(b, "{", 1)) != TSI_OK ||
	    (r = put_key(b, &first, "request_id")) != TSI_OK ||
	    (r = put_cstring(b, a->request_id)) != TSI_OK ||
	    (r = tsi_buf_puts(b,
	         ",\"lease_id\":\"\",\"renewable\":false,"
	         "\"lease_duration\":0,\"data\":null,\"auth\":{")) != TSI_OK)
		goto out;
	first = 1;
	if ((r = put_key(b, &first, "client_token")) != TSI_OK ||
	    (r = put_cstring(b, a->token)) != TSI_OK ||
	    (r = put_key(b, &first, "accessor")) != TSI_OK ||
	    (r = put_cstring(b, a->accessor)) != TSI_OK ||
	    (r = put_key(b, &first, "policies")) != TSI_OK ||
	    (r = put_rules(b, a->rules, a->nrules)) != TSI_OK ||
	    (r = put_key(b, &first, "token_policies")) != TSI_OK ||
	    (r = put_rules(b, a->rules, a->nrules)) != TSI_OK ||
	    (r = put_key(b, &first, "metadata")) != TSI_OK ||
	    (r = put_metadata(b, a->claims)) != TSI_OK ||
	    (r = tsi_buf_putf(b,
	         ",\"lease_duration\":%ld,\"renewable\":false,"
	         "\"entity_id\":\"\",\"token_type\":\"service\","
	         "\"mfa_requirement\":null,\"orphan\":true},\"wrap_info\":null,"
	         "\"warnings\":null,\"mount_type\":\"\"}",
	         a->ttl)) != TSI_OK)
		goto out;
	text = tsi_buf_take(b, NULL);
out:
	tsi_buf_free(b);
	return text;
}
