/*
 * mounts.h - the paths of tsi-vault's routes that policies speak of, and
 * the capabilities checked under each (mounts.c). Its own small library
 * (tsi-vault-mounts) so that every program that reads tsi-vault policies
 * (tsi-vault, `tsi policy check`, the policy bench and tests) checks them
 * against the same mounts; the policy library itself names none.
 */
#ifndef TSI_VAULT_MOUNTS_H
#define TSI_VAULT_MOUNTS_H

#include <stddef.h>

#include "tsi/policy.h"

/* The table (static); *n its length. */
const struct tsi_policy_mount *vault_policy_mounts(size_t *n);
/* tsi_policy_mounts_set with the table: once at start-up, before any
 * policy is loaded. */
void vault_policy_mounts_register(void);

#endif /* TSI_VAULT_MOUNTS_H */
