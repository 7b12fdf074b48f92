/*
 * tsi.secrets / TSI_SECRETS: what a pod asks for, validated once for the
 * injector (at admission) and the sidecar (before anything is fetched).
 */
#include "tsi/secrets_spec.h"
#include "tsi/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
tsi_secrets_spec_free(struct tsi_secrets_spec *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].path);
		free(s->v[i].dest);
		free(s->v[i].field);
	}
	free(s->v);
	free(s);
}

int
tsi_secrets_format_parse(const char *s, enum tsi_secrets_format *out)
{
	if (s == NULL)
		return TSI_ERR_INVALID_ARG;
	if (strcmp(s, "json") == 0)
		*out = TSI_SECRETS_FMT_JSON;
	else if (strcmp(s, "raw") == 0)
		*out = TSI_SECRETS_FMT_RAW;
	else if (strcmp(s, "env") == 0)
		*out = TSI_SECRETS_FMT_ENV;
	else
		return TSI_ERR_INVALID_ARG;
	return TSI_OK;
}

const char *
tsi_secrets_format_name(enum tsi_secrets_format f)
{
	switch (f) {
	case TSI_SECRETS_FMT_RAW: return "raw";
	case TSI_SECRETS_FMT_ENV: return "env";
	case TSI_SECRETS_FMT_JSON: break;
	}
	return "json";
}

static int
name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Names: a short token safe in logs and file names. */
static int
check_name(const char *s, const char **why)
{
	size_t i, n = strlen(s);

	if (n == 0) {
		*why = "must not be empty";
		return 0;
	}
	if (n > TSI_SECRETS_NAME_MAX) {
		*why = "is longer than 64 characters";
		return 0;
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		*why = "must not be '.' or '..'";
		return 0;
	}
	for (i = 0; i < n; i++)
		if (!name_char((unsigned char)s[i])) {
			*why = "may only contain letters, digits, '.', '_' and "
			       "'-'";
			return 0;
		}
	return 1;
}

/*
 * Checks the segments of a '/'-separated relative path: none empty, none
 * "." or "..", none longer than seg_max, each made of allowed characters.
 */
static int
check_segments(const char *s, size_t seg_max, size_t depth_max,
    int (*ok_char)(int), const char **why)
{
	const char *p = s, *e;
	size_t depth = 0;
	size_t i;

	if (*s == '\0') {
		*why = "must not be empty";
		return 0;
	}
	for (;;) {
		e = strchr(p, '/');
		if (e == NULL)
			e = p + strlen(p);
		if (e == p) {
			*why = "has an empty path segment ('//' or a trailing "
			       "'/')";
			return 0;
		}
		if ((e - p == 1 && p[0] == '.') ||
		    (e - p == 2 && p[0] == '.' && p[1] == '.')) {
			*why = "must not contain '.' or '..' segments (it must "
			       "stay "
			       "under the destination directory)";
			return 0;
		}
		if ((size_t)(e - p) > seg_max) {
			*why = "has a path segment longer than 255 characters";
			return 0;
		}
		for (i = 0; p + i < e; i++)
			if (!ok_char((unsigned char)p[i])) {
				*why = "contains a character outside letters, "
				       "digits, "
				       "'.', '_', '-' and '/'";
				return 0;
			}
		if (++depth > depth_max) {
			*why = "has too many path segments";
			return 0;
		}
		if (*e == '\0')
			break;
		p = e + 1;
	}
	return 1;
}

static int
path_char(int c)
{
	return name_char(c);
}

/*
 * dest: relative, or absolute below dest_dir. Returns a malloc'd relative
 * path or NULL with *why set.
 */
static char *
normalize_dest(const char *dest, const char *dest_dir, const char **why)
{
	const char *rel = dest;
	size_t dl;

	if (strlen(dest) > TSI_SECRETS_DEST_MAX) {
		*why = "is longer than 512 characters";
		return NULL;
	}
	if (dest[0] == '/') {
		if (dest_dir == NULL || dest_dir[0] != '/') {
			*why = "must be relative to the destination directory";
			return NULL;
		}
		dl = strlen(dest_dir);
		while (dl > 1 && dest_dir[dl - 1] == '/')
			dl--;
		if (dl == 1) /* dest_dir is "/" */
			rel = dest + 1;
		else if (strncmp(dest, dest_dir, dl) == 0 && dest[dl] == '/')
			rel = dest + dl + 1;
		else {
			*why = "is an absolute path outside the destination "
			       "directory";
			return NULL;
		}
	}
	if (!check_segments(rel, 255, TSI_SECRETS_DEST_DEPTH, path_char, why))
		return NULL;
	return strdup(rel);
}

/* KV path: "secret/data/<p>" or "<p>"; stored as <p>. */
static char *
normalize_path(const char *path, const char **why)
{
	static const char prefix[] = "secret/data/";
	const char *p = path;

	if (strlen(path) > TSI_SECRETS_PATH_MAX) {
		*why = "is longer than 512 characters";
		return NULL;
	}
	if (path[0] == '/') {
		*why = "must not start with '/' (write 'medical/record' or "
		       "'secret/data/medical/record')";
		return NULL;
	}
	if (strncmp(p, prefix, sizeof(prefix) - 1) == 0)
		p += sizeof(prefix) - 1;
	if (!check_segments(p, 255, 64, path_char, why))
		return NULL;
	return strdup(p);
}

static int
get_string(const json_t *o, const char *key, int required, const char **out,
    const char **why)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL) {
		if (required) {
			*why = "is missing";
			return 0;
		}
		return 1;
	}
	if (!json_is_string(v)) {
		*why = "must be a string";
		return 0;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		*why = "must not contain a NUL character";
		return 0;
	}
	*out = json_string_value(v);
	return 1;
}

int
tsi_secrets_spec_from_json(const char *src, const json_t *arr,
    const char *dest_dir, struct tsi_secrets_spec **out, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "name", "path", "dest", "field",
		"format" };
	struct tsi_secrets_spec *s = NULL;
	const char *why = NULL, *key;
	const json_t *o, *v;
	size_t i, j, k, n;
	int r = TSI_ERR_INVALID_ARG;

	if (!json_is_array(arr)) {
		tsi_errf(err, errlen, "%s: must be a JSON array of objects",
		    src);
		goto out;
	}
	n = json_array_size(arr);
	if (n == 0) {
		tsi_errf(err, errlen, "%s: lists no secrets", src);
		goto out;
	}
	if (n > TSI_SECRETS_MAX) {
		tsi_errf(err, errlen,
		    "%s: lists %zu secrets, at most %d allowed", src, n,
		    TSI_SECRETS_MAX);
		r = TSI_ERR_TOO_LARGE;
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->v = calloc(n, sizeof(*s->v))) == NULL) {
		r = TSI_ERR_ALLOC;
		tsi_errf(err, errlen, "%s: out of memory", src);
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct tsi_secrets_entry *sec = &s->v[i];
		const char *name, *path, *dest, *field, *fmt;

		o = json_array_get(arr, i);
		if (!json_is_object(o)) {
			tsi_errf(err, errlen, "%s[%zu]: must be an object", src,
			    i);
			goto out;
		}
		json_object_foreach ((json_t *)o, key, v) {
			for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
				if (strcmp(key, keys[k]) == 0)
					break;
			if (k == sizeof(keys) / sizeof(keys[0])) {
				tsi_errf(err, errlen,
				    "%s[%zu]: unknown key '%.64s' "
				    "(allowed: name, path, dest, field, "
				    "format)",
				    src, i, key);
				goto out;
			}
		}
#define FIELD(k, req, var) \
	if (!get_string(o, k, req, &var, &why)) { \
		tsi_errf(err, errlen, "%s[%zu].%s: %s", src, i, k, why); \
		goto out; \
	}
		FIELD("name", 1, name)
		FIELD("path", 1, path)
		FIELD("dest", 1, dest)
		FIELD("field", 0, field)
		FIELD("format", 0, fmt)
#undef FIELD
		s->n = i + 1; /* from here on, frees reach this entry */
		if (!check_name(name, &why)) {
			tsi_errf(err, errlen, "%s[%zu].name: %s", src, i, why);
			goto out;
		}
		if ((sec->name = strdup(name)) == NULL)
			goto oom;
		if ((sec->path = normalize_path(path, &why)) == NULL) {
			if (why == NULL)
				goto oom;
			tsi_errf(err, errlen, "%s[%zu].path: %s", src, i, why);
			goto out;
		}
		why = NULL;
		if ((sec->dest = normalize_dest(dest, dest_dir, &why)) ==
		    NULL) {
			if (why == NULL)
				goto oom;
			tsi_errf(err, errlen, "%s[%zu].dest: %s", src, i, why);
			goto out;
		}
		if (field != NULL) {
			if (!check_name(field, &why)) {
				tsi_errf(err, errlen, "%s[%zu].field: %s", src,
				    i, why);
				goto out;
			}
			if ((sec->field = strdup(field)) == NULL)
				goto oom;
		}
		if (fmt != NULL &&
		    tsi_secrets_format_parse(fmt, &sec->format) != TSI_OK) {
			tsi_errf(err, errlen,
			    "%s[%zu].format: '%.32s' is not one "
			    "of json, raw, env",
			    src, i, fmt);
			goto out;
		}
		if (sec->format == TSI_SECRETS_FMT_RAW && sec->field == NULL) {
			tsi_errf(err, errlen,
			    "%s[%zu]: format 'raw' needs a "
			    "'field'",
			    src, i);
			goto out;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(s->v[j].name, sec->name) == 0) {
				tsi_errf(err, errlen,
				    "%s[%zu].name: '%s' is "
				    "already used by entry %zu",
				    src, i, sec->name, j);
				goto out;
			}
			if (strcmp(s->v[j].dest, sec->dest) == 0) {
				tsi_errf(err, errlen,
				    "%s[%zu].dest: '%s' is "
				    "already used by entry %zu",
				    src, i, sec->dest, j);
				goto out;
			}
			/* One dest may not be a directory of another. */
			{
				const char *a = s->v[j].dest, *b = sec->dest;
				size_t la = strlen(a), lb = strlen(b);
				if ((la < lb && strncmp(a, b, la) == 0 &&
				        b[la] == '/') ||
				    (lb < la && strncmp(a, b, lb) == 0 &&
				        a[lb] == '/')) {
					tsi_errf(err, errlen,
					    "%s[%zu].dest: '%s' "
					    "and entry %zu's '%s' would need "
					    "the same name as file and "
					    "directory",
					    src, i, b, j, a);
					goto out;
				}
			}
		}
	}
	*out = s;
	s = NULL;
	r = TSI_OK;
	goto out;
oom:
	r = TSI_ERR_ALLOC;
	tsi_errf(err, errlen, "%s: out of memory", src);
out:
	tsi_secrets_spec_free(s);
	return r;
}

int
tsi_secrets_spec_parse(const char *src, const char *text, size_t len,
    const char *dest_dir, struct tsi_secrets_spec **out, char *err,
    size_t errlen)
{
	json_error_t je;
	json_t *arr = NULL;
	int r;

	if (text == NULL || len == 0) {
		tsi_errf(err, errlen,
		    "%s: is empty (expected a JSON array of "
		    "{\"name\",\"path\",\"dest\"})",
		    src);
		return TSI_ERR_INVALID_ARG;
	}
	if (len > TSI_SECRETS_SPEC_MAX_BYTES) {
		tsi_errf(err, errlen, "%s: is %zu bytes, at most %d allowed",
		    src, len, TSI_SECRETS_SPEC_MAX_BYTES);
		return TSI_ERR_TOO_LARGE;
	}
	arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (arr == NULL) {
		tsi_errf(err, errlen,
		    "%s: invalid JSON at line %d column %d: %s", src, je.line,
		    je.column, je.text);
		return TSI_ERR_PARSE;
	}
	r = tsi_secrets_spec_from_json(src, arr, dest_dir, out, err, errlen);
	json_decref(arr);
	return r;
}
