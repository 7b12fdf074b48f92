/*
 * The tsi.secrets / TSI_SECRETS rule: which secrets a pod asks for and where
 * they are written. One rule, applied by tsi-injector at admission and by
 * tsi-sidecar before it fetches anything, so that what the injector admits is
 * exactly what the sidecar accepts.
 *
 * Where the two former copies disagreed the stricter rule was kept: text at
 * most 16 KiB (the injector's), dest at most 512 bytes (the injector's) and
 * at most 16 segments of at most 255 bytes (the sidecar's), field 1 to 64 of
 * [A-Za-z0-9._-] (the injector's), names unique and no NUL byte in any value
 * (the sidecar's), path segments at most 255 bytes and 64 deep (the
 * sidecar's).
 */
#ifndef TSI_SECRETS_SPEC_H
#define TSI_SECRETS_SPEC_H

#include <jansson.h>
#include <stddef.h>

#define TSI_SECRETS_SPEC_MAX_BYTES 16384 /* the JSON text */
#define TSI_SECRETS_MAX 64               /* entries */
#define TSI_SECRETS_NAME_MAX 64          /* [A-Za-z0-9._-], not "." or ".." */
#define TSI_SECRETS_PATH_MAX 512         /* KV path under secret/data/ */
#define TSI_SECRETS_DEST_MAX 512         /* as written, absolute or relative */
#define TSI_SECRETS_DEST_DEPTH 16        /* path components in dest */
#define TSI_SECRETS_FIELD_MAX 64         /* [A-Za-z0-9._-], not "." or ".." */

enum tsi_secrets_format {
	TSI_SECRETS_FMT_JSON =
	    0,               /* the data object (or the field's JSON value) */
	TSI_SECRETS_FMT_RAW, /* the value of `field`, as is */
	TSI_SECRETS_FMT_ENV, /* KEY=VALUE lines */
};

/* One validated entry. All strings are owned by the spec. */
struct tsi_secrets_entry {
	char *name;  /* unique among the entries */
	char *path;  /* KV path below secret/data/, e.g. "medical/record" */
	char *dest;  /* relative to the destination directory */
	char *field; /* NULL: the whole data object */
	enum tsi_secrets_format format;
};

struct tsi_secrets_spec {
	struct tsi_secrets_entry *v;
	size_t n;
};

/*
 * Parses and validates the JSON text (len bytes, not necessarily
 * NUL-terminated). dest_dir (borrowed; may be NULL) is the destination
 * directory: an absolute dest is accepted only strictly below it and is made
 * relative. src names the input in messages ("tsi.secrets", "TSI_SECRETS").
 * Returns TSI_OK, or TSI_ERR_TOO_LARGE, TSI_ERR_PARSE, TSI_ERR_INVALID_ARG,
 * TSI_ERR_ALLOC with a one-line reason in err (never a secret value: the
 * spec holds none); *out is then untouched.
 * *out: caller frees with tsi_secrets_spec_free.
 */
int tsi_secrets_spec_parse(const char *src, const char *text, size_t len,
    const char *dest_dir, struct tsi_secrets_spec **out, char *err,
    size_t errlen);

/* Same, from an already decoded JSON value (borrowed). */
int tsi_secrets_spec_from_json(const char *src, const json_t *arr,
    const char *dest_dir, struct tsi_secrets_spec **out, char *err,
    size_t errlen);

/* Accepts NULL. */
void tsi_secrets_spec_free(struct tsi_secrets_spec *s);

/* "json" | "raw" | "env" -> format; TSI_ERR_INVALID_ARG otherwise. */
int tsi_secrets_format_parse(const char *s, enum tsi_secrets_format *out);
/* Static string. */
const char *tsi_secrets_format_name(enum tsi_secrets_format f);

#endif /* TSI_SECRETS_SPEC_H */
