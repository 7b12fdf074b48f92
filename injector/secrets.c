/* Strict validation of the tsi.secrets annotation. */
#include "injector.h"
#include "tsi/err.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
#define NAME_MAX_LEN 64   /* as tsi-sidecar */
#define VPATH_MAX_LEN 512

static void
why_set(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(why, whylen, fmt, ap) < 0)
		why[0] = '\0';
	va_end(ap);
}

static int
only_chars(const char *s, const char *set)
{
	return s[strspn(s, set)] == '\0';
}

/* A file or field name: one safe segment. */
static int
valid_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= NAME_MAX_LEN && only_chars(s, NAME_CHARS) &&
	    strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Every "/"-separated segment is non-empty and neither "." nor "..". */
static int
clean_segments(const char *s)
{
	const char *p = s;
	size_t seg;

	for (;;) {
		seg = strcspn(p, "/");
		if (seg == 0 || (seg == 1 && p[0] == '.') ||
		    (seg == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (p[seg] == '\0')
			return 1;
		p += seg + 1;
	}
}

/* A Vault path: relative, clean segments, a conservative character set. */
static int
valid_vault_path(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= VPATH_MAX_LEN && s[0] != '/' &&
	    only_chars(s, NAME_CHARS "/") && clean_segments(s);
}

/*
 * The file a secret is written to, as tsi-sidecar reads it: relative to the
 * secrets directory, or absolute strictly below it. Returns the relative
 * part (borrowed from s), or NULL when s is not acceptable.
 */
static const char *
dest_rel(const struct tsi_injector_conf *c, const char *s)
{
	size_t n = strlen(s), m = strlen(c->secrets_mount_path);

	if (n == 0 || n > VPATH_MAX_LEN || !only_chars(s, NAME_CHARS "/"))
		return NULL;
	if (s[0] == '/') {
		if (strncmp(s, c->secrets_mount_path, m) != 0 || s[m] != '/')
			return NULL;
		s += m + 1;
	}
	return clean_segments(s) ? s : NULL;
}

/* Nonzero when relative paths a and b name the same file, or one would be
 * a directory holding the other. */
static int
dest_clash(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);

	if (n > m)
		return dest_clash(b, a);
	return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

int
tsi_injector_secrets_validate(const struct tsi_injector_conf *c,
    const char *annotation, char **canon, char *why, size_t whylen)
{
	json_t *arr = NULL, *item, *v;
	json_error_t jerr;
	const char *key, *name, *dest, *rel, *fmt;
	size_t i, j, len;
	char *out;
	int r = TSI_ERR_INVALID_ARG;

	*canon = NULL;
	len = strlen(annotation);
	if (len > TSI_INJECTOR_SECRETS_MAX_BYTES) {
		why_set(why, whylen, "annotation %s is larger than %d bytes",
		    TSI_ANN_SECRETS, TSI_INJECTOR_SECRETS_MAX_BYTES);
		return TSI_ERR_TOO_LARGE;
	}
	arr = json_loadb(annotation, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (arr == NULL) {
		why_set(why, whylen, "annotation %s is not valid JSON "
		    "(column %d: %s)", TSI_ANN_SECRETS, jerr.column, jerr.text);
		return TSI_ERR_PARSE;
	}
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > TSI_INJECTOR_SECRETS_MAX_ITEMS) {
		why_set(why, whylen, "annotation %s must be a JSON array of 1 to "
		    "%d objects", TSI_ANN_SECRETS, TSI_INJECTOR_SECRETS_MAX_ITEMS);
		goto out;
	}
	json_array_foreach(arr, i, item) {
		if (!json_is_object(item)) {
			why_set(why, whylen, "%s[%zu] must be an object",
			    TSI_ANN_SECRETS, i);
			goto out;
		}
		json_object_foreach(item, key, v) {
			if (strcmp(key, "name") != 0 && strcmp(key, "path") != 0 &&
			    strcmp(key, "dest") != 0 && strcmp(key, "field") != 0 &&
			    strcmp(key, "format") != 0) {
				why_set(why, whylen, "%s[%zu]: unknown key "
				    "(allowed: name, path, dest, field, format)",
				    TSI_ANN_SECRETS, i);
				goto out;
			}
			if (!json_is_string(v)) {
				why_set(why, whylen, "%s[%zu].%s must be a string",
				    TSI_ANN_SECRETS, i, key);
				goto out;
			}
		}
		name = json_string_value(json_object_get(item, "name"));
		dest = json_string_value(json_object_get(item, "dest"));
		v = json_object_get(item, "path");
		if (name == NULL || !valid_name(name)) {
			why_set(why, whylen, "%s[%zu].name must be 1-%d characters "
			    "of [A-Za-z0-9._-]", TSI_ANN_SECRETS, i, NAME_MAX_LEN);
			goto out;
		}
		if (v == NULL || !valid_vault_path(json_string_value(v))) {
			why_set(why, whylen, "%s[%zu].path must be a relative Vault "
			    "path without empty, '.' or '..' segments",
			    TSI_ANN_SECRETS, i);
			goto out;
		}
		if (dest == NULL || (rel = dest_rel(c, dest)) == NULL) {
			why_set(why, whylen, "%s[%zu].dest must be a file path "
			    "relative to %s or below it, without empty, '.' or "
			    "'..' segments", TSI_ANN_SECRETS, i,
			    c->secrets_mount_path);
			goto out;
		}
		v = json_object_get(item, "field");
		if (v != NULL && !valid_name(json_string_value(v))) {
			why_set(why, whylen, "%s[%zu].field must be 1-%d characters "
			    "of [A-Za-z0-9._-]", TSI_ANN_SECRETS, i, NAME_MAX_LEN);
			goto out;
		}
		fmt = json_string_value(json_object_get(item, "format"));
		if (fmt != NULL && strcmp(fmt, "json") != 0 &&
		    strcmp(fmt, "raw") != 0 && strcmp(fmt, "env") != 0) {
			why_set(why, whylen, "%s[%zu].format must be json, raw "
			    "or env", TSI_ANN_SECRETS, i);
			goto out;
		}
		if (fmt != NULL && strcmp(fmt, "raw") == 0 &&
		    json_object_get(item, "field") == NULL) {
			why_set(why, whylen, "%s[%zu]: format raw needs a field",
			    TSI_ANN_SECRETS, i);
			goto out;
		}
		/* Two entries writing the same file would race each other. */
		for (j = 0; j < i; j++) {
			const char *o = dest_rel(c, json_string_value(
			    json_object_get(json_array_get(arr, j), "dest")));
			if (dest_clash(rel, o)) {
				why_set(why, whylen, "%s[%zu].dest clashes with "
				    "%s[%zu].dest", TSI_ANN_SECRETS, i,
				    TSI_ANN_SECRETS, j);
				goto out;
			}
		}
	}
	if ((out = json_dumps(arr, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	*canon = out;
	r = TSI_OK;
out:
	json_decref(arr);
	return r;
}
