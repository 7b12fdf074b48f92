/* Fuzzes tsi-vault's login body parser ({"role","jwt"}): it either refuses
 * the body or hands back two strings that live in the parsed object. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "vault.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *req = NULL;
	const char *role, *jwt;

	if (vault_login_parse((const char *)data, size, &req, &role, &jwt) !=
	    TSI_OK) {
		if (req != NULL)
			abort();
		return 0;
	}
	if (req == NULL || role == NULL || jwt == NULL ||
	    !json_is_object(req) ||
	    strcmp(role, json_string_value(json_object_get(req, "role"))) != 0 ||
	    strcmp(jwt, json_string_value(json_object_get(req, "jwt"))) != 0)
		abort();
	json_decref(req);
	return 0;
}
