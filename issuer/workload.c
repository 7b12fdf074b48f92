/*
 * workload.c - the resolved identity of a caller.
 */
#include "issuer/workload.h"

#include "issuer/config.h"
#include "tsi/err.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct tsi_workload *
tsi_workload_new(enum tsi_workload_kind kind)
{
	struct tsi_workload *w = calloc(1, sizeof(*w));

	if (w != NULL)
		w->kind = kind;
	return w;
}

void
tsi_workload_free(struct tsi_workload *w)
{
	size_t i;

	if (w == NULL)
		return;
	free(w->namespace);
	free(w->pod);
	free(w->service_account);
	free(w->container);
	free(w->exe);
	for (i = 0; i < w->n_images; i++)
		free(w->images[i]);
	for (i = 0; i < w->n_image_names; i++)
		free(w->image_names[i]);
	free(w);
}

int
tsi_workload_add_image(struct tsi_workload *w, const char *digest)
{
	size_t i, pos;
	char *d;
	int c;

	if (!tsi_issuer_is_digest(digest))
		return TSI_ERR_INVALID_ARG;
	for (pos = 0; pos < w->n_images; pos++) {
		if ((c = strcmp(w->images[pos], digest)) == 0)
			return TSI_OK;
		if (c > 0)
			break;
	}
	if (w->n_images == TSI_WORKLOAD_MAX_IMAGES)
		return TSI_ERR_TOO_LARGE;
	if ((d = strdup(digest)) == NULL)
		return TSI_ERR_ALLOC;
	for (i = w->n_images; i > pos; i--)
		w->images[i] = w->images[i - 1];
	w->images[pos] = d;
	w->n_images++;
	return TSI_OK;
}

int
tsi_workload_add_image_name(struct tsi_workload *w, const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return TSI_ERR_INVALID_ARG;
	for (i = 0; i < w->n_image_names; i++)
		if (strcmp(w->image_names[i], name) == 0)
			return TSI_OK;
	if (w->n_image_names == TSI_WORKLOAD_MAX_IMAGES)
		return TSI_ERR_TOO_LARGE;
	if ((w->image_names[w->n_image_names] = strdup(name)) == NULL)
		return TSI_ERR_ALLOC;
	w->n_image_names++;
	return TSI_OK;
}

int
tsi_image_digest_normalize(const char *id, char out[72])
{
	const char *p;
	size_t i, len;

	if (id == NULL)
		return TSI_ERR_PARSE;
	len = strlen(id);
	if (len < 71)
		return TSI_ERR_PARSE;
	p = id + len - 71;
	if (strncmp(p, "sha256:", 7) != 0)
		return TSI_ERR_PARSE;
	/* What precedes the digest: nothing, or a repository and '@'. */
	if (p != id && p[-1] != '@')
		return TSI_ERR_PARSE;
	memcpy(out, "sha256:", 7);
	for (i = 7; i < 71; i++) {
		if (!isxdigit((unsigned char)p[i]))
			return TSI_ERR_PARSE;
		out[i] = (char)tolower((unsigned char)p[i]);
	}
	out[71] = '\0';
	return TSI_OK;
}
