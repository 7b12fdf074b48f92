/*
 * The tsi.secrets annotation: checked at admission by the rule tsi-sidecar
 * applies to TSI_SECRETS (lib/secrets_spec.c), so that a pod the injector
 * admits is never refused by its sidecar.
 */
#include "injector.h"
#include "tsi/err.h"
#include "tsi/secrets_spec.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int
tsi_injector_secrets_validate(const struct tsi_injector_conf *c,
    const char *annotation, char **canon, char *why, size_t whylen)
{
	struct tsi_secrets_spec *spec = NULL;
	json_t *arr = NULL;
	size_t len;
	int r;

	*canon = NULL;
	len = strlen(annotation);
	if ((r = tsi_secrets_spec_parse(TSI_ANN_SECRETS, annotation, len,
	         c->secrets_mount_path, &spec, why, whylen)) != TSI_OK)
		return r;
	tsi_secrets_spec_free(spec);
	/* Valid: the sidecar gets this canonical text, never the raw one. */
	r = TSI_ERR_ALLOC;
	if ((arr = json_loadb(annotation, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL)
		goto out;
	if ((*canon = json_dumps(arr, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto out;
	r = TSI_OK;
out:
	json_decref(arr);
	return r;
}
