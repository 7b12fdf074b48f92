/* Fuzzes tsi-vault's login body parser ({"role","jwt"}): it either refuses
 * the body or hands back two strings that live in the parsed object. The
 * plain-body scanner (login_wire.c) runs on the same bytes: whatever it
 * accepts, the parser accepts with the same two strings. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "vault.h"
#include "parse.h"
#include "login_wire.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vault_login_body lb;
	json_t *req = NULL;
	const char *role, *jwt;
	int fast;

	fast = vault_login_body_scan((const char *)data, size, &lb) == TSI_OK;
	if (vault_login_parse((const char *)data, size, &req, &role, &jwt) !=
	    TSI_OK) {
		if (req != NULL || fast)
			abort();
		return 0;
	}
	if (fast &&
	    (strlen(role) != lb.rolelen ||
	        memcmp(role, lb.role, lb.rolelen) != 0 ||
	        strlen(jwt) != lb.jwtlen ||
	        memcmp(jwt, lb.jwt, lb.jwtlen) != 0))
		abort();
	if (req == NULL || role == NULL || jwt == NULL ||
	    !json_is_object(req) ||
	    strcmp(role, json_string_value(json_object_get(req, "role"))) !=
	        0 ||
	    strcmp(jwt, json_string_value(json_object_get(req, "jwt"))) != 0)
		abort();
	json_decref(req);
	return 0;
}
