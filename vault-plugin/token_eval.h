/*
 * token_eval.h - the policy decision for a token and Vault's view of it
 * (token_eval.c).
 */
#ifndef TSI_VAULT_TOKEN_EVAL_H
#define TSI_VAULT_TOKEN_EVAL_H

#include <jansson.h>

#include "tokens.h"
#include "tsi/policy.h"

/* Vault's lookup "data" for t; id: the token itself (NULL
 * when looked up by accessor: ""). Caller json_decref. */
json_t *vault_token_lookup_data(const struct vault_token *t, const char *id);
/* The policy decision for r's token (not root) on path:
 * a login token by its role; a created token by each of its roles (allowed
 * when one allows; a deny rule applies to every role alike). p may be
 * NULL (default deny). Same return as tsi_policy_eval. */
int vault_token_eval(const struct tsi_policy_set *p,
    const struct vault_token *tok, const char *path, int cap,
    struct tsi_decision *d);

#endif /* TSI_VAULT_TOKEN_EVAL_H */
