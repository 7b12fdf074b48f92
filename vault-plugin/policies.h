/*
 * policies.h - the policy set at start-up and on reload, the last good set
 * (policies.c).
 */
#ifndef TSI_VAULT_POLICIES_H
#define TSI_VAULT_POLICIES_H

#include <stddef.h>

#include "tsi/policy.h"

struct vault;

/* Start-up: loads policy_dir into v->policy (NULL when there is none). When
 * it does not load, or drops rules compared with the last good set kept in
 * data_dir, that set is put in force instead (logged at error level, the
 * stale gauge set). TSI_OK, or the loader's error with "file:line: reason"
 * in err when there is no last good set. Only reads: call before data_dir
 * is created. */
int vault_policy_start(struct vault *v, char *err, size_t errlen);
/* SIGHUP: loads policy_dir and checks it against the set in force. *out:
 * the new set for the caller to swap in (it owns it), or NULL. Returns 1
 * when nothing was refused, 0 when the set in force must stay (logged,
 * counted, stale gauge set). */
int vault_policy_prepare(struct vault *v, struct tsi_policy_set **out);
/* Keeps the set in force as the last good set in data_dir. from_dir: it was
 * just loaded from policy_dir (clears the stale gauge); otherwise nothing is
 * written while the set in force is the last good copy itself. */
void vault_policy_keep(struct vault *v, int from_dir);

#endif /* TSI_VAULT_POLICIES_H */
