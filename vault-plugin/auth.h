/*
 * auth.h - the login decision (auth.c), apart from the request and the
 * answer: whether a JWT and a role give a token, and which. Pure: it
 * reads the trust store and the policy set it is given and the time it is
 * told, writes only the decision; vault_auth_login then records it,
 * makes the token and answers.
 */
#ifndef TSI_VAULT_AUTH_H
#define TSI_VAULT_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "tsi/jwt.h"
#include "tsi/policy.h"

struct vault_login_decision {
	int allow;                /* 1: issue a token */
	unsigned status;          /* the refusal's status (403) */
	const char *rule;         /* "jwt", or d.rule */
	char reason[320];         /* for the audit record and the log */
	struct tsi_decision d;    /* the policy engine's word */
	json_t *claims;           /* verified claims (owned); NULL when the
	                             * JWT was refused */
	json_t *unverified;       /* a refused JWT's claims for the record
	                             * (owned; may be NULL) */
	long ttl;                 /* seconds, never past the JWT's exp */
	time_t expires_at;        /* the JWT's exp */
	const char *const *rules; /* the role's rules, borrowed from the
	                             * policy set */
	size_t nrules;
	struct tsi_verify_result vr; /* the verified certificate path */
};

/*
 * The decision on verified claims (borrowed; d->claims is not set): the
 * role's bound claims (tsi_policy_login), its token_ttl capped at the
 * JWT's exp, and its rules. p NULL: no policy loaded, refused. Always
 * fills d.
 */
void vault_login_decide_claims(const struct tsi_policy_set *p, const char *role,
    const json_t *claims, time_t now, struct vault_login_decision *d);
/*
 * The whole decision: the JWT verified against trust (NULL: no CA, refused)
 * for audience, then vault_login_decide_claims. Everything borrowed for the
 * call but the rules (until p is released). Always fills d; release with
 * vault_login_decision_clear.
 */
void vault_login_decide(const struct tsi_trust *trust, const char *audience,
    const struct tsi_policy_set *p, const char *role, const char *jwt,
    time_t now, struct vault_login_decision *d);
void vault_login_decision_clear(struct vault_login_decision *d);

#endif /* TSI_VAULT_AUTH_H */
