/*
 * auth.c - POST /v1/auth/trusted-identity/login {"role", "jwt"}.
 *
 * The JWT is verified by the token core (tsi_jwt_verify: ES256 only, x5c to a
 * configured CA, times, audience, location bound in the node certificate),
 * then the role's bound claims are checked by the policy engine
 * (tsi_policy_login). Only then is a token made, carrying the verified claims
 * and the role; its lifetime is the role's token_ttl, never past the JWT's
 * own exp. The answer has Vault's auth shape, so Vault clients log in
 * unchanged. Failures say "permission denied" and nothing more; the reason
 * goes to the audit record and the log.
 */
#include "vault.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Claims as Vault metadata: a map of strings. Arrays are joined with ",". */
static json_t *
claims_metadata(const json_t *claims)
{
	json_t *md = json_object(), *val, *e;
	const char *key;
	char num[32];
	size_t i;

	if (md == NULL)
		return NULL;
	json_object_foreach((json_t *)claims, key, val) {
		json_t *s = NULL;

		if (json_is_string(val))
			s = json_string(json_string_value(val));
		else if (json_is_integer(val)) {
			snprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(val));
			s = json_string(num);
		} else if (json_is_real(val)) {
			snprintf(num, sizeof(num), "%g", json_real_value(val));
			s = json_string(num);
		} else if (json_is_boolean(val))
			s = json_string(json_is_true(val) ? "true" : "false");
		else if (json_is_array(val)) {
			struct tsi_buf *b = tsi_buf_new(64 * 1024);
			int ok = b != NULL;
			json_array_foreach(val, i, e) {
				if (!ok)
					break;
				if (i > 0 && tsi_buf_puts(b, ",") != TSI_OK)
					ok = 0;
				if (ok && json_is_string(e) &&
				    tsi_buf_puts(b, json_string_value(e)) != TSI_OK)
					ok = 0;
			}
			if (ok)
				s = json_string(tsi_buf_str(b));
			tsi_buf_free(b);
		}
		if (s != NULL)
			json_object_set_new(md, key, s);
	}
	return md;
}

enum MHD_Result
vault_auth_login(struct vault_req *r)
{
	struct vault_trust *trust = NULL;
	struct tsi_policy_set *p = NULL;
	struct tsi_verify_opts vo;
	struct tsi_verify_result vr;
	struct tsi_decision d;
	struct vault_audit_rec a;
	json_t *req = NULL, *claims = NULL, *policies = NULL, *auth;
	const char *role = NULL, *jwt = NULL, *const *rules;
	char accessor[VAULT_ACCESSOR_LEN + 1] = "";
	char *token = NULL;
	char reason[320];
	long ttl = 0;
	size_t i, nrules;
	unsigned status;
	enum MHD_Result ret;
	struct timespec t1;
	int rc;

	if (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	memset(&a, 0, sizeof(a));
	a.op = "login";
	a.path = r->path;
	a.decision = "deny";
	a.rule = "";
	if (vault_login_parse((const char *)tsi_buf_ptr(r->body),
	    tsi_buf_len(r->body), &req, &role, &jwt) != TSI_OK) {
		a.decision = "error";
		a.reason = "malformed login request";
		a.status = status = 400;
		if (vault_audit(r, &a) != TSI_OK) {
			ret = vault_respond_audit_failed(r);
			goto out;
		}
		ret = vault_respond_error(r, 400,
		    "login request must be a JSON object with \"role\" and \"jwt\"");
		goto out;
	}

	memset(&vo, 0, sizeof(vo));
	memset(&vr, 0, sizeof(vr));
	vo.audience = r->v->set->audience;
	vo.skew = -1;
	trust = vault_trust_get(r->v);
	if (trust == NULL) {
		rc = TSI_ERR_BAD_TOKEN;
		snprintf(vr.detail, sizeof(vr.detail), "no trusted CA configured");
	} else
		rc = tsi_jwt_verify(trust->trust, jwt, &vo, &claims, &vr);
	vault_trust_put(r->v, trust);
	if (rc != TSI_OK) {
		snprintf(reason, sizeof(reason), "jwt refused: %s: %s",
		    tsi_jwt_reason_name(vr.reason), vr.detail);
		a.rule = "jwt";
		a.reason = reason;
		a.status = status = 403;
		goto denied;
	}
	a.claims = claims;

	p = vault_policy_get(r->v);
	memset(&d, 0, sizeof(d));
	if (p == NULL) {
		rc = TSI_ERR_NOT_FOUND;
		snprintf(d.rule, sizeof(d.rule), "default-deny");
		snprintf(d.reason, sizeof(d.reason), "no policy loaded");
	} else
		rc = tsi_policy_login(p, role, claims, &ttl, &d);
	a.rule = d.rule;
	if (rc != TSI_OK) {
		snprintf(reason, sizeof(reason), "role '%s': %s", role, d.reason);
		a.reason = reason;
		a.status = status = 403;
		goto denied;
	}
	/* Never outlive the JWT that proved the identity... */
	{
		json_t *exp = json_object_get(claims, "exp");
		long left = json_is_integer(exp) ?
		    (long)(json_integer_value(exp) - time(NULL)) : 0;
		if (ttl <= 0 || (left > 0 && ttl > left))
			ttl = left > 0 ? left : 1;
	}
	if ((policies = json_array()) == NULL) {
		ret = vault_respond_error(r, 500, "internal error");
		goto out;
	}
	rules = tsi_policy_role_rules(p, role, &nrules);
	for (i = 0; rules != NULL && i < nrules; i++)
		json_array_append_new(policies, json_string(rules[i]));
	rc = vault_tokens_create(r->v->tokens, NULL, role, claims, policies, ttl,
	    0, &token, accessor);
	if (rc != TSI_OK) {
		a.decision = "error";
		a.reason = "token table full";
		a.status = 503;
		if (vault_audit(r, &a) != TSI_OK) {
			ret = vault_respond_audit_failed(r);
			goto out;
		}
		ret = vault_respond_error(r, 503, "cannot issue a token now");
		goto out;
	}
	a.decision = "allow";
	a.accessor = accessor;
	snprintf(reason, sizeof(reason), "role '%s': %s", role, d.reason);
	a.reason = reason;
	a.status = 200;
	if (vault_audit(r, &a) != TSI_OK) {
		/* The token is in the table but was never handed out: it
		 * expires unused. */
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "auth.login", TSI_LS("request_id", r->request_id),
	    TSI_LS("role", role), TSI_LS("accessor", accessor),
	    TSI_LS("sub", json_string_value(json_object_get(claims, "sub"))),
	    TSI_LI("ttl", ttl));
	auth = json_pack("{sssssOsOsosIsbsssssn}", "client_token", token,
	    "accessor", accessor, "policies", policies, "token_policies",
	    policies, "metadata", claims_metadata(claims), "lease_duration",
	    (json_int_t)ttl, "renewable", 0, "entity_id", "", "token_type",
	    "service", "mfa_requirement");
	if (auth != NULL)
		json_object_set_new(auth, "orphan", json_true());
	ret = vault_respond(r, 200, vault_envelope(r, NULL, auth));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	vault_metrics_observe(&r->v->metrics.login,
	    (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - r->t0.tv_nsec) / 1000);
	goto out;

denied:
	tsi_log(TSI_LOG_INFO, "auth.denied", TSI_LS("request_id", r->request_id),
	    TSI_LS("role", role), TSI_LS("reason", a.reason),
	    TSI_LS("remote", r->remote));
	if (vault_audit(r, &a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	ret = vault_respond_error(r, status, "permission denied");
out:
	tsi_policy_unref(p);
	tsi_strfree(token);
	json_decref(policies);
	json_decref(claims);
	if (req != NULL) {
		/* The request held the JWT: wipe it before freeing. */
		json_t *j = json_object_get(req, "jwt");
		if (json_is_string(j))
			explicit_bzero((char *)json_string_value(j),
			    json_string_length(j));
		json_decref(req);
	}
	return ret;
}
