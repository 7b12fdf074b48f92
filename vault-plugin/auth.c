/*
 * auth.c - POST /v1/auth/trusted-identity/login {"role", "jwt"}.
 *
 * The JWT is verified by the token core (tsi_jwt_verify: ES256 only, x5c to a
 * configured CA, times, audience, location bound in the node certificate),
 * then the role's bound claims are checked by the policy engine
 * (tsi_policy_login). Only then is a token made, carrying the verified claims,
 * the role and the certificate path the JWT came through (so that revoking
 * a certificate of it, or dropping its CA, ends the token: tokens.c); its
 * lifetime is the role's token_ttl, never past the JWT's own exp (the
 * expiry is the smaller of the two instants, not a duration measured
 * twice). The answer has Vault's auth shape, so Vault clients log in
 * unchanged. Failures say "permission denied" and nothing more; the reason
 * goes to the audit record and the log.
 */
#include "vault.h"
#include "routes.h"
#include "settings.h"
#include "login_limit.h"
#include "metrics.h"
#include "parse.h"
#include "auditlog.h"
#include "http.h"
#include "tokens.h"
#include "auth.h"
#include "login_wire.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/jwt.h"
#include "tsi/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * What a refused JWT says about its caller, for the audit record only:
 * the claims an auditor asks about (who, where, what), never verified and
 * so kept apart from "claims" (which filters and indexes trust) under
 * "claims_unverified". Bounded: these names only, strings cut at
 * UNVERIFIED_STR_MAX bytes (a cut that splits UTF-8 drops the value), at
 * most UNVERIFIED_IMAGES images; anything else in the token is left out,
 * so no secret a forged token carries reaches the log.
 */
#define UNVERIFIED_STR_MAX 160
#define UNVERIFIED_IMAGES 4

static json_t *
unverified_value(const json_t *v)
{
	json_t *arr;
	size_t i;

	if (json_is_string(v))
		return json_stringn(json_string_value(v),
		    json_string_length(v) < UNVERIFIED_STR_MAX
		        ? json_string_length(v)
		        : UNVERIFIED_STR_MAX);
	if (json_is_integer(v))
		return json_integer(json_integer_value(v));
	if (!json_is_array(v) || (arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < json_array_size(v) && i < UNVERIFIED_IMAGES; i++) {
		json_t *e = json_array_get(v, i);

		if (json_is_string(e))
			json_array_append_new(arr, unverified_value(e));
	}
	return arr;
}

static json_t *
unverified_claims(const char *jwt)
{
	static const char *const keep[] = { "sub", "iss", "exp", "jti",
		"cluster-name", "datacenter", "region", "node", "namespace",
		"pod", "service-account", "images" };
	json_t *hdr = NULL, *cl = NULL, *out = NULL, *v;
	size_t i;

	if (jwt == NULL || tsi_jwt_decode_unverified(jwt, &hdr, &cl) != TSI_OK)
		goto done;
	if ((out = json_object()) == NULL)
		goto done;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if ((v = unverified_value(json_object_get(cl, keep[i]))) !=
		    NULL)
			json_object_set_new(out, keep[i], v);
	if ((v = unverified_value(json_object_get(hdr, "kid"))) != NULL &&
	    json_is_string(v))
		json_object_set_new(out, "kid", v);
	else
		json_decref(v);
done:
	json_decref(hdr);
	json_decref(cl);
	return out;
}

/* A role name longer than this is read by the general parser. */
#define ROLE_COPY_MAX 256

/*
 * The login body's role and jwt as C strings. The plain body (nearly every
 * one) is scanned in place and copied (*jwtcopy: tsi_freezero, jwtlen + 1
 * bytes); any other is read by vault_login_parse (*req: json_decref, role
 * and jwt point into it).
 */
static int
login_body(const struct tsi_buf *body, char rolebuf[ROLE_COPY_MAX],
    json_t **req, char **jwtcopy, size_t *jwtlen, const char **role,
    const char **jwt)
{
	struct vault_login_body lb;

	if (vault_login_body_scan((const char *)tsi_buf_ptr(body),
	        tsi_buf_len(body), &lb) == TSI_OK &&
	    lb.rolelen < ROLE_COPY_MAX) {
		if ((*jwtcopy = malloc(lb.jwtlen + 1)) == NULL)
			return TSI_ERR_ALLOC;
		memcpy(*jwtcopy, lb.jwt, lb.jwtlen);
		(*jwtcopy)[lb.jwtlen] = '\0';
		*jwtlen = lb.jwtlen;
		memcpy(rolebuf, lb.role, lb.rolelen);
		rolebuf[lb.rolelen] = '\0';
		*role = rolebuf;
		*jwt = *jwtcopy;
		return TSI_OK;
	}
	return vault_login_parse((const char *)tsi_buf_ptr(body),
	    tsi_buf_len(body), req, role, jwt);
}

void
vault_login_decide_claims(const struct tsi_policy_set *p, const char *role,
    const json_t *claims, time_t now, struct vault_login_decision *d)
{
	json_t *jexp;
	long ttl = 0;
	int rc;

	d->allow = 0;
	d->status = 403;
	memset(&d->d, 0, sizeof(d->d));
	if (p == NULL) {
		rc = TSI_ERR_NOT_FOUND;
		snprintf(d->d.rule, sizeof(d->d.rule), "default-deny");
		snprintf(d->d.reason, sizeof(d->d.reason), "no policy loaded");
	} else
		rc = tsi_policy_login(p, role, claims, &ttl, &d->d);
	d->rule = d->d.rule;
	snprintf(d->reason, sizeof(d->reason), "role '%s': %s", role,
	    d->d.reason);
	if (rc != TSI_OK)
		return;
	/* Never outlive the JWT that proved the identity: the token ends at
	 * exp at the latest (an instant, so no second is lost between
	 * measuring and storing). A JWT accepted within the clock skew after
	 * its exp would give a token dead on arrival: refused instead. */
	jexp = json_object_get(claims, "exp");
	d->expires_at =
	    json_is_integer(jexp) ? (time_t)json_integer_value(jexp) : 0;
	if (d->expires_at <= now) {
		d->rule = "jwt";
		snprintf(d->reason, sizeof(d->reason),
		    "jwt expires before a "
		    "token could be used");
		return;
	}
	if (ttl <= 0 || ttl > d->expires_at - now)
		ttl = (long)(d->expires_at - now);
	d->ttl = ttl;
	d->rules = tsi_policy_role_rules(p, role, &d->nrules);
	if (d->rules == NULL)
		d->nrules = 0;
	d->allow = 1;
	d->status = 200;
}

void
vault_login_decide(const struct tsi_trust *trust, const char *audience,
    const struct tsi_policy_set *p, const char *role, const char *jwt,
    time_t now, struct vault_login_decision *d)
{
	struct tsi_verify_opts vo;
	int rc;

	memset(d, 0, sizeof(*d));
	memset(&vo, 0, sizeof(vo));
	vo.audience = audience;
	vo.now = now;
	vo.skew = -1;
	if (trust == NULL) {
		rc = TSI_ERR_BAD_TOKEN;
		snprintf(d->vr.detail, sizeof(d->vr.detail),
		    "no trusted CA configured");
	} else
		rc = tsi_jwt_verify(trust, jwt, &vo, &d->claims, &d->vr);
	if (rc != TSI_OK) {
		json_decref(
		    d->claims); /* nothing of a refused JWT is trusted */
		d->claims = NULL;
		d->status = 403;
		d->rule = "jwt";
		snprintf(d->reason, sizeof(d->reason), "jwt refused: %s: %s",
		    tsi_jwt_reason_name(d->vr.reason), d->vr.detail);
		d->unverified = unverified_claims(jwt);
		return;
	}
	vault_login_decide_claims(p, role, d->claims, now, d);
}

void
vault_login_decision_clear(struct vault_login_decision *d)
{
	json_decref(d->claims);
	json_decref(d->unverified);
	memset(d, 0, sizeof(*d));
}

/* Before any JWT work: 0 to go on, or the 429 of a source over its
 * failed-login limit (its refusals are recorded together when its window
 * ends). */
static int
throttled(struct vault_request *r)
{
	int first = 0;
	unsigned wait;

	vault_audit_throttled(r);
	wait = vault_limiter_check(r->v->login_limit, r->remote, time(NULL),
	    &first);
	if (wait == 0)
		return 0;
	__atomic_fetch_add(&r->v->metrics.login_throttled, 1, __ATOMIC_RELAXED);
	if (first)
		tsi_log(TSI_LOG_WARN, "auth.throttled",
		    TSI_LS("remote", r->remote), TSI_LI("retry_after", wait));
	r->ans->retry_after = wait;
	vault_respond_error(r, 429, "too many failed logins; retry later");
	return 1;
}

/* A refused login: counted against its source, logged, recorded, 403. */
static int
login_denied(struct vault_request *r, struct vault_audit_rec *a,
    const char *role)
{
	vault_limiter_fail(r->v->login_limit, r->remote, time(NULL));
	tsi_log(TSI_LOG_INFO, "auth.denied",
	    TSI_LS("request_id", r->request_id), TSI_LS("role", role),
	    TSI_LS("reason", a->reason), TSI_LS("remote", r->remote));
	if (vault_audit(r, a) != TSI_OK)
		return vault_respond_audit_failed(r);
	return vault_respond_error(r, a->status, "permission denied");
}

/* Vault's auth answer with the new token (a secret: wiped with the
 * answer), and the login's latency. */
static int
login_answer(struct vault_request *r, const struct vault_login_decision *d,
    const char *token, const char *accessor)
{
	struct vault_login_answer la;
	struct timespec t1;
	char *text;
	int ret;

	memset(&la, 0, sizeof(la));
	la.request_id = r->request_id;
	la.token = token;
	la.accessor = accessor;
	la.rules = d->rules;
	la.nrules = d->nrules;
	la.claims = d->claims;
	la.ttl = d->ttl;
	if ((text = vault_login_answer_text(&la)) == NULL)
		ret = vault_respond_error(r, 500, "internal error");
	else
		ret = vault_respond_text(r, 200, "application/json", text);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	vault_metrics_observe(&r->v->metrics.login,
	    (long long)(t1.tv_sec - r->t0.tv_sec) * 1000000 +
	        (t1.tv_nsec - r->t0.tv_nsec) / 1000);
	return ret;
}

/* The token of an allowed login, recorded, then the answer. trust: the
 * trust the JWT was verified against (a reload may have swapped it). */
static int
login_issue(struct vault_request *r, struct vault_audit_rec *a,
    const char *role, struct vault_login_decision *d,
    const struct vault_trust *trust)
{
	struct vault_token_spec spec;
	struct vault_trust *now_trust = NULL;
	char accessor[VAULT_ACCESSOR_LEN + 1] = "";
	char *token = NULL;
	json_t *policies;
	size_t i;
	int rc, ret;

	if ((policies = json_array()) == NULL)
		return vault_respond_error(r, 500, "internal error");
	for (i = 0; i < d->nrules; i++)
		json_array_append_new(policies, json_string(d->rules[i]));
	memset(&spec, 0, sizeof(spec));
	spec.role = role;
	spec.claims = d->claims;
	spec.policies = policies;
	spec.ttl = d->ttl;
	spec.expires_at = d->expires_at;
	spec.chain = d->vr.chain;
	spec.nchain = d->vr.chain_len;
	rc = vault_tokens_add(r->v->tokens, &spec, &token, accessor);
	json_decref(policies);
	/* A reload that swapped the trust since the JWT was verified may
	 * already have swept the table: check the new token against the trust
	 * of now (the sweep of any later reload sees the token). */
	if (rc == TSI_OK && (now_trust = vault_trust_get(r->v)) != trust &&
	    vault_tokens_chain_check(r->v->tokens, token,
	        now_trust != NULL ? now_trust->trust : NULL) != TSI_OK) {
		vault_tokens_revoke(r->v->tokens, token);
		a->rule = "jwt";
		a->reason = "jwt refused: its certificate path is no longer "
		            "trusted (reloaded during the login)";
		a->status = 403;
		ret = login_denied(r, a, role);
		goto out;
	}
	if (rc != TSI_OK) {
		a->decision = "error";
		a->reason = "token table full";
		a->status = 503;
		ret = vault_audit(r, a) != TSI_OK
		    ? vault_respond_audit_failed(r)
		    : vault_respond_error(r, 503, "cannot issue a token now");
		goto out;
	}
	a->decision = "allow";
	a->accessor = accessor;
	a->status = 200;
	if (vault_audit(r, a) != TSI_OK) {
		/* The token is in the table but was never handed out: it
		 * expires unused. */
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "auth.login", TSI_LS("request_id", r->request_id),
	    TSI_LS("role", role), TSI_LS("accessor", accessor),
	    TSI_LS("sub", json_string_value(json_object_get(d->claims, "sub"))),
	    TSI_LI("ttl", d->ttl));
	ret = login_answer(r, d, token, accessor);
out:
	vault_trust_put(r->v, now_trust);
	tsi_strfree(token);
	return ret;
}

/* The login body refused: recorded, 400. */
static int
login_malformed(struct vault_request *r, struct vault_audit_rec *a)
{
	vault_limiter_fail(r->v->login_limit, r->remote, time(NULL));
	a->decision = "error";
	a->reason = "malformed login request";
	a->status = 400;
	if (vault_audit(r, a) != TSI_OK)
		return vault_respond_audit_failed(r);
	return vault_respond_error(r, 400,
	    "login request must be a JSON object with \"role\" and \"jwt\"");
}

/* Wipes and frees what login_body made. */
static void
login_body_free(json_t *req, char *jwtcopy, size_t jwtlen)
{
	tsi_freezero(jwtcopy, jwtlen + 1);
	if (req != NULL) {
		/* The request held the JWT: wipe it before freeing. */
		json_t *j = json_object_get(req, "jwt");
		if (json_is_string(j))
			explicit_bzero((char *)json_string_value(j),
			    json_string_length(j));
		json_decref(req);
	}
}

int
vault_auth_login(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	struct vault_login_decision d;
	struct vault_trust *trust = NULL;
	struct tsi_policy_set *p = NULL;
	struct vault_audit_rec a;
	json_t *req = NULL, *extra = NULL;
	const char *role = NULL, *jwt = NULL;
	char rolebuf[ROLE_COPY_MAX], *jwtcopy = NULL;
	size_t jwtlen = 0;
	int ret, rc;

	memset(&d, 0, sizeof(d));
	if (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	if (throttled(r))
		return TSI_OK;
	memset(&a, 0, sizeof(a));
	a.op = "login";
	a.path = r->path;
	a.decision = "deny";
	a.rule = "";
	rc = login_body(r->body, rolebuf, &req, &jwtcopy, &jwtlen, &role, &jwt);
	if (rc != TSI_OK) {
		ret = rc == TSI_ERR_ALLOC
		    ? vault_respond_error(r, 500, "internal error")
		    : login_malformed(r, &a);
		goto out;
	}
	/* The role asked for, in every record of this login (bounded: a
	 * role cut inside a UTF-8 sequence is left out). */
	if ((extra = json_object()) == NULL) {
		ret = vault_respond_error(r, 500, "internal error");
		goto out;
	}
	if (role != NULL) {
		json_t *jr = json_stringn(role, strnlen(role, 128));

		if (jr != NULL)
			json_object_set_new(extra, "role", jr);
	}
	a.extra = extra;
	trust = vault_trust_get(r->v);
	p = vault_policy_get(r->v);
	vault_login_decide(trust != NULL ? trust->trust : NULL,
	    r->v->set->audience, p, role, jwt, time(NULL), &d);
	a.claims = d.claims;
	a.rule = d.rule;
	a.reason = d.reason;
	if (d.unverified != NULL) {
		json_object_set_new(extra, "claims_unverified", d.unverified);
		d.unverified = NULL;
	}
	if (!d.allow) {
		a.status = d.status;
		ret = login_denied(r, &a, role);
		goto out;
	}
	ret = login_issue(r, &a, role, &d, trust);
out:
	vault_trust_put(r->v, trust);
	tsi_policy_unref(p);
	vault_login_decision_clear(&d);
	json_decref(extra);
	login_body_free(req, jwtcopy, jwtlen);
	return ret;
}
