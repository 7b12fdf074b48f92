/* Fuzzes the /proc/<pid>/cgroup parser of the issuer: whatever it accepts
 * must yield 64 lower-case hex digits. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "issuer/resolve.h"
#include "tsi/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[65];
	size_t i;
	int r;

	memset(id, 'x', sizeof(id));
	r = tsi_cgroup_container_id((const char *)data, size, id);
	if (r == TSI_OK) {
		for (i = 0; i < 64; i++)
			if (!((id[i] >= '0' && id[i] <= '9') ||
			        (id[i] >= 'a' && id[i] <= 'f')))
				abort();
		if (id[64] != '\0')
			abort();
	} else if (r != TSI_ERR_NOT_FOUND && r != TSI_ERR_PARSE)
		abort();
	return 0;
}
