/* Fuzzes tsi-vault's KV v2 body parsers for the version operations
 * ({"versions":[...]}) and the metadata settings (POST and PATCH, with the
 * delete_version_after duration parser): accepted bodies give 1..1000
 * versions, settings within their bounds, custom_metadata an object of
 * strings (nulls only for PATCH); refused ones leave nothing allocated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
	json_t *req = NULL;
	const char *msg = NULL;
	size_t i;

	if (vault_kv_meta_parse((const char *)data, size, patch, &req, &c,
	        &msg) != TSI_OK) {
		if (req != NULL || msg == NULL)
			abort();
		return;
	}
	if (req == NULL || c.delete_after_s < 0 || c.ncustom > 64 ||
	    (c.ncustom > 0 && (c.custom == NULL || !c.set_custom)))
		abort();
	for (i = 0; i < c.ncustom; i++)
		if (c.custom[i].key == NULL || strlen(c.custom[i].key) == 0 ||
		    strlen(c.custom[i].key) > 128 ||
		    (c.custom[i].value == NULL && !patch) ||
		    (c.custom[i].value != NULL &&
		        strlen(c.custom[i].value) > 512))
			abort();
	kv_meta_cfg_clear(&c);
	json_decref(req);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t *v = NULL;
	size_t n = 0;

	if (vault_kv_versions_parse((const char *)data, size, &v, &n) ==
	    TSI_OK) {
		if (v == NULL || n == 0 || n > 1000)
			abort();
	} else if (v != NULL)
		abort();
	free(v);
	check_meta(data, size, 0);
	check_meta(data, size, 1);
	return 0;
}
