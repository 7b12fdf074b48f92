/* Fuzzes the issuer's kubelet pod-list lookup with arbitrary JSON: an
 * identified workload always has valid names and sorted, unique, valid
 * image digests with the sidecar left out. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "issuer/config.h"
#include "issuer/resolve.h"
#include "tsi/err.h"
#include "tsi/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID "c5db4e65cf90b61747fa2bf1b37295a021bb47b46fedd8263c85736f17668f0d"
static char sidecar[] =
    "sha256:2c758e98d175d61c757efc1ab35d10c954167294462fb00c6d26c148df4c7580";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	char *sidecars[] = { sidecar };
	struct tsi_workload *w = NULL;
	json_t *j;
	size_t i;

	if (!init) {
		tsi_log_init("fuzz_podlist", TSI_LOG_ERROR);
		init = 1;
	}
	if ((j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
	         NULL)) == NULL)
		return 0;
	if (tsi_kubelet_pod_lookup(j, ID, sidecars, 1, NULL, &w) == TSI_OK) {
		if (w->namespace == NULL || w->pod == NULL ||
		    w->service_account == NULL)
			abort();
		for (i = 0; i < w->n_images; i++) {
			if (!tsi_issuer_is_digest(w->images[i]) ||
			    strcmp(w->images[i], sidecar) == 0)
				abort();
			if (i > 0 &&
			    strcmp(w->images[i - 1], w->images[i]) >= 0)
				abort();
		}
		tsi_workload_free(w);
	}
	json_decref(j);
	return 0;
}
