/*
 * token_admin.c - the token endpoints of an administrator, in Vault's
 * shapes: POST /v1/auth/token/create, POST /v1/auth/token/lookup {"token"},
 * POST /v1/auth/token/lookup-accessor {"accessor"}, POST
 * /v1/auth/token/revoke-accessor {"accessor"}; and the lookup answer that
 * lookup-self shares.
 *
 * Who may: root tokens only, that is the configured root token and tokens
 * created with the "root" policy (named, e.g. "token-alice"). The policy
 * language has no paths under auth/ (lib/policy_glob.c), so no rule can
 * grant these; a workload token never reaches them.
 *
 * Created tokens: "policies" name roles of the policy set (docs/vault.md):
 * the token gets what the named roles' rules allow, evaluated by
 * tsi_policy_eval like every other non-root token (deny rules included),
 * with no claims (a role with bound claims grants it nothing). "root" makes
 * a root token with a name; it binds whatever binds root. A created token
 * never outlives the token that created it. Tokens live in memory
 * (tokens.c): created tokens end when tsi-vault restarts.
 *
 * Every request is audited before its answer; create and revoke change
 * nothing unless their record is durable.
 */
#include "vault.h"
#include "routes.h"
#include "auditlog.h"
#include "http.h"
#include "tokens.h"
#include "token_eval.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Vault's default (system) maximum lease: 768 h. */
#define CREATE_TTL_DEFAULT (768L * 3600)
#define CREATE_POLICIES_MAX 64
#define DISPLAY_NAME_MAX 100

static int
post_or_put(const struct vault_request *r)
{
	return strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0;
}

/* Audits a with the outcome, then answers status with msg (503 when the
 * record fails). */
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

/* The request body as a JSON object (an empty body is {}). *out:
 * json_decref. TSI_ERR_PARSE when it is not one object. */
static int
body_object(struct vault_request *r, json_t **out)
{
	json_error_t je;
	size_t len = r->body ? tsi_buf_len(r->body) : 0;

	*out = len == 0 ? json_object()
	                : json_loadb((const char *)tsi_buf_ptr(r->body), len,
	                      JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL)
		return TSI_ERR_PARSE;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return TSI_ERR_PARSE;
	}
	return TSI_OK;
}

/*
 * The start of every admin request: method, body, the caller's token and
 * its root-ness, with the record for op prepared in a. TSI_OK: *body is the
 * request object (json_decref). Otherwise *ret holds the (audited) answer.
 */
static int
admin_begin(struct vault_request *r, struct vault_audit_rec *a, const char *op,
    json_t **body, int *ret)
{
	const char *reason;

	*body = NULL;
	memset(a, 0, sizeof(*a));
	a->op = op;
	a->path = r->path;
	if (!post_or_put(r)) {
		*ret = vault_respond_error(r, 405, "method not allowed");
		return TSI_ERR_INVALID_ARG;
	}
	if (vault_req_auth(r, &reason) != TSI_OK) {
		*ret = audited_error(r, a, "deny", "token", reason, 403,
		    "permission denied");
		return TSI_ERR_DENIED;
	}
	a->claims = r->tok.claims;
	a->accessor = r->tok.accessor;
	if (!r->tok.root) {
		*ret = audited_error(r, a, "deny", "default-deny",
		    "token administration needs a root token", 403,
		    "permission denied");
		return TSI_ERR_DENIED;
	}
	if (body_object(r, body) != TSI_OK) {
		*ret =
		    audited_error(r, a, "error", "", "malformed request body",
		        400, "request body must be a JSON object");
		return TSI_ERR_PARSE;
	}
	return TSI_OK;
}

/* Vault's ttl: seconds as a number or a string, or a duration "90s",
 * "30m", "12h", "7d". 0 < *out <= INT_MAX. */
static int
parse_ttl(const json_t *j, long *out)
{
	const char *s;
	char *end;
	long long n, mul = 1;

	if (json_is_integer(j)) {
		n = json_integer_value(j);
		if (n <= 0 || n > INT_MAX)
			return TSI_ERR_PARSE;
		*out = (long)n;
		return TSI_OK;
	}
	if (!json_is_string(j) || (s = json_string_value(j))[0] < '0' ||
	    s[0] > '9')
		return TSI_ERR_PARSE;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || n <= 0)
		return TSI_ERR_PARSE;
	if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (strcmp(end, "d") == 0)
		mul = 86400;
	else
		return TSI_ERR_PARSE;
	if (n > INT_MAX / mul)
		return TSI_ERR_PARSE;
	*out = (long)(n * mul);
	return TSI_OK;
}

/* Fields of Vault's create request that would change what the token is,
 * and that tsi-vault does not offer: refused by name, never ignored. */
static const char *
create_unsupported(const json_t *req)
{
	static const char *const names[] = { "id", "role_name", "meta",
		"num_uses", "period", "entity_alias", "explicit_max_ttl" };
	const json_t *v;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		v = json_object_get(req, names[i]);
		if (v == NULL || json_is_null(v))
			continue;
		/* What hvac and the CLI send when the option is unset. */
		if ((json_is_integer(v) && json_integer_value(v) == 0) ||
		    (json_is_string(v) && json_string_length(v) == 0) ||
		    (json_is_object(v) && json_object_size(v) == 0))
			continue;
		return names[i];
	}
	/* "renewable" (hvac sends true by default) is not refused: the
	 * answer says "renewable": false, and a renewal gets Vault's 400, so
	 * no client is left believing it can renew. */
	v = json_object_get(req, "type");
	if (json_is_string(v) && strcmp(json_string_value(v), "service") != 0)
		return "type";
	return NULL;
}

/* Checks the create request's policies into *pol (a new array: "root"
 * alone, or role names of the policy set, "default" allowed). msg: the
 * client's error. */
static int
create_policies(struct vault_request *r, const json_t *req, json_t **pol,
    int *root, char *msg, size_t msglen)
{
	struct tsi_policy_set *p = NULL;
	const json_t *in = json_object_get(req, "policies");
	json_t *out = NULL;
	size_t i;
	int rc = TSI_ERR_PARSE;

	*pol = NULL;
	*root = 0;
	if (in == NULL || json_is_null(in) ||
	    (json_is_array(in) && json_array_size(in) == 0)) {
		/* Vault: the creator's policies; the creator is root. */
		*root = 1;
		*pol = json_pack("[s]", "root");
		return *pol ? TSI_OK : TSI_ERR_ALLOC;
	}
	if (!json_is_array(in) || json_array_size(in) > CREATE_POLICIES_MAX) {
		snprintf(msg, msglen,
		    "policies must be a list of at most %d "
		    "names",
		    CREATE_POLICIES_MAX);
		return TSI_ERR_PARSE;
	}
	if ((out = json_array()) == NULL)
		return TSI_ERR_ALLOC;
	p = vault_policy_get(r->v);
	for (i = 0; i < json_array_size(in); i++) {
		const char *n = json_string_value(json_array_get(in, i));
		if (n == NULL || *n == '\0' || strlen(n) > 127) {
			snprintf(msg, msglen,
			    "policies must be a list of names");
			goto out;
		}
		if (strcmp(n, "root") == 0)
			*root = 1;
		else if (strcmp(n, "default") != 0 &&
		    (p == NULL || tsi_policy_role_rules(p, n, NULL) == NULL)) {
			snprintf(msg, msglen,
			    "policy \"%.127s\" is not a role "
			    "of the policy set",
			    n);
			goto out;
		}
		json_array_append_new(out, json_string(n));
	}
	if (*root && json_array_size(out) != 1) {
		snprintf(msg, msglen,
		    "the root policy cannot be combined "
		    "with others");
		goto out;
	}
	*pol = out;
	out = NULL;
	rc = TSI_OK;
out:
	tsi_policy_unref(p);
	json_decref(out);
	return rc;
}

/* Vault's display_name: "token-" and the name, reduced to [a-z0-9-]. */
static int
create_display_name(const json_t *req, char *out, size_t outlen)
{
	const json_t *j = json_object_get(req, "display_name");
	const char *s = "";
	size_t i, n;

	if (j != NULL && !json_is_null(j)) {
		if (!json_is_string(j) ||
		    json_string_length(j) > DISPLAY_NAME_MAX)
			return TSI_ERR_PARSE;
		s = json_string_value(j);
	}
	if (strncmp(s, "token-", 6) == 0)
		s += 6;
	n = (size_t)snprintf(out, outlen, "token%s%s", *s ? "-" : "", s);
	if (n >= outlen)
		return TSI_ERR_PARSE;
	for (i = 0; out[i] != '\0'; i++) {
		char c = out[i];
		if (c >= 'A' && c <= 'Z')
			out[i] = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		             c == '-'))
			out[i] = '-';
	}
	return TSI_OK;
}

static int
token_create(struct vault_request *r)
{
	struct vault_audit_rec a;
	struct vault_token_spec spec;
	int ret;
	json_t *req = NULL, *pol = NULL, *auth;
	char msg[256] = "", reason[512], name[128];
	char accessor[VAULT_ACCESSOR_LEN + 1] = "";
	char *token = NULL;
	const char *bad;
	long ttl = CREATE_TTL_DEFAULT, left;
	int root = 0, rc;

	if (admin_begin(r, &a, "token-create", &req, &ret) != TSI_OK)
		return ret;
	if ((bad = create_unsupported(req)) != NULL) {
		snprintf(msg, sizeof(msg), "%s is not supported by tsi-vault",
		    bad);
		ret = audited_error(r, &a, "error", "", msg, 400, msg);
		goto out;
	}
	if (json_object_get(req, "ttl") != NULL &&
	    !json_is_null(json_object_get(req, "ttl")) &&
	    parse_ttl(json_object_get(req, "ttl"), &ttl) != TSI_OK) {
		ret = audited_error(r, &a, "error", "", "bad ttl", 400,
		    "ttl must be seconds or a duration such as \"1h\"");
		goto out;
	}
	if (create_display_name(req, name, sizeof(name)) != TSI_OK) {
		ret = audited_error(r, &a, "error", "", "bad display_name", 400,
		    "display_name must be a string of at most 100 bytes");
		goto out;
	}
	if ((rc = create_policies(r, req, &pol, &root, msg, sizeof(msg))) !=
	    TSI_OK) {
		ret = rc == TSI_ERR_ALLOC
		    ? vault_respond_error(r, 500, "internal error")
		    : audited_error(r, &a, "error", "", msg, 400, msg);
		goto out;
	}
	/* Never past the creator's own end. */
	if (r->tok.expires != 0) {
		left = (long)(r->tok.expires - time(NULL));
		if (left <= 0) {
			ret = audited_error(r, &a, "deny", "token",
			    "token expired", 403, "permission denied");
			goto out;
		}
		if (ttl > left)
			ttl = left;
	}
	memset(&spec, 0, sizeof(spec));
	spec.role = "";
	spec.display_name = name;
	spec.policies = pol;
	spec.ttl = ttl;
	spec.expires_at = r->tok.expires;
	spec.root = root;
	spec.created = 1;
	if ((rc = vault_tokens_add(r->v->tokens, &spec, &token, accessor)) !=
	    TSI_OK) {
		ret = audited_error(r, &a, "error", "", "token table full", 503,
		    "cannot issue a token now");
		goto out;
	}
	{
		char *pl = json_dumps(pol, JSON_COMPACT);
		snprintf(reason, sizeof(reason),
		    "created token %s (%s) with "
		    "policies %s, ttl %ld s",
		    accessor, name, pl ? pl : "?", ttl);
		free(pl);
	}
	a.decision = "allow";
	a.rule = "root";
	a.reason = reason;
	a.status = 200;
	if (vault_audit(r, &a) != TSI_OK) {
		/* Never handed out unrecorded. */
		vault_tokens_revoke(r->v->tokens, token);
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	tsi_log(TSI_LOG_INFO, "token.created",
	    TSI_LS("request_id", r->request_id), TSI_LS("accessor", accessor),
	    TSI_LS("display_name", name), TSI_LS("by", r->tok.accessor),
	    TSI_LI("ttl", ttl));
	auth = json_pack("{sssssOsOs{}sIsbsssssbsn}", "client_token", token,
	    "accessor", accessor, "policies", pol, "token_policies", pol,
	    "metadata", "lease_duration", (json_int_t)ttl, "renewable", 0,
	    "entity_id", "", "token_type", "service", "orphan", 0,
	    "mfa_requirement");
	ret = vault_respond(r, 200, vault_envelope(r, NULL, auth));
out:
	tsi_strfree(token);
	json_decref(pol);
	json_decref(req);
	return ret;
}

/* The string field name of the body, or NULL. */
static const char *
body_string(const json_t *req, const char *name)
{
	const json_t *j = json_object_get(req, name);

	return json_is_string(j) && json_string_length(j) > 0
	    ? json_string_value(j)
	    : NULL;
}

static int
token_lookup(struct vault_request *r, int by_accessor)
{
	struct vault_audit_rec a;
	struct vault_token t;
	int ret;
	json_t *req = NULL, *data;
	const char *key;
	char reason[320];
	int rc;

	memset(&t, 0, sizeof(t));
	if (admin_begin(r, &a, "token-lookup", &req, &ret) != TSI_OK)
		return ret;
	key = body_string(req, by_accessor ? "accessor" : "token");
	if (key == NULL) {
		ret = audited_error(r, &a, "error", "", "missing field", 400,
		    by_accessor ? "missing accessor" : "missing token");
		goto out;
	}
	rc = by_accessor ? vault_tokens_lookup_accessor(r->v->tokens, key, &t)
	                 : vault_tokens_lookup(r->v->tokens, key, &t);
	if (rc != TSI_OK) {
		/* Vault's answers for a token or accessor it does not hold. */
		ret = by_accessor
		    ? audited_error(r, &a, "allow", "root", "no such accessor",
		          400, "invalid accessor")
		    : audited_error(r, &a, "allow", "root", "no such token",
		          403, "bad token");
		goto out;
	}
	snprintf(reason, sizeof(reason), "looked up token %s", t.accessor);
	a.decision = "allow";
	a.rule = "root";
	a.reason = reason;
	a.status = 200;
	if (vault_audit(r, &a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	if ((data = vault_token_lookup_data(&t, by_accessor ? NULL : key)) ==
	    NULL)
		ret = vault_respond_error(r, 500, "internal error");
	else
		ret = vault_respond(r, 200, vault_envelope(r, data, NULL));
out:
	vault_token_clear(&t);
	json_decref(req);
	return ret;
}

/* The record is durable before the token is removed: when it cannot be
 * written the token keeps working (503). */
static int
token_revoke_accessor(struct vault_request *r)
{
	struct vault_audit_rec a;
	struct vault_token t;
	int ret;
	json_t *req = NULL;
	const char *acc;
	char reason[320];

	memset(&t, 0, sizeof(t));
	if (admin_begin(r, &a, "token-revoke", &req, &ret) != TSI_OK)
		return ret;
	acc = body_string(req, "accessor");
	if (acc == NULL) {
		ret = audited_error(r, &a, "error", "", "missing accessor", 400,
		    "missing accessor");
		goto out;
	}
	if (vault_tokens_lookup_accessor(r->v->tokens, acc, &t) != TSI_OK) {
		ret = audited_error(r, &a, "allow", "root", "no such accessor",
		    400, "invalid accessor");
		goto out;
	}
	snprintf(reason, sizeof(reason), "revoked token %s (role '%s', %s)",
	    t.accessor, t.role, t.display_name[0] ? t.display_name : "login");
	a.decision = "allow";
	a.rule = "root";
	a.reason = reason;
	a.status = 204;
	if (vault_audit(r, &a) != TSI_OK) {
		ret = vault_respond_audit_failed(r);
		goto out;
	}
	(void)vault_tokens_revoke_accessor(r->v->tokens, acc);
	tsi_log(TSI_LOG_INFO, "token.revoked",
	    TSI_LS("request_id", r->request_id), TSI_LS("accessor", t.accessor),
	    TSI_LS("by", r->tok.accessor));
	ret = vault_respond(r, 204, NULL);
out:
	vault_token_clear(&t);
	json_decref(req);
	return ret;
}

int
vault_token_admin(struct vault *v, struct vault_request *r,
    struct vault_answer *ans)
{
	if (strcmp(r->path, "auth/token/create") == 0)
		return token_create(r);
	if (strcmp(r->path, "auth/token/lookup") == 0)
		return token_lookup(r, 0);
	if (strcmp(r->path, "auth/token/lookup-accessor") == 0)
		return token_lookup(r, 1);
	if (strcmp(r->path, "auth/token/revoke-accessor") == 0)
		return token_revoke_accessor(r);
	return vault_respond_no_route(r);
}
