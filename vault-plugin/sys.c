/*
 * sys.c - GET /v1/sys/health (Vault's shape) and the caller's own token:
 * GET /v1/auth/token/lookup-self (what Vault clients call to check a token),
 * POST|PUT /v1/auth/token/renew-self (refused: tokens are not renewable,
 * as login says), POST|PUT /v1/auth/token/revoke-self (the token stops
 * working at once). Renew and revoke are audited like logins.
 */
#include "vault.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <string.h>

enum MHD_Result
vault_sys_health(struct vault_req *r)
{
	struct tsi_audit_status st;
	json_t *body;
	unsigned status = 200;

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	memset(&st, 0, sizeof(st));
	tsi_audit_status(r->v->audit, &st);
	body = json_pack("{sbsbsbsbsssssIsssssssIsb}",
	    "initialized", 1, "sealed", 0, "standby", 0,
	    "performance_standby", 0,
	    "replication_performance_mode", "disabled",
	    "replication_dr_mode", "disabled",
	    "server_time_utc", (json_int_t)time(NULL),
	    "version", TSI_VERSION,
	    "cluster_name", r->v->set->cluster_name,
	    "cluster_id", r->v->cluster_id,
	    "uptime_seconds", (json_int_t)(time(NULL) - r->v->started),
	    "audit_healthy", st.healthy != 0);
	if (body != NULL && !st.healthy) {
		/* Nothing can be released while audit fails: say so. */
		status = 503;
		json_object_set_new(body, "errors", json_pack("[s]",
		    "audit log unavailable"));
		json_object_set_new(body, "audit_error",
		    json_string(st.last_error[0] ? st.last_error : "unhealthy"));
	}
	if (body != NULL)
		json_object_set_new(body, "audit_queue_depth",
		    json_integer((json_int_t)st.queue_depth));
	/* Hostile load is reported, not failed: legitimate callers are
	 * still served while these hold. */
	vault_audit_throttled(r);
	if (body != NULL) {
		json_t *w = json_array();
		size_t thr = vault_limiter_throttled(r->v->login_limit,
		    time(NULL));

		if (thr > 0)
			json_array_append_new(w, json_pack("{sssI}", "reason",
			    "login_throttled", "sources", (json_int_t)thr));
		if (st.reserve_in_use)
			json_array_append_new(w, json_pack("{sssIsI}", "reason",
			    "audit_reserve_in_use", "free_bytes",
			    (json_int_t)st.free_bytes, "reserve_bytes",
			    (json_int_t)st.reserve_bytes));
		if (st.retention_held)
			json_array_append_new(w, json_pack("{ss}", "reason",
			    "audit_retention_held"));
		json_object_set_new(body, "audit_free_bytes",
		    json_integer((json_int_t)st.free_bytes));
		json_object_set_new(body, "warnings", w);
	}
	return vault_respond(r, status, body);
}

enum MHD_Result
vault_token_lookup_self(struct vault_req *r)
{
	const char *reason;
	json_t *data;

	/* Vault takes both (hvac GETs, the CLI may POST). */
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "POST") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	if (vault_req_auth(r, &reason) != TSI_OK)
		return vault_respond_error(r, 403, "permission denied");
	if ((data = vault_token_lookup_data(&r->tok, vault_req_token(r))) ==
	    NULL)
		return vault_respond_error(r, 500, "internal error");
	return vault_respond(r, 200, vault_envelope(r, data, NULL));
}

static int
post_or_put(const struct vault_req *r)
{
	return strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0;
}

/* Audits a, then answers status with msg (503 when the record fails). */
static enum MHD_Result
audited_error(struct vault_req *r, struct vault_audit_rec *a,
    const char *decision, const char *rule, const char *reason,
    unsigned status, const char *msg)
{
	a->decision = decision;
	a->rule = rule;
	a->reason = reason;
	a->status = status;
	if (vault_audit(r, a) != TSI_OK)
		return vault_respond_audit_failed(r);
	return vault_respond_error(r, status, msg);
}

/*
 * The start of a token's request about itself: the record for op on the
 * request's path, and the caller's token checked. TSI_OK: a holds the
 * token's claims and accessor. Otherwise the refusal has been audited and
 * answered (403) into *ret.
 */
static int
token_self_begin(struct vault_req *r, struct vault_audit_rec *a,
    const char *op, enum MHD_Result *ret)
{
	const char *reason;

	memset(a, 0, sizeof(*a));
	a->op = op;
	a->path = r->path;
	if (vault_req_auth(r, &reason) != TSI_OK) {
		*ret = audited_error(r, a, "deny", "token", reason, 403,
		    "permission denied");
		return TSI_ERR_DENIED;
	}
	a->claims = r->tok.claims;
	a->accessor = r->tok.accessor;
	return TSI_OK;
}

/*
 * The record is durable before the token is removed: when it cannot be
 * written the answer is 503 and the token keeps working (nothing changed
 * unrecorded). Once 204 is sent, every request with the token gets the
 * ordinary 403, as for an unknown token. The root token may revoke itself
 * too (as in Vault); root_token_file brings it back at the next start.
 */
static enum MHD_Result
token_revoke_self(struct vault_req *r)
{
	struct vault_audit_rec a;
	enum MHD_Result ret;
	int rc;

	if (token_self_begin(r, &a, "revoke", &ret) != TSI_OK)
		return ret;
	a.decision = "allow";
	a.rule = "self";
	a.reason = "token revoked by its holder";
	a.status = 204;
	if (vault_audit(r, &a) != TSI_OK)
		return vault_respond_audit_failed(r);
	/* Not there any more (expired and swept, or revoked by a request of
	 * its own meanwhile): revoked all the same. */
	rc = vault_tokens_revoke(r->v->tokens, vault_req_token(r));
	tsi_log(TSI_LOG_INFO, "token.revoked", TSI_LS("request_id",
	    r->request_id), TSI_LS("accessor", r->tok.accessor),
	    TSI_LS("role", r->tok.role), TSI_LI("present", rc == TSI_OK));
	return vault_respond(r, 204, NULL);
}

/* Login answers "renewable": false: a renewal is refused as Vault refuses
 * it for such a token (400, "lease is not renewable"); the workload logs in
 * again with a fresh JWT instead. */
static enum MHD_Result
token_renew_self(struct vault_req *r)
{
	struct vault_audit_rec a;
	enum MHD_Result ret;

	if (token_self_begin(r, &a, "renew", &ret) != TSI_OK)
		return ret;
	return audited_error(r, &a, "deny", "not-renewable",
	    "tokens are not renewable: log in again", 400,
	    "lease is not renewable");
}

enum MHD_Result
vault_token_self(struct vault_req *r)
{
	if (strcmp(r->path, "auth/token/lookup-self") == 0)
		return vault_token_lookup_self(r);
	if (!post_or_put(r))
		return vault_respond_error(r, 405, "method not allowed");
	if (strcmp(r->path, "auth/token/revoke-self") == 0)
		return token_revoke_self(r);
	return token_renew_self(r);
}
