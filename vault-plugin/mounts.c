/*
 * mounts.c - the policy side of the route table (routes.c): which path
 * prefixes a rule may name and which capabilities are checked under each.
 * Every prefix here is served by a row of routes.c (test_routes.c checks
 * it); a route a policy does not speak of (login, sys/health, the token's
 * own endpoints) has none.
 */
#include "mounts.h"

static const struct tsi_policy_mount mounts[] = {
	{ "secret/data/",
	    TSI_CAP_CREATE | TSI_CAP_READ | TSI_CAP_UPDATE | TSI_CAP_DELETE |
	        TSI_CAP_PATCH },
	{ "secret/metadata/",
	    TSI_CAP_CREATE | TSI_CAP_READ | TSI_CAP_UPDATE | TSI_CAP_LIST |
	        TSI_CAP_DELETE | TSI_CAP_PATCH },
	/* Vault's version operations: update on each of them. */
	{ "secret/delete/", TSI_CAP_UPDATE },
	{ "secret/undelete/", TSI_CAP_UPDATE },
	{ "secret/destroy/", TSI_CAP_UPDATE },
	{ "secret/subkeys/", TSI_CAP_READ },
	{ "secret/config", TSI_CAP_READ | TSI_CAP_UPDATE },
	{ "sys/audit/", TSI_CAP_AUDIT },
};

const struct tsi_policy_mount *
vault_policy_mounts(size_t *n)
{
	*n = sizeof(mounts) / sizeof(mounts[0]);
	return mounts;
}

void
vault_policy_mounts_register(void)
{
	size_t n;
	const struct tsi_policy_mount *m = vault_policy_mounts(&n);

	tsi_policy_mounts_set(m, n);
}
