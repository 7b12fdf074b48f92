/*
 * TSI_SECRETS: validated by the shared rule (lib/secrets_spec.c, the same one
 * tsi-injector applies at admission), then given the sidecar's run state.
 */
#include "sidecar/sidecar.h"
#include "tsi/err.h"

#include <stdlib.h>
#include <string.h>

void
tsi_sidecar_spec_free(struct tsi_sidecar_spec *s)
{
	if (s == NULL)
		return;
	tsi_secrets_spec_free(s->shared);
	free(s->v);
	free(s);
}

int
tsi_sidecar_format_parse(const char *s, enum tsi_sidecar_format *out)
{
	enum tsi_secrets_format f;
	int r;

	if ((r = tsi_secrets_format_parse(s, &f)) == TSI_OK)
		*out = (enum tsi_sidecar_format)f;
	return r;
}

const char *
tsi_sidecar_format_name(enum tsi_sidecar_format f)
{
	return tsi_secrets_format_name((enum tsi_secrets_format)f);
}

/* Adds run state to the validated spec (takes ownership of in). */
static int
adopt(const char *src, struct tsi_secrets_spec *in,
    struct tsi_sidecar_spec **out, char *err, size_t errlen)
{
	struct tsi_sidecar_spec *s = NULL;
	size_t i;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->v = calloc(in->n, sizeof(*s->v))) == NULL) {
		tsi_errf(err, errlen, "%s: out of memory", src);
		free(s);
		tsi_secrets_spec_free(in);
		return TSI_ERR_ALLOC;
	}
	for (i = 0; i < in->n; i++) {
		s->v[i].name = in->v[i].name;
		s->v[i].path = in->v[i].path;
		s->v[i].dest = in->v[i].dest;
		s->v[i].field = in->v[i].field;
		s->v[i].format = (enum tsi_sidecar_format)in->v[i].format;
	}
	s->n = in->n;
	s->shared = in;
	*out = s;
	return TSI_OK;
}

int
tsi_sidecar_spec_from_json(const char *src, const json_t *arr,
    const char *dest_dir, struct tsi_sidecar_spec **out, char *err,
    size_t errlen)
{
	struct tsi_secrets_spec *in = NULL;
	int r;

	if ((r = tsi_secrets_spec_from_json(src, arr, dest_dir, &in, err,
	         errlen)) != TSI_OK)
		return r;
	return adopt(src, in, out, err, errlen);
}

int
tsi_sidecar_spec_parse(const char *src, const char *text, size_t len,
    const char *dest_dir, struct tsi_sidecar_spec **out, char *err,
    size_t errlen)
{
	struct tsi_secrets_spec *in = NULL;
	int r;

	if ((r = tsi_secrets_spec_parse(src, text, len, dest_dir, &in, err,
	         errlen)) != TSI_OK)
		return r;
	return adopt(src, in, out, err, errlen);
}
