/*
 * sys.c - GET /v1/sys/health (Vault's shape and query parameters), what
 * the vault CLI and client libraries probe (sys/seal-status, sys/init,
 * sys/leader, sys/mounts, sys/auth, sys/internal/ui/mounts/<path>: one
 * KV version 2 mount at secret/, never sealed, no HA) and the caller's own
 * token:
 * GET /v1/auth/token/lookup-self (what Vault clients call to check a token),
 * POST|PUT /v1/auth/token/renew-self (refused: tokens are not renewable,
 * as login says), POST|PUT /v1/auth/token/revoke-self (the token stops
 * working at once). Renew and revoke are audited like logins.
 */
#include "vault.h"
#include "routes.h"
#include "settings.h"
#include "login_limit.h"
#include "parse.h"
#include "auditlog.h"
#include "http.h"
#include "tokens.h"
#include "token_eval.h"

#include "tsi/audit.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * sys/health's query parameters as Vault reads them: the flags by Go's
 * ParseBool, the codes as integers (MHD sends 100..999). tsi-vault is
 * always initialized, unsealed and active, so activecode is the one code
 * used; the others and the flags are checked so that a typo is a 400, as
 * in Vault, rather than a silently ignored setting.
 */
static const char *const health_flags[] = { "standbyok", "perfstandbyok" };
static const char *const health_codes[] = { "activecode", "standbycode",
	"sealedcode", "uninitcode", "drsecondarycode", "performancestandbycode",
	"haunhealthycode", "removedcode" };

static int
health_params(struct vault_request *r, unsigned *active, char *msg,
    size_t msglen)
{
	char *v, *end;
	int bad = 0, b;
	long code;
	size_t i;

	for (i = 0; i < sizeof(health_flags) / sizeof(health_flags[0]); i++) {
		v = vault_query_arg(r, health_flags[i], &bad);
		if (bad || (v != NULL && vault_parse_bool(v, &b) != TSI_OK)) {
			free(v);
			snprintf(msg, msglen, "bad value for %s parameter",
			    health_flags[i]);
			return TSI_ERR_PARSE;
		}
		free(v);
	}
	for (i = 0; i < sizeof(health_codes) / sizeof(health_codes[0]); i++) {
		v = vault_query_arg(r, health_codes[i], &bad);
		if (v == NULL && !bad)
			continue;
		errno = 0;
		code = bad ? 0 : strtol(v, &end, 10);
		if (bad || *v == '\0' || *end != '\0' || errno != 0 ||
		    code < 100 || code > 999) {
			free(v);
			snprintf(msg, msglen, "unable to parse %s",
			    health_codes[i]);
			return TSI_ERR_PARSE;
		}
		free(v);
		if (i == 0)
			*active = (unsigned)code;
	}
	return TSI_OK;
}

int
vault_sys_health(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	struct tsi_audit_status st;
	json_t *body;
	unsigned status = 200;
	char msg[96];

	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	if (health_params(r, &status, msg, sizeof(msg)) != TSI_OK)
		return vault_respond_error(r, 400, msg);
	memset(&st, 0, sizeof(st));
	tsi_audit_status(r->v->audit, &st);
	body = json_pack("{sbsbsbsbsssssIsssssssIsb}", "initialized", 1,
	    "sealed", 0, "standby", 0, "performance_standby", 0,
	    "replication_performance_mode", "disabled", "replication_dr_mode",
	    "disabled", "server_time_utc", (json_int_t)time(NULL), "version",
	    TSI_VERSION, "cluster_name", r->v->set->cluster_name, "cluster_id",
	    r->v->cluster_id, "uptime_seconds",
	    (json_int_t)(time(NULL) - r->v->started), "audit_healthy",
	    st.healthy != 0);
	if (body != NULL && !st.healthy) {
		/* Nothing can be released while audit fails: say so. */
		status = 503;
		json_object_set_new(body, "errors",
		    json_pack("[s]", "audit log unavailable"));
		json_object_set_new(body, "audit_error",
		    json_string(
		        st.last_error[0] ? st.last_error : "unhealthy"));
	}
	if (body != NULL)
		json_object_set_new(body, "audit_queue_depth",
		    json_integer((json_int_t)st.queue_depth));
	/* Hostile load is reported, not failed: legitimate callers are
	 * still served while these hold. */
	vault_audit_throttled(r);
	if (body != NULL) {
		json_t *w = json_array();
		size_t thr =
		    vault_limiter_throttled(r->v->login_limit, time(NULL));

		if (thr > 0)
			json_array_append_new(w,
			    json_pack("{sssI}", "reason", "login_throttled",
			        "sources", (json_int_t)thr));
		if (st.reserve_in_use)
			json_array_append_new(w,
			    json_pack("{sssIsI}", "reason",
			        "audit_reserve_in_use", "free_bytes",
			        (json_int_t)st.free_bytes, "reserve_bytes",
			        (json_int_t)st.reserve_bytes));
		if (st.retention_held)
			json_array_append_new(w,
			    json_pack("{ss}", "reason",
			        "audit_retention_held"));
		json_object_set_new(body, "audit_free_bytes",
		    json_integer((json_int_t)st.free_bytes));
		json_object_set_new(body, "warnings", w);
	}
	return vault_respond(r, status, body);
}

static int
token_lookup_self(struct vault_request *r)
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
post_or_put(const struct vault_request *r)
{
	return strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0;
}

/* Audits a, then answers status with msg (503 when the record fails). */
static int
audited_error(struct vault_request *r, struct vault_audit_rec *a,
    const char *decision, const char *rule, const char *reason, unsigned status,
    const char *msg)
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
token_self_begin(struct vault_request *r, struct vault_audit_rec *a,
    const char *op, int *ret)
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
static int
token_revoke_self(struct vault_request *r)
{
	struct vault_audit_rec a;
	int ret;
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
	tsi_log(TSI_LOG_INFO, "token.revoked",
	    TSI_LS("request_id", r->request_id),
	    TSI_LS("accessor", r->tok.accessor), TSI_LS("role", r->tok.role),
	    TSI_LI("present", rc == TSI_OK));
	return vault_respond(r, 204, NULL);
}

/* Login answers "renewable": false: a renewal is refused as Vault refuses
 * it for such a token (400, "lease is not renewable"); the workload logs in
 * again with a fresh JWT instead. */
static int
token_renew_self(struct vault_request *r)
{
	struct vault_audit_rec a;
	int ret;

	if (token_self_begin(r, &a, "renew", &ret) != TSI_OK)
		return ret;
	return audited_error(r, &a, "deny", "not-renewable",
	    "tokens are not renewable: log in again", 400,
	    "lease is not renewable");
}

int
vault_token_self(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	if (strcmp(r->path, "auth/token/lookup-self") == 0)
		return token_lookup_self(r);
	if (!post_or_put(r))
		return vault_respond_error(r, 405, "method not allowed");
	if (strcmp(r->path, "auth/token/revoke-self") == 0)
		return token_revoke_self(r);
	return token_renew_self(r);
}

/* Vault's answer about a mount: one entry of sys/mounts, sys/auth or
 * sys/internal/ui/mounts. Accessors are stable per cluster (the cluster
 * id's first 8 hex digits) so a client caching them sees no change. */
static json_t *
mount_entry(struct vault_request *r, const char *type, const char *prefix,
    const char *desc, const char *version)
{
	char acc[64];
	int n;

	n = snprintf(acc, sizeof(acc), "%s_%.8s", prefix, r->v->cluster_id);
	if (n < 0 || (size_t)n >= sizeof(acc))
		return NULL;
	return json_pack("{sss{sIsbsI}sssbsbsosssssssbss}", "accessor", acc,
	    "config", "default_lease_ttl", (json_int_t)0, "force_no_cache", 0,
	    "max_lease_ttl", (json_int_t)0, "description", desc,
	    "external_entropy_access", 0, "local", 0, "options",
	    version != NULL ? json_pack("{ss}", "version", version)
	                    : json_null(),
	    "plugin_version", "", "running_plugin_version", "",
	    "running_sha256", "", "seal_wrap", 0, "type", type);
}

static json_t *
mount_secret(struct vault_request *r)
{
	return mount_entry(r, "kv", "kv", "key/value secret storage", "2");
}

static json_t *
mount_sys(struct vault_request *r)
{
	return mount_entry(r, "system", "system",
	    "system endpoints used for "
	    "control, policy and debugging",
	    NULL);
}

static json_t *
mount_jwt(struct vault_request *r)
{
	return mount_entry(r, "jwt", "auth_jwt",
	    "workload identity JWTs "
	    "(tsi-issuer)",
	    NULL);
}

static json_t *
mount_token(struct vault_request *r)
{
	return mount_entry(r, "token", "auth_token", "token based credentials",
	    NULL);
}

/* Vault's seal-status of an unsealed single node. */
static int
seal_status(struct vault_request *r)
{
	return vault_respond(r, 200,
	    json_pack("{sssbsbsisisisssssssbsssssssbsb}", "type", "shamir",
	        "initialized", 1, "sealed", 0, "t", 1, "n", 1, "progress", 0,
	        "nonce", "", "version", TSI_VERSION, "build_date", "",
	        "migration", 0, "cluster_name", r->v->set->cluster_name,
	        "cluster_id", r->v->cluster_id, "storage_type", "lmdb",
	        "recovery_seal", 0, "removed_from_cluster", 0));
}

/* A single node without HA: Vault's answer when ha_enabled is false. */
static int
leader(struct vault_request *r)
{
	return vault_respond(r, 200,
	    json_pack("{sbsbsssssssbsI}", "ha_enabled", 0, "is_self", 0,
	        "active_time", "0001-01-01T00:00:00Z", "leader_address", "",
	        "leader_cluster_address", "", "performance_standby", 0,
	        "performance_standby_last_remote_wal", (json_int_t)0));
}

/* sys/mounts and sys/auth: root tokens only (no policy rule can name
 * sys/), as Vault refuses a token without "read" there. Vault repeats the
 * table at the top level of the answer (older clients read it there). */
static int
mount_table(struct vault_request *r, int auth)
{
	const char *reason;
	json_t *data, *body;
	const char *k;
	json_t *v;

	if (vault_req_auth(r, &reason) != TSI_OK || !r->tok.root)
		return vault_respond_error(r, 403, "permission denied");
	if (auth)
		data = json_pack("{soso}", "token/", mount_token(r),
		    "trusted-identity/", mount_jwt(r));
	else
		data = json_pack("{soso}", "secret/", mount_secret(r), "sys/",
		    mount_sys(r));
	if (data == NULL)
		return vault_respond_error(r, 500, "internal error");
	if ((body = vault_envelope(r, json_deep_copy(data), NULL)) == NULL) {
		json_decref(data);
		return vault_respond_error(r, 500, "internal error");
	}
	json_object_foreach (data, k, v)
		json_object_set(body, k, v);
	json_decref(data);
	return vault_respond(r, 200, body);
}

/*
 * sys/internal/ui/mounts/<path>: which mount serves path, what the vault
 * CLI asks before each "vault kv" command to learn the KV version. As in
 * Vault, a path under no mount, or a caller without a valid token, gets
 * 403 "preflight capability check" (so the endpoint cannot be used to
 * list mounts). Any valid token learns the mount of secret/ (Vault asks
 * for some capability below it; here every token's rules are under it).
 */
static int
ui_mount(struct vault_request *r)
{
	const char *p = r->path + strlen("sys/internal/ui/mounts/");
	const char *reason, *mpath = NULL;
	json_t *data = NULL;
	char msg[256];
	int n;

	if (vault_req_auth(r, &reason) == TSI_OK) {
		if (strncmp(p, "secret", 6) == 0 &&
		    (p[6] == '\0' || p[6] == '/'))
			mpath = "secret/", data = mount_secret(r);
		else if (strncmp(p, "sys", 3) == 0 &&
		    (p[3] == '\0' || p[3] == '/'))
			mpath = "sys/", data = mount_sys(r);
		else if (strncmp(p, "auth/trusted-identity", 21) == 0 &&
		    (p[21] == '\0' || p[21] == '/'))
			mpath = "auth/trusted-identity/", data = mount_jwt(r);
		else if (strncmp(p, "auth/token", 10) == 0 &&
		    (p[10] == '\0' || p[10] == '/'))
			mpath = "auth/token/", data = mount_token(r);
	}
	if (mpath == NULL) {
		n = snprintf(msg, sizeof(msg),
		    "preflight capability check "
		    "returned 403, please ensure client's policies grant "
		    "access to path \"%.120s%s\"",
		    p, *p != '\0' && p[strlen(p) - 1] == '/' ? "" : "/");
		if (n < 0 || (size_t)n >= sizeof(msg))
			return vault_respond_error(r, 403, "permission denied");
		return vault_respond_error(r, 403, msg);
	}
	if (data == NULL)
		return vault_respond_error(r, 500, "internal error");
	json_object_set_new(data, "path", json_string(mpath));
	return vault_respond(r, 200, vault_envelope(r, data, NULL));
}

int
vault_sys_info(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	if (strcmp(r->method, "GET") != 0)
		return vault_respond_error(r, 405, "method not allowed");
	if (strcmp(r->path, "sys/seal-status") == 0)
		return seal_status(r);
	if (strcmp(r->path, "sys/init") == 0)
		return vault_respond(r, 200,
		    json_pack("{sb}", "initialized", 1));
	if (strcmp(r->path, "sys/leader") == 0)
		return leader(r);
	if (strcmp(r->path, "sys/mounts") == 0)
		return mount_table(r, 0);
	if (strcmp(r->path, "sys/auth") == 0)
		return mount_table(r, 1);
	return ui_mount(r);
}
