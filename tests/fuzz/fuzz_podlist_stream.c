/* Fuzzes the issuer's streaming pod-list reader against jansson reading the
 * whole text: the input is cut into pieces whose sizes come from its first
 * bytes. Whatever the stream accepts, jansson accepts as a pod list too,
 * and every lookup gives the same answer on the kept fields as on the
 * whole list; what jansson accepts as a pod list, the stream accepts unless
 * a bound of its own (key length, nesting) says TSI_ERR_TOO_LARGE. */
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

static const char *const ids[] = {
	"c5db4e65cf90b61747fa2bf1b37295a021bb47b46fedd8263c85736f17668f0d",
	"5e9ccdcb49b7d3447e11f726fda63d1a428a1cbf2a5daa8768ec751bbdf8630b",
	"5f148eb03ef10a862e575a6ac16c8e18ebb61bcd9d94b6930219a08136368f49",
	"a",
	NULL,
};
static char sidecar[] =
    "sha256:2c758e98d175d61c757efc1ab35d10c954167294462fb00c6d26c148df4c7580";

static int
is_podlist(const json_t *j)
{
	const json_t *items = json_object_get(j, "items"), *pod;
	size_t i;

	if (!json_is_object(j) || !json_is_array(items))
		return 0;
	json_array_foreach (items, i, pod)
		if (!json_is_object(pod))
			return 0;
	return 1;
}

static void
same_workload(const struct tsi_workload *a, const struct tsi_workload *b)
{
	size_t i;

	if (strcmp(a->namespace, b->namespace) != 0 ||
	    strcmp(a->pod, b->pod) != 0 ||
	    strcmp(a->service_account, b->service_account) != 0 ||
	    strcmp(a->container, b->container) != 0 ||
	    a->n_images != b->n_images || a->n_image_names != b->n_image_names)
		abort();
	for (i = 0; i < a->n_images; i++)
		if (strcmp(a->images[i], b->images[i]) != 0)
			abort();
	for (i = 0; i < a->n_image_names; i++)
		if (strcmp(a->image_names[i], b->image_names[i]) != 0)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	char *sidecars[] = { sidecar };
	struct tsi_podlist_parser *p = NULL;
	json_t *full, *kept = NULL;
	size_t step, off, n, i;
	int r;

	if (!init) {
		tsi_log_init("fuzz_podlist_stream", TSI_LOG_ERROR);
		init = 1;
	}
	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	if (tsi_podlist_parser_new(&p) != TSI_OK)
		return 0;
	r = TSI_OK;
	for (off = 0; off < size && r == TSI_OK; off += n) {
		n = step < size - off ? step : size - off;
		r = tsi_podlist_parser_feed(p, (const char *)data + off, n);
	}
	if (r == TSI_OK)
		r = tsi_podlist_parser_finish(p, &kept);
	tsi_podlist_parser_free(p);
	full =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (r == TSI_OK) {
		if (full == NULL || !is_podlist(full))
			abort();
		for (i = 0; ids[i] != NULL; i++) {
			struct tsi_workload *a = NULL, *b = NULL;
			int ra = tsi_kubelet_pod_lookup(full, ids[i], sidecars,
			    1, NULL, &a);
			int rb = tsi_kubelet_pod_lookup(kept, ids[i], sidecars,
			    1, NULL, &b);
			if (ra != rb)
				abort();
			if (ra == TSI_OK)
				same_workload(a, b);
			tsi_workload_free(a);
			tsi_workload_free(b);
		}
	} else if (full != NULL && is_podlist(full) && r != TSI_ERR_TOO_LARGE &&
	    r != TSI_ERR_ALLOC)
		abort();
	json_decref(kept);
	json_decref(full);
	return 0;
}
