/*
 * File content of a secret: field extraction and formats. Error messages
 * name keys and types, never values.
 */
#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends the JSON encoding of v; the temporary string is wiped. */
static int
put_json(struct tsi_buf *b, const json_t *v, size_t flags)
{
	size_t n = json_dumpb(v, NULL, 0, flags | JSON_ENCODE_ANY);
	char *tmp;
	int r;

	if (n == 0)
		return TSI_ERR_PARSE;
	if (n > tsi_buf_max(b) - tsi_buf_len(b))
		return TSI_ERR_TOO_LARGE;
	if ((tmp = malloc(n)) == NULL)
		return TSI_ERR_ALLOC;
	if (json_dumpb(v, tmp, n, flags | JSON_ENCODE_ANY) != n)
		r = TSI_ERR_INTERNAL;
	else
		r = tsi_buf_put(b, tmp, n);
	tsi_freezero(tmp, n);
	return r;
}

static int
env_key_ok(const char *k)
{
	const char *p;

	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
	        *k == '_'))
		return 0;
	for (p = k + 1; *p != '\0'; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		        (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

static int
put_env_line(struct tsi_buf *b, const char *k, const json_t *v, char *err,
    size_t errlen)
{
	int r;

	if (!env_key_ok(k)) {
		tsi_errf(err, errlen,
		    "key '%.64s' is not a valid environment "
		    "variable name (format env)",
		    k);
		return TSI_ERR_PARSE;
	}
	if ((r = tsi_buf_puts(b, k)) != TSI_OK ||
	    (r = tsi_buf_put(b, "=", 1)) != TSI_OK)
		return r;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		if (memchr(s, '\n', n) != NULL || memchr(s, '\r', n) != NULL ||
		    strlen(s) != n) {
			tsi_errf(err, errlen,
			    "the value of '%.64s' contains a line "
			    "break or NUL; use format json or raw",
			    k);
			return TSI_ERR_PARSE;
		}
		r = tsi_buf_put(b, s, n);
	} else if (json_is_object(v) || json_is_array(v)) {
		r = put_json(b, v, JSON_COMPACT);
	} else {
		r = put_json(b, v, 0);
	}
	if (r != TSI_OK)
		return r;
	return tsi_buf_put(b, "\n", 1);
}

int
tsi_sidecar_render(const struct tsi_sidecar_secret *sec, const json_t *data,
    struct tsi_buf **out, char *err, size_t errlen)
{
	struct tsi_buf *b = NULL;
	const json_t *v = data, *m;
	const char *k;
	int r = TSI_ERR_INTERNAL;

	if (!json_is_object(data)) {
		tsi_errf(err, errlen, "the secret's data is not a JSON object");
		return TSI_ERR_PARSE;
	}
	if (sec->field != NULL) {
		if ((v = json_object_get(data, sec->field)) == NULL) {
			tsi_errf(err, errlen, "the secret has no field '%s'",
			    sec->field);
			return TSI_ERR_NOT_FOUND;
		}
	}
	if ((b = tsi_buf_new(TSI_SIDECAR_RESPONSE_MAX)) == NULL)
		return TSI_ERR_ALLOC;
	switch (sec->format) {
	case TSI_SIDECAR_FMT_JSON:
		if ((r = put_json(b, v, JSON_INDENT(2) | JSON_SORT_KEYS)) !=
		    TSI_OK)
			goto out;
		r = tsi_buf_put(b, "\n", 1);
		break;
	case TSI_SIDECAR_FMT_RAW:
		if (json_is_string(v))
			r = tsi_buf_put(b, json_string_value(v),
			    json_string_length(v));
		else
			r = put_json(b, v, JSON_COMPACT);
		break;
	case TSI_SIDECAR_FMT_ENV:
		if (sec->field != NULL) {
			r = put_env_line(b, sec->field, v, err, errlen);
			break;
		}
		r = TSI_OK;
		json_object_foreach ((json_t *)data, k, m) {
			if ((r = put_env_line(b, k, m, err, errlen)) != TSI_OK)
				break;
		}
		break;
	}
	if (r == TSI_ERR_TOO_LARGE)
		tsi_errf(err, errlen, "the rendered secret exceeds %d bytes",
		    TSI_SIDECAR_RESPONSE_MAX);
	if (r != TSI_OK)
		goto out;
	*out = b;
	b = NULL;
out:
	tsi_buf_free(b);
	return r;
}
