/* Fuzzes tsi-vault's KV v2 body parsers for the version operations
 * ({"versions":[...]}) and the metadata settings (POST and PATCH, with the
 * delete_version_after duration parser): accepted bodies give 1..1000
 * versions, settings within their bounds, custom_metadata an object of
 * strings (nulls only for PATCH); refused ones leave nothing allocated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

#include "vault.h"
#include "kv.h"
#include "store.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_meta(const uint8_t *data, size_t size, int patch)
{
	struct kv_meta_cfg c;
	json_t *req = NULL, *e;
	const char *msg = NULL, *key;

	if (vault_kv_meta_parse((const char *)data, size, patch, &req, &c,
	    &msg) != TSI_OK) {
		if (req != NULL || msg == NULL)
			abort();
		return;
	}
	if (req == NULL || c.delete_after_s < 0 ||
	    (c.custom != NULL && !json_is_object(c.custom)) ||
	    (c.custom != NULL && json_object_size(c.custom) > 64))
		abort();
	if (c.custom != NULL)
		json_object_foreach((json_t *)c.custom, key, e)
			if (!json_is_string(e) && !(patch && json_is_null(e)))
				abort();
	json_decref(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t *v = NULL;
	size_t n = 0;

	if (vault_kv_versions_parse((const char *)data, size, &v, &n) == TSI_OK) {
		if (v == NULL || n == 0 || n > 1000)
			abort();
	} else if (v != NULL)
		abort();
	free(v);
	check_meta(data, size, 0);
	check_meta(data, size, 1);
	return 0;
}
