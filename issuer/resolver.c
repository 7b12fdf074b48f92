/*
 * resolver.c - the configured resolver (kubelet or unix), one entry point
 * for the API.
 */
#include "issuer/resolve.h"

#include "tsi/err.h"

#include <stdlib.h>

struct tsi_resolver {
	const struct tsi_issuer_config *cfg;
	struct tsi_kubelet *kubelet;
	struct tsi_exe_hasher *hasher;
};

int
tsi_resolver_new(const struct tsi_issuer_config *cfg, struct tsi_resolver **out)
{
	struct tsi_resolver *r;
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return TSI_ERR_ALLOC;
	r->cfg = cfg;
	if (cfg->resolver == TSI_RESOLVER_KUBELET &&
	    (rc = tsi_kubelet_new(cfg, &r->kubelet)) != TSI_OK) {
		free(r);
		return rc;
	}
	if (cfg->resolver == TSI_RESOLVER_UNIX &&
	    (rc = tsi_exe_hasher_new(cfg->max_exe_size, &r->hasher)) !=
	        TSI_OK) {
		free(r);
		return rc;
	}
	*out = r;
	return TSI_OK;
}

void
tsi_resolver_free(struct tsi_resolver *r)
{
	if (r == NULL)
		return;
	tsi_kubelet_free(r->kubelet);
	tsi_exe_hasher_free(r->hasher);
	free(r);
}

int
tsi_resolver_resolve(struct tsi_resolver *r, const struct tsi_peer *p,
    struct tsi_resolve_state *st, const struct tsi_wake *wake,
    struct tsi_workload **out)
{
	if (p->pid <= 0)
		return TSI_ERR_UNIDENTIFIED;
	if (r->cfg->resolver == TSI_RESOLVER_UNIX)
		return tsi_unix_resolve(r->cfg->proc_root, p->pid, p->uid, p,
		    r->hasher, st, wake, out);
	return tsi_kubelet_resolve_peer(r->kubelet, p, st, wake, out);
}

void
tsi_resolver_stop(struct tsi_resolver *r)
{
	if (r != NULL && r->hasher != NULL)
		tsi_exe_hasher_stop(r->hasher);
	if (r != NULL && r->kubelet != NULL)
		tsi_kubelet_stop(r->kubelet);
}
