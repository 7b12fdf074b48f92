/*
 * token_eval.c - what a token may do and how it is shown, for every
 * handler that takes a token (kv.c, audit_query.c, sys.c, token_admin.c):
 * the policy decision for a login or a created token, and Vault's lookup
 * data.
 */
#include "vault.h"
#include "http.h"
#include "tokens.h"
#include "token_eval.h"

#include "tsi/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int
vault_token_eval(const struct tsi_policy_set *p, const struct vault_token *tok,
    const char *path, int cap, struct tsi_decision *d)
{
	struct tsi_decision first;
	size_t i;
	int rc, have = 0;

	memset(d, 0, sizeof(*d));
	if (p == NULL) {
		snprintf(d->rule, sizeof(d->rule), "default-deny");
		snprintf(d->reason, sizeof(d->reason), "no policy loaded");
		return TSI_ERR_DENIED;
	}
	if (!tok->created)
		return tsi_policy_eval(p, tok->role, tok->claims, path, cap, d);
	/* A deny rule applies to every role alike, so one role's allow
	 * means no deny rule matched. */
	memset(&first, 0, sizeof(first));
	for (i = 0; i < json_array_size(tok->policies); i++) {
		const char *role =
		    json_string_value(json_array_get(tok->policies, i));
		if (role == NULL ||
		    tsi_policy_role_rules(p, role, NULL) == NULL)
			continue;
		rc = tsi_policy_eval(p, role, tok->claims, path, cap, d);
		if (rc == TSI_OK)
			return TSI_OK;
		if (!have) {
			first = *d;
			have = 1;
		}
	}
	if (have) {
		*d = first;
		return TSI_ERR_DENIED;
	}
	snprintf(d->rule, sizeof(d->rule), "default-deny");
	snprintf(d->reason, sizeof(d->reason),
	    "the token names no role of "
	    "the policy set");
	return TSI_ERR_DENIED;
}

/* RFC 3339 of a unix time, or JSON null for 0. */
static json_t *
time_or_null(time_t t)
{
	char buf[64];

	if (t == 0)
		return json_null();
	vault_time_str((long long)t * 1000000, buf, sizeof(buf));
	return json_string(buf);
}

json_t *
vault_token_lookup_data(const struct vault_token *t, const char *id)
{
	json_t *pol, *d;
	long ttl = t->expires ? (long)(t->expires - time(NULL)) : 0;

	if (ttl < 0)
		ttl = 0;
	pol = t->root && !t->created ? json_pack("[s]", "root")
	                             : json_incref(t->policies);
	d = json_pack("{sssIsIsssssos{}sIsssbsssosbsIsssssI}", "accessor",
	    t->accessor, "creation_time", (json_int_t)t->issued, "creation_ttl",
	    (json_int_t)(t->expires ? t->expires - t->issued : 0),
	    "display_name",
	    t->display_name[0] ? t->display_name
	                       : (t->root ? "root" : "trusted-identity"),
	    "entity_id", "", "expire_time", time_or_null(t->expires), "meta",
	    "explicit_max_ttl", (json_int_t)0, "id", id ? id : "", "orphan",
	    t->root && !t->created, "path",
	    t->created    ? "auth/token/create"
	        : t->root ? ""
	                  : "auth/trusted-identity/login",
	    "policies", pol, "renewable", 0, "ttl", (json_int_t)ttl, "type",
	    "service", "role", t->role, "num_uses", (json_int_t)0);
	if (d != NULL)
		json_object_set_new(d, "issue_time", time_or_null(t->issued));
	return d;
}
