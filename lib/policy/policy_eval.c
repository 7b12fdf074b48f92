/*
 * policy_eval.c - decisions: may this caller log in with this role, may it
 * use this capability on this path.
 *
 * Order: (1) input checks (bad path, capability or claims, a capability
 * that does not apply to the path's mount: deny), (2) the
 * role exists and its bound claims hold, (3) any deny rule of the set that
 * applies wins, (4) the first allow rule that applies allows, (5) otherwise
 * "default-deny". A rule applies when one of its paths matches, it has the
 * capability, and its match holds. Deny rules are guardrails of the whole
 * set: they apply to every role, listed in it or not; allow rules count only
 * for the roles that list them.
 *
 * Allow and deny rules read claims in opposite, fail-closed directions:
 *  - allow: every claim in match must be present, and every element of a
 *    list claim must match the pattern list;
 *  - deny: the deny applies when a claim in match is absent or malformed, or
 *    when any element of a list claim matches; a {claim} template that
 *    cannot be resolved to one literal segment matches any segment.
 * So a missing or odd claim can never lift a deny nor win an allow.
 *
 * The root token has no role: tsi_policy_eval_root tries only the deny rules
 * marked guardrail, with root's (empty) claims, so the same fail-closed
 * reading makes a guardrail that depends on a claim deny root.
 */
#include "policy_int.h"
#include "tsi/err.h"
#include "tsi/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void decide(struct tsi_decision *d, int allowed, const char *rule,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
decide(struct tsi_decision *d, int allowed, const char *rule, const char *fmt,
    ...)
{
	va_list ap;

	d->allowed = allowed;
	if (snprintf(d->rule, sizeof(d->rule), "%s", rule) < 0)
		d->rule[0] = '\0';
	va_start(ap, fmt);
	if (vsnprintf(d->reason, sizeof(d->reason), fmt, ap) < 0)
		d->reason[0] = '\0';
	va_end(ap);
}

/* A claim element as text: strings (without embedded NULs) and integers. */
static const char *
scalar_str(const json_t *v, char *tmp, size_t tmplen)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		return strlen(s) == json_string_length(v) ? s : NULL;
	}
	if (json_is_integer(v)) {
		int n = snprintf(tmp, tmplen, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));

		return n > 0 && (size_t)n < tmplen ? tmp : NULL;
	}
	return NULL;
}

static const char *
resolve_claim(const char *name, size_t len, void *arg, char *tmp, size_t tmplen)
{
	const json_t *claims = arg;
	const json_t *v;
	char key[64];

	if (len >= sizeof(key))
		return NULL;
	memcpy(key, name, len);
	key[len] = '\0';
	if ((v = json_object_get(claims, key)) == NULL)
		return NULL;
	/* A list claim stands for a segment only with exactly one value. */
	if (json_is_array(v)) {
		if (json_array_size(v) != 1)
			return NULL;
		v = json_array_get(v, 0);
	}
	return scalar_str(v, tmp, tmplen);
}

/*
 * One claim condition. Returns 1 when it holds in the rule's direction
 * (allow: the caller qualifies; deny: the deny applies). When an allow
 * condition fails, why says which claim and value.
 */
static int
cond_holds(const struct tsi_pol_cond *c, const json_t *claims, int deny,
    char *why, size_t wl)
{
	const json_t *v = json_object_get(claims, c->claim);
	size_t i, n;
	char tmp[64];

	if (v == NULL) {
		snprintf(why, wl, "claim '%s' is missing", c->claim);
		return deny;
	}
	if (json_is_array(v)) {
		n = json_array_size(v);
		if (n == 0) {
			snprintf(why, wl, "claim '%s' is an empty list",
			    c->claim);
			return deny;
		}
	} else
		n = 1;
	for (i = 0; i < n; i++) {
		const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
		const char *s = scalar_str(e, tmp, sizeof(tmp));
		int m;

		if (s == NULL) {
			snprintf(why, wl,
			    "claim '%s' is not a string, integer or "
			    "list of them",
			    c->claim);
			return deny;
		}
		m = tsi_pol_value_match(c->pats, c->npats, s);
		if (deny && m)
			return 1;
		if (!deny && !m) {
			snprintf(why, wl,
			    "claim '%s' value '%.80s' is not allowed", c->claim,
			    s);
			return 0;
		}
	}
	return !deny;
}

/* deny: 1 when every condition holds (the deny applies). */
static int
match_holds(const struct tsi_pol_match *m, const json_t *claims, int deny,
    char *why, size_t wl)
{
	size_t i;

	for (i = 0; i < m->nconds; i++)
		if (!cond_holds(&m->conds[i], claims, deny, why, wl))
			return 0;
	return 1;
}

static const struct tsi_pol_role *
find_role(const struct tsi_policy_set *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nroles; i++)
		if (strcmp(p->roles[i].name, name) == 0)
			return &p->roles[i];
	return NULL;
}

/*
 * Whether rule r applies to (claims, path, cap). When the path matched but
 * the capability or the match did not, and *near is empty, near is filled
 * with why (for the default-deny reason).
 */
static int
rule_applies(const struct tsi_pol_rule *r, const json_t *claims,
    const char *path, int cap, char *near, size_t nl)
{
	struct tsi_pol_tmpl t = { resolve_claim, (void *)claims, r->deny };
	char why[200];
	size_t i;

	for (i = 0; i < r->npaths; i++)
		if (tsi_pol_path_match(r->paths[i], path, &t))
			break;
	if (i == r->npaths)
		return 0;
	if (!(r->caps & cap)) {
		if (near[0] == '\0')
			snprintf(near, nl,
			    "rule '%s' matches the path but not "
			    "capability %s",
			    r->name, tsi_cap_name(cap));
		return 0;
	}
	why[0] = '\0';
	if (!match_holds(&r->match, claims, r->deny, why, sizeof(why))) {
		if (near[0] == '\0' && !r->deny)
			snprintf(near, nl, "rule '%s': %s", r->name, why);
		return 0;
	}
	return 1;
}

static int
valid_cap(int cap)
{
	return cap > 0 && (cap & (cap - 1)) == 0 && cap <= TSI_CAP_PATCH;
}

int
tsi_policy_login(const struct tsi_policy_set *p, const char *role,
    const json_t *claims, long *ttl, struct tsi_decision *d)
{
	const struct tsi_pol_role *r;
	char why[200];
	char rn[TSI_POL_NAME_MAX + 8];

	if (d == NULL)
		return TSI_ERR_INVALID_ARG;
	decide(d, 0, "default-deny", "login refused");
	if (p == NULL || role == NULL || !json_is_object(claims)) {
		decide(d, 0, "default-deny",
		    "login refused: missing role or claims");
		return TSI_ERR_INVALID_ARG;
	}
	if ((r = find_role(p, role)) == NULL) {
		decide(d, 0, "default-deny", "unknown role '%.100s'", role);
		return TSI_ERR_NOT_FOUND;
	}
	snprintf(rn, sizeof(rn), "role:%s", r->name);
	why[0] = '\0';
	if (!match_holds(&r->match, claims, 0, why, sizeof(why))) {
		decide(d, 0, rn, "role '%s' bound claims do not hold: %s",
		    r->name, why);
		return TSI_ERR_DENIED;
	}
	if (ttl != NULL)
		*ttl = r->ttl;
	decide(d, 1, rn, "role '%s' bound claims hold", r->name);
	return TSI_OK;
}

/* The checks every request passes before any rule is read; TSI_OK or
 * TSI_ERR_DENIED with d filled. */
static int
check_request(const char *path, int cap, struct tsi_decision *d)
{
	if (!valid_cap(cap)) {
		decide(d, 0, "default-deny", "unknown capability %d", cap);
		return TSI_ERR_DENIED;
	}
	if (tsi_pol_path_valid(path) < 0) {
		decide(d, 0, "default-deny", "malformed path");
		return TSI_ERR_DENIED;
	}
	/* The capability must be one the path's mount is checked for (the
	 * program's mounts say which, tsi_policy_mounts_set): a rule listing
	 * both paths and capabilities never grants a capability on a mount
	 * that is not checked for it. */
	if (!(tsi_pol_caps_for_pattern(path) & cap)) {
		decide(d, 0, "default-deny",
		    "capability %s does not apply to "
		    "%.120s",
		    tsi_cap_name(cap), path);
		return TSI_ERR_DENIED;
	}
	return TSI_OK;
}

int
tsi_policy_eval(const struct tsi_policy_set *p, const char *role,
    const json_t *claims, const char *path, int cap, struct tsi_decision *d)
{
	const struct tsi_pol_role *r = NULL;
	const char *capname;
	char near[200];
	size_t i, n;
	int pass;

	if (d == NULL)
		return TSI_ERR_INVALID_ARG;
	decide(d, 0, "default-deny", "denied");
	if (p == NULL || !json_is_object(claims)) {
		decide(d, 0, "default-deny", "no policy set or claims");
		return TSI_ERR_DENIED;
	}
	if (check_request(path, cap, d) != TSI_OK)
		return TSI_ERR_DENIED;
	capname = tsi_cap_name(cap);
	if (role != NULL) {
		char why[200];

		if ((r = find_role(p, role)) == NULL) {
			decide(d, 0, "default-deny", "unknown role '%.100s'",
			    role);
			return TSI_ERR_DENIED;
		}
		/* Bound claims were checked at login; checking again costs
		 * little and keeps a token from outliving a policy change. */
		why[0] = '\0';
		if (!match_holds(&r->match, claims, 0, why, sizeof(why))) {
			char rn[TSI_POL_NAME_MAX + 8];

			snprintf(rn, sizeof(rn), "role:%s", r->name);
			decide(d, 0, rn,
			    "role '%s' bound claims do not hold: %s", r->name,
			    why);
			return TSI_ERR_DENIED;
		}
	}
	near[0] = '\0';
	/* Pass 0: every deny rule of the set (guardrails hold for every
	 * role, whether it lists them or not); pass 1: the role's allow rules
	 * (or every allow rule when there is no role). */
	for (pass = 0; pass < 2; pass++) {
		int scoped = pass == 1 && r != NULL;

		n = scoped ? r->nrules : p->nrules;
		for (i = 0; i < n; i++) {
			const struct tsi_pol_rule *rule =
			    &p->rules[scoped ? r->rule_idx[i] : i];

			if (rule->deny != (pass == 0))
				continue;
			if (!rule_applies(rule, claims, path, cap, near,
			        sizeof(near)))
				continue;
			if (rule->deny) {
				decide(d, 0, rule->name,
				    "deny rule '%s' applies "
				    "to %s on %.120s",
				    rule->name, capname, path);
				return TSI_ERR_DENIED;
			}
			decide(d, 1, rule->name,
			    "rule '%s' grants %s on %.120s", rule->name,
			    capname, path);
			return TSI_OK;
		}
	}
	if (near[0] != '\0')
		decide(d, 0, "default-deny", "no rule grants %s on %.100s; %s",
		    capname, path, near);
	else
		decide(d, 0, "default-deny", "no rule grants %s on %.120s",
		    capname, path);
	return TSI_ERR_DENIED;
}

/*
 * Root is not a role: it has no allow rules to find and no claims to match,
 * so only the guardrails are tried. Root's claims are empty (or NULL, which
 * reads the same: every claim missing), and deny rules read a missing claim
 * as "the deny applies" and an unresolvable {claim} as any segment; so a
 * guardrail that depends on where the caller is binds root on all of its
 * paths. That is the point: root cannot show it is inside the fence.
 */
int
tsi_policy_eval_root(const struct tsi_policy_set *p, const json_t *claims,
    const char *path, int cap, struct tsi_decision *d)
{
	char near[200];
	size_t i;

	if (d == NULL)
		return TSI_ERR_INVALID_ARG;
	decide(d, 0, "default-deny", "denied");
	if (claims != NULL && !json_is_object(claims)) {
		decide(d, 0, "default-deny", "claims are not an object");
		return TSI_ERR_DENIED;
	}
	if (check_request(path, cap, d) != TSI_OK)
		return TSI_ERR_DENIED;
	near[0] = '\0';
	for (i = 0; p != NULL && i < p->nrules; i++) {
		const struct tsi_pol_rule *rule = &p->rules[i];

		if (!rule->deny || !rule->guardrail)
			continue;
		if (!rule_applies(rule, claims, path, cap, near, sizeof(near)))
			continue;
		decide(d, 0, rule->name,
		    "guardrail '%s' applies to the root "
		    "token: %s on %.120s",
		    rule->name, tsi_cap_name(cap), path);
		return TSI_ERR_DENIED;
	}
	decide(d, 1, "root", "root token");
	return TSI_OK;
}

size_t
tsi_policy_guardrails(const struct tsi_policy_set *p)
{
	size_t i, n = 0;

	for (i = 0; p != NULL && i < p->nrules; i++)
		if (p->rules[i].deny && p->rules[i].guardrail)
			n++;
	return n;
}
