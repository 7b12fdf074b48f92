/*
 * sys.c - GET /v1/sys/health (Vault's shape) and
 * GET /v1/auth/token/lookup-self (what Vault clients call to check a token).
 */
#include "vault.h"

#include "tsi/err.h"

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
	return vault_respond(r, status, body);
}

enum MHD_Result
vault_token_lookup_self(struct vault_req *r)
{
	const char *reason;
	json_t *data, *pol;
	long ttl;

	if (strcmp(r->method, "GET") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	if (vault_req_auth(r, &reason) != TSI_OK)
		return vault_respond_error(r, 403, "permission denied");
	ttl = r->tok.expires ? (long)(r->tok.expires - time(NULL)) : 0;
	pol = r->tok.root ? json_pack("[s]", "root") : json_incref(r->tok.policies);
	data = json_pack("{sssosIsIsbssss}", "accessor", r->tok.accessor,
	    "policies", pol,
	    "ttl", (json_int_t)ttl, "creation_time", (json_int_t)r->tok.issued,
	    "renewable", 0, "role", r->tok.role, "type", "service");
	return vault_respond(r, 200, vault_envelope(r, data, NULL));
}
