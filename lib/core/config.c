#include "tsi/config.h"
#include "tsi/err.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tsi_config {
	config_t cfg;
	char *file;
};

static int
finish_load(struct tsi_config *c, int ok, struct tsi_config **out, char *err,
    size_t errlen)
{
	if (!ok) {
		const char *f = config_error_file(&c->cfg);
		if (config_error_type(&c->cfg) == CONFIG_ERR_FILE_IO) {
			tsi_errf(err, errlen, "%s: cannot read: %s", c->file,
			    strerror(errno));
			tsi_config_free(c);
			return TSI_ERR_IO;
		}
		tsi_errf(err, errlen, "%s:%d: %s", f ? f : c->file,
		    config_error_line(&c->cfg), config_error_text(&c->cfg));
		tsi_config_free(c);
		return TSI_ERR_CONFIG;
	}
	*out = c;
	return TSI_OK;
}

static struct tsi_config *
config_new(const char *name)
{
	struct tsi_config *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->file = strdup(name ? name : "<config>")) == NULL) {
		free(c);
		return NULL;
	}
	config_init(&c->cfg);
	return c;
}

int
tsi_config_load(const char *path, struct tsi_config **out, char *err,
    size_t errlen)
{
	struct tsi_config *c;

	if (path == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((c = config_new(path)) == NULL)
		return TSI_ERR_ALLOC;
	return finish_load(c, config_read_file(&c->cfg, path) == CONFIG_TRUE,
	    out, err, errlen);
}

int
tsi_config_load_string(const char *name, const char *text,
    struct tsi_config **out, char *err, size_t errlen)
{
	struct tsi_config *c;

	if (text == NULL || out == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((c = config_new(name)) == NULL)
		return TSI_ERR_ALLOC;
	return finish_load(c, config_read_string(&c->cfg, text) == CONFIG_TRUE,
	    out, err, errlen);
}

void
tsi_config_free(struct tsi_config *c)
{
	if (c == NULL)
		return;
	config_destroy(&c->cfg);
	free(c->file);
	free(c);
}

const char *
tsi_config_file(const struct tsi_config *c)
{
	return c->file;
}

void *
tsi_config_raw(const struct tsi_config *c)
{
	return (void *)&c->cfg;
}

static config_setting_t *
lookup(const struct tsi_config *c, const char *key)
{
	return config_setting_get_member(config_root_setting(&c->cfg), key);
}

int
tsi_config_line(const struct tsi_config *c, const char *key)
{
	config_setting_t *s = lookup(c, key);

	return s ? (int)config_setting_source_line(s) : 0;
}

int
tsi_config_check_keys(const struct tsi_config *c, const char *const *allowed,
    char *err, size_t errlen)
{
	config_setting_t *root = config_root_setting(&c->cfg);
	int i, n = config_setting_length(root);

	for (i = 0; i < n; i++) {
		config_setting_t *s =
		    config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		const char *const *a;
		int ok = 0;

		for (a = allowed; *a != NULL; a++)
			if (name != NULL && strcmp(name, *a) == 0)
				ok = 1;
		if (!ok) {
			tsi_errf(err, errlen, "%s:%u: unknown setting '%s'",
			    c->file, config_setting_source_line(s),
			    name ? name : "?");
			return TSI_ERR_CONFIG;
		}
	}
	return TSI_OK;
}

int
tsi_config_str(const struct tsi_config *c, const char *key, const char *def,
    const char **out, char *err, size_t errlen)
{
	config_setting_t *s = lookup(c, key);

	if (s == NULL) {
		*out = def;
		return TSI_OK;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		tsi_errf(err, errlen, "%s:%u: '%s' must be a string", c->file,
		    config_setting_source_line(s), key);
		return TSI_ERR_CONFIG;
	}
	*out = config_setting_get_string(s);
	return TSI_OK;
}

int
tsi_config_int(const struct tsi_config *c, const char *key, long long def,
    long long min, long long max, long long *out, char *err, size_t errlen)
{
	config_setting_t *s = lookup(c, key);
	long long v;

	if (s == NULL) {
		*out = def;
		return TSI_OK;
	}
	if (config_setting_type(s) == CONFIG_TYPE_INT)
		v = config_setting_get_int(s);
	else if (config_setting_type(s) == CONFIG_TYPE_INT64)
		v = config_setting_get_int64(s);
	else {
		tsi_errf(err, errlen, "%s:%u: '%s' must be an integer", c->file,
		    config_setting_source_line(s), key);
		return TSI_ERR_CONFIG;
	}
	if (v < min || v > max) {
		tsi_errf(err, errlen,
		    "%s:%u: '%s' must be between %lld and %lld", c->file,
		    config_setting_source_line(s), key, min, max);
		return TSI_ERR_CONFIG;
	}
	*out = v;
	return TSI_OK;
}

int
tsi_config_bool(const struct tsi_config *c, const char *key, int def, int *out,
    char *err, size_t errlen)
{
	config_setting_t *s = lookup(c, key);

	if (s == NULL) {
		*out = def;
		return TSI_OK;
	}
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		tsi_errf(err, errlen, "%s:%u: '%s' must be true or false",
		    c->file, config_setting_source_line(s), key);
		return TSI_ERR_CONFIG;
	}
	*out = config_setting_get_bool(s);
	return TSI_OK;
}

int
tsi_config_strlist(const struct tsi_config *c, const char *key,
    const char ***out, size_t *n, char *err, size_t errlen)
{
	config_setting_t *s = lookup(c, key);
	const char **v;
	int i, len;

	*out = NULL;
	*n = 0;
	if (s == NULL)
		return TSI_OK;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		if ((v = calloc(1, sizeof(*v))) == NULL)
			return TSI_ERR_ALLOC;
		v[0] = config_setting_get_string(s);
		*out = v;
		*n = 1;
		return TSI_OK;
	}
	if (!config_setting_is_aggregate(s) ||
	    config_setting_type(s) == CONFIG_TYPE_GROUP) {
		tsi_errf(err, errlen, "%s:%u: '%s' must be a list of strings",
		    c->file, config_setting_source_line(s), key);
		return TSI_ERR_CONFIG;
	}
	len = config_setting_length(s);
	if ((v = calloc((size_t)len + 1, sizeof(*v))) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			tsi_errf(err, errlen,
			    "%s:%u: '%s' must be a list of strings", c->file,
			    config_setting_source_line(e), key);
			free(v);
			return TSI_ERR_CONFIG;
		}
		v[i] = config_setting_get_string(e);
	}
	*out = v;
	*n = (size_t)len;
	return TSI_OK;
}
