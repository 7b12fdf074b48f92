/*
 * config.h - program configuration files (libconfig syntax).
 *
 * Every error names the place: "file:line: reason", so that programs can
 * print it and exit 2 (CONTRACT: bad config). Settings are read from the top
 * level of the file; unknown top-level settings are an error, so that a typo
 * never silently falls back to a default.
 */
#ifndef TSI_CONFIG_H
#define TSI_CONFIG_H

#include <stddef.h>

struct tsi_config;

/* Loads and parses path. On failure returns TSI_ERR_CONFIG (or TSI_ERR_IO when
 * the file cannot be read) and writes "file:line: reason" into err.
 * *out: caller frees with tsi_config_free. */
int tsi_config_load(const char *path, struct tsi_config **out, char *err,
    size_t errlen);

/* Parses text (name is used in messages). Same contract as tsi_config_load. */
int tsi_config_load_string(const char *name, const char *text,
    struct tsi_config **out, char *err, size_t errlen);

void tsi_config_free(struct tsi_config *c);

/* Fails with "file:line: unknown setting 'x'" for any top-level setting not
 * named in allowed (NULL-terminated). */
int tsi_config_check_keys(const struct tsi_config *c,
    const char *const *allowed, char *err, size_t errlen);

/* String setting. Absent: *out = def (may be NULL), TSI_OK. Present but not a
 * string: TSI_ERR_CONFIG with "file:line: 'key' must be a string".
 * *out is borrowed from c (or is def). */
int tsi_config_str(const struct tsi_config *c, const char *key, const char *def,
    const char **out, char *err, size_t errlen);

/* Integer setting within [min, max]; absent gives def. */
int tsi_config_int(const struct tsi_config *c, const char *key, long long def,
    long long min, long long max, long long *out, char *err, size_t errlen);

/* Boolean setting; absent gives def. */
int tsi_config_bool(const struct tsi_config *c, const char *key, int def,
    int *out, char *err, size_t errlen);

/* Array or list of strings. Absent: *out = NULL, *n = 0. *out is a malloc'd
 * array of pointers borrowed from c; caller frees the array with free(). */
int tsi_config_strlist(const struct tsi_config *c, const char *key,
    const char ***out, size_t *n, char *err, size_t errlen);

/* The file name and the line of a setting (0 when absent), for messages. */
const char *tsi_config_file(const struct tsi_config *c);
int tsi_config_line(const struct tsi_config *c, const char *key);

/* The underlying libconfig object (config_t *), borrowed, for structured
 * settings such as policy files. */
void *tsi_config_raw(const struct tsi_config *c);

#endif /* TSI_CONFIG_H */
