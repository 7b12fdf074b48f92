/* Fuzzes the libconfig-based program configuration loader and accessors. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsi/config.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "tcti", "socket", "token_ttl",
		"sidecar_images", NULL };
	struct tsi_config *c = NULL;
	char *text, err[256];
	const char *s, **list;
	long long v;
	size_t n;
	int b;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (tsi_config_load_string("fuzz.conf", text, &c, err, sizeof(err)) ==
	    TSI_OK) {
		(void)tsi_config_check_keys(c, allowed, err, sizeof(err));
		(void)tsi_config_str(c, "tcti", NULL, &s, err, sizeof(err));
		(void)tsi_config_int(c, "token_ttl", 300, 1, 3600, &v, err,
		    sizeof(err));
		(void)tsi_config_bool(c, "socket", 0, &b, err, sizeof(err));
		if (tsi_config_strlist(c, "sidecar_images", &list, &n, err,
		        sizeof(err)) == TSI_OK)
			free(list);
		tsi_config_free(c);
	}
	free(text);
	return 0;
}
