/* Fuzzes TSI_SECRETS (the tsi.secrets annotation as the sidecar reads it):
 * whatever parses must keep every destination under the destination dir. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/sidecar.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsi_sidecar_spec *spec = NULL;
	char err[256];
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (tsi_sidecar_spec_parse("TSI_SECRETS", text, size, "/secrets", &spec,
	        err, sizeof(err)) == TSI_OK)
		tsi_sidecar_spec_free(spec);
	else if (err[0] == '\0')
		abort(); /* every refusal says why */
	free(text);
	return 0;
}
