/* Fuzzes the strict base64url decoder and checks it round-trips. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/b64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = NULL;
	size_t outlen = 0;
	char *again = NULL;

	if (tsi_b64url_decode((const char *)data, size, &out, &outlen) ==
	    TSI_OK) {
		/* Strict decoding means the encoding is canonical. */
		if (tsi_b64url_encode(out, outlen, &again) != TSI_OK)
			abort();
		if (strlen(again) != size || memcmp(again, data, size) != 0)
			abort();
		free(again);
		tsi_freezero(out, outlen);
	}
	return 0;
}
