/* Fuzzes tsi-vault's KV write body parser ({"data":{...},"options":{"cas":N}}):
 * accepted bodies have an object under data, a cas of -1 or >= 0, and
 * re-serialize (what kv.c seals). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>

#include "vault.h"
#include "parse.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL, *d = NULL;
	long long cas = 0;
	char *pt;

	if (vault_kv_write_parse((const char *)data, size, &req, &d, &cas) !=
	    TSI_OK) {
		if (req != NULL || d != NULL)
			abort();
		return 0;
	}
	if (req == NULL || !json_is_object(d) || cas < -1)
		abort();
	if ((pt = json_dumps(d, JSON_COMPACT)) == NULL)
		abort();
	free(pt);
	json_decref(req);
	return 0;
}
