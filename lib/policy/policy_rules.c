/*
 * policy_rules.c - the grammar of a policy file: one rule or role setting
 * into a validated struct tsi_pol_rule / tsi_pol_role (names, matches,
 * capabilities, TTLs, duplicates and references), and the capability
 * names. policy_load.c reads the directory and files and calls this.
 */
#include "policy_int.h"
#include "policy_load_int.h"
#include "tsi/err.h"
#include "tsi/policy.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TTL 300
#define MAX_TTL 86400

static const struct {
	const char *name;
	int cap;
} cap_names[] = {
	{ "create", TSI_CAP_CREATE },
	{ "read", TSI_CAP_READ },
	{ "update", TSI_CAP_UPDATE },
	{ "delete", TSI_CAP_DELETE },
	{ "list", TSI_CAP_LIST },
	{ "audit", TSI_CAP_AUDIT },
	{ "patch", TSI_CAP_PATCH },
};
#define NCAPS (sizeof(cap_names) / sizeof(cap_names[0]))
#define ALL_CAPS \
	(TSI_CAP_CREATE | TSI_CAP_READ | TSI_CAP_UPDATE | TSI_CAP_DELETE | \
	    TSI_CAP_LIST | TSI_CAP_AUDIT | TSI_CAP_PATCH)

int
tsi_cap_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < NCAPS; i++)
		if (strcmp(name, cap_names[i].name) == 0)
			return cap_names[i].cap;
	return 0;
}

const char *
tsi_cap_name(int cap)
{
	size_t i;

	for (i = 0; i < NCAPS; i++)
		if (cap == cap_names[i].cap)
			return cap_names[i].name;
	return "unknown";
}

void
policy_strv_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
match_clear(struct tsi_pol_match *m)
{
	size_t i;

	for (i = 0; i < m->nconds; i++) {
		free(m->conds[i].claim);
		policy_strv_free(m->conds[i].pats, m->conds[i].npats);
	}
	free(m->conds);
	m->conds = NULL;
	m->nconds = 0;
}

void
tsi_pol_rule_clear(struct tsi_pol_rule *r)
{
	free(r->name);
	policy_strv_free(r->paths, r->npaths);
	match_clear(&r->match);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

void
tsi_pol_role_clear(struct tsi_pol_role *r)
{
	policy_strv_free(r->rule_names, r->nrules);
	free(r->rule_idx);
	free(r->name);
	match_clear(&r->match);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

static int
valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > TSI_POL_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
			return 0;
	}
	/* Reserved: decisions name these instead of a rule. */
	if (strcmp(s, "default-deny") == 0 || strncmp(s, "role:", 5) == 0)
		return 0;
	return 1;
}

static const struct seen *
seen_find(const struct seen_list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static void
seen_add(struct loader *ld, struct seen_list *l, const char *name,
    const char *file, int line)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		struct seen *nv = realloc(l->v, nc * sizeof(*nv));

		if (nv == NULL) {
			ld->oom = 1;
			return;
		}
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n].name = policy_xstrdup(ld, name);
	l->v[l->n].file = policy_xstrdup(ld, file);
	if (l->v[l->n].name == NULL || l->v[l->n].file == NULL) {
		free(l->v[l->n].name);
		free(l->v[l->n].file);
		return;
	}
	l->v[l->n].line = line;
	l->n++;
}

void
policy_seen_free(struct seen_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].file);
	}
	free(l->v);
}

/*
 * A list of strings: an array [ ... ] or a list ( ... ); with scalar_ok a
 * single string is taken as a list of one. Returns 0 with *out (strdup'd,
 * caller frees with strv_free) or -1 with the error reported.
 */
static int
get_strlist(struct loader *ld, const config_setting_t *s, const char *ctx,
    int scalar_ok, char ***out, size_t *nout)
{
	const char *key = config_setting_name(s);
	char **v = NULL;
	size_t i, n;
	int type = config_setting_type(s);

	*out = NULL;
	*nout = 0;
	if (scalar_ok && type == CONFIG_TYPE_STRING) {
		if ((v = calloc(1, sizeof(*v))) == NULL ||
		    (v[0] = policy_xstrdup(ld, config_setting_get_string(s))) ==
		        NULL) {
			ld->oom = 1;
			free(v);
			return -1;
		}
		*out = v;
		*nout = 1;
		return 0;
	}
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		SERR(ld, s, "%s: '%s' must be a list of strings", ctx, key);
		return -1;
	}
	n = (size_t)config_setting_length(s);
	if (n == 0) {
		SERR(ld, s, "%s: '%s' must not be empty", ctx, key);
		return -1;
	}
	if (n > TSI_POL_LIST_MAX) {
		SERR(ld, s, "%s: '%s' has more than %d entries", ctx, key,
		    TSI_POL_LIST_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			SERR(ld, e, "%s: '%s' must be a list of strings", ctx,
			    key);
			return -1;
		}
	}
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		ld->oom = 1;
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned)i);

		if ((v[i] = policy_xstrdup(ld, config_setting_get_string(e))) ==
		    NULL) {
			policy_strv_free(v, i);
			return -1;
		}
	}
	*out = v;
	*nout = n;
	return 0;
}

static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* match = { claim = [ "pattern", "!pattern" ]; ... }. 0 ok, -1 reported. */
static int
parse_match(struct loader *ld, const config_setting_t *g, const char *ctx,
    struct tsi_pol_match *m)
{
	int i, n, bad = 0;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		SERR(ld, g, "%s: 'match' must be a group { claim = [ ... ]; }",
		    ctx);
		return -1;
	}
	n = config_setting_length(g);
	if (n == 0) {
		SERR(ld, g,
		    "%s: 'match' is empty (leave it out to match any caller)",
		    ctx);
		return -1;
	}
	if ((m->conds = calloc((size_t)n, sizeof(*m->conds))) == NULL) {
		ld->oom = 1;
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *c =
		    config_setting_get_elem(g, (unsigned)i);
		const char *claim = config_setting_name(c);
		struct tsi_pol_cond *cond = &m->conds[m->nconds];
		size_t j;
		int pbad = 0;

		if (claim == NULL ||
		    !tsi_pol_claim_known(claim, strlen(claim))) {
			SERR(ld, c, "%s: unknown claim '%s' in match", ctx,
			    claim ? claim : "?");
			bad = 1;
			continue;
		}
		if (get_strlist(ld, c, ctx, 1, &cond->pats, &cond->npats) < 0) {
			bad = 1;
			continue;
		}
		for (j = 0; j < cond->npats && !pbad; j++) {
			const char *p = cond->pats[j];

			if (p[0] == '\0' || (p[0] == '!' && p[1] == '\0')) {
				SERR(ld, c, "%s: empty pattern in match '%s'",
				    ctx, claim);
				pbad = 1;
			} else if (strlen(p) > TSI_POL_VALUE_PAT_MAX) {
				SERR(ld, c,
				    "%s: pattern longer than %d characters in "
				    "match '%s'",
				    ctx, TSI_POL_VALUE_PAT_MAX, claim);
				pbad = 1;
			} else if (has_ctl(p)) {
				SERR(ld, c,
				    "%s: control character in match '%s'", ctx,
				    claim);
				pbad = 1;
			}
		}
		if (pbad || (cond->claim = policy_xstrdup(ld, claim)) == NULL) {
			policy_strv_free(cond->pats, cond->npats);
			memset(cond, 0, sizeof(*cond));
			bad = 1;
			continue;
		}
		m->nconds++;
	}
	return bad ? -1 : 0;
}

/* Reports a name setting's problems; returns the name or NULL. */
static const char *
get_name(struct loader *ld, const config_setting_t *g, const char *what)
{
	const config_setting_t *s = config_setting_get_member(g, "name");
	const char *name;

	if (s == NULL) {
		SERR(ld, g, "%s without a 'name'", what);
		return NULL;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		SERR(ld, s, "%s: 'name' must be a string", what);
		return NULL;
	}
	name = config_setting_get_string(s);
	if (!valid_name(name)) {
		SERR(ld, s,
		    "invalid %s name '%s' (letters, digits, '.', '_', '-'; "
		    "at most %d characters; not 'default-deny')",
		    what, name, TSI_POL_NAME_MAX);
		return NULL;
	}
	return name;
}

/* Checks name against earlier definitions and records it. 0 new, -1 dup. */
static int
check_dup(struct loader *ld, struct seen_list *l, const config_setting_t *g,
    const char *what, const char *name)
{
	const struct seen *prev = seen_find(l, name);

	if (prev != NULL) {
		SERR(ld, g, "duplicate %s '%s' (first defined at %s:%d)", what,
		    name, prev->file, prev->line);
		return -1;
	}
	seen_add(ld, l, name, policy_file_of(ld, g),
	    (int)config_setting_source_line(g));
	return 0;
}

/* vec (n elements of size bytes, room for *cap) with room for one more:
 * vec itself, or a doubled copy (*cap updated). NULL (and ld->oom) when
 * memory runs out; vec is then unchanged. */
void *
policy_set_grow(struct loader *ld, void *vec, size_t n, size_t *cap,
    size_t size)
{
	size_t nc;
	void *nv;

	if (n < *cap)
		return vec;
	nc = *cap ? *cap * 2 : 16;
	if ((nv = reallocarray(vec, nc, size)) == NULL) {
		ld->oom = 1;
		return NULL;
	}
	*cap = nc;
	return nv;
}

/* Moves *r into the set (*r is zeroed). -1 when memory runs out. */
static int
set_push_rule(struct loader *ld, struct tsi_pol_rule *r)
{
	struct tsi_policy_set *p = ld->set;
	struct tsi_pol_rule *nv;

	if ((nv = policy_set_grow(ld, p->rules, p->nrules, &ld->rules_cap,
	         sizeof(*r))) == NULL)
		return -1;
	p->rules = nv;
	p->rules[p->nrules++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

static int
set_push_role(struct loader *ld, struct tsi_pol_role *r)
{
	struct tsi_policy_set *p = ld->set;
	struct tsi_pol_role *nv;

	if ((nv = policy_set_grow(ld, p->roles, p->nroles, &ld->roles_cap,
	         sizeof(*r))) == NULL)
		return -1;
	p->roles = nv;
	p->roles[p->nroles++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

static void
parse_rule(struct loader *ld, const config_setting_t *g)
{
	struct tsi_pol_rule r;
	const config_setting_t *s;
	const char *name;
	char ctx[TSI_POL_NAME_MAX + 16];
	int i, n, bad = 0, caps_given = 0;
	const config_setting_t *guard = NULL;

	memset(&r, 0, sizeof(r));
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		SERR(ld, g, "each entry of 'rules' must be a group { ... }");
		return;
	}
	if ((name = get_name(ld, g, "rule")) == NULL) {
		bad = 1;
		snprintf(ctx, sizeof(ctx), "rule");
	} else {
		snprintf(ctx, sizeof(ctx), "rule '%s'", name);
		if (check_dup(ld, &ld->rules_seen, g, "rule", name) < 0)
			bad = 1;
	}
	if ((s = config_setting_get_member(g, "effect")) != NULL) {
		const char *e = config_setting_get_string(s);

		if (e != NULL && strcmp(e, "deny") == 0)
			r.deny = 1;
		else if (e == NULL || strcmp(e, "allow") != 0) {
			SERR(ld, s,
			    "%s: 'effect' must be \"allow\" or \"deny\"", ctx);
			bad = 1;
		}
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		const config_setting_t *m =
		    config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);

		if (key == NULL)
			continue;
		if (strcmp(key, "name") == 0 || strcmp(key, "effect") == 0)
			continue;
		if (strcmp(key, "description") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_STRING) {
				SERR(ld, m,
				    "%s: 'description' must be a string", ctx);
				bad = 1;
			}
		} else if (strcmp(key, "guardrail") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
				SERR(ld, m,
				    "%s: 'guardrail' must be true or false",
				    ctx);
				bad = 1;
				continue;
			}
			r.guardrail = config_setting_get_bool(m);
			guard = m;
		} else if (strcmp(key, "paths") == 0) {
			size_t j;

			if (get_strlist(ld, m, ctx, 0, &r.paths, &r.npaths) <
			    0) {
				bad = 1;
				continue;
			}
			for (j = 0; j < r.npaths; j++) {
				char why[512];

				if (tsi_pol_pattern_check(r.paths[j], why,
				        sizeof(why)) < 0) {
					SERR(ld,
					    config_setting_get_elem(m,
					        (unsigned)j),
					    "%s: %s", ctx, why);
					bad = 1;
				}
			}
		} else if (strcmp(key, "capabilities") == 0) {
			char **caps;
			size_t j, ncaps;

			caps_given = 1;
			if (get_strlist(ld, m, ctx, 0, &caps, &ncaps) < 0) {
				bad = 1;
				continue;
			}
			for (j = 0; j < ncaps; j++) {
				int c = tsi_cap_from_name(caps[j]);

				if (c == 0) {
					SERR(ld,
					    config_setting_get_elem(m,
					        (unsigned)j),
					    "%s: unknown capability '%s' "
					    "(create, read, update, delete, "
					    "list, audit)",
					    ctx, caps[j]);
					bad = 1;
				}
				r.caps |= c;
			}
			policy_strv_free(caps, ncaps);
		} else if (strcmp(key, "match") == 0) {
			if (parse_match(ld, m, ctx, &r.match) < 0)
				bad = 1;
		} else {
			SERR(ld, m, "%s: unknown setting '%s'", ctx, key);
			bad = 1;
		}
	}
	if (config_setting_get_member(g, "paths") == NULL) {
		SERR(ld, g, "%s: no 'paths'", ctx);
		bad = 1;
	}
	if (!caps_given && !r.deny) {
		SERR(ld, g, "%s: an allow rule needs 'capabilities'", ctx);
		bad = 1;
	}
	if (!caps_given && r.deny)
		r.caps = ALL_CAPS;
	/* Only a deny can bind root: an allow "guardrail" would read as a
	 * restriction while granting. */
	if (r.guardrail && !r.deny) {
		SERR(ld, guard, "%s: 'guardrail' is for deny rules only", ctx);
		bad = 1;
	}
	/* Each capability must apply to at least one of the rule's paths, so
	 * that a rule never silently grants (or denies) nothing. */
	if (!bad && caps_given) {
		size_t j, k;
		int usable = 0;

		for (j = 0; j < r.npaths; j++)
			usable |= tsi_pol_caps_for_pattern(r.paths[j]);
		for (k = 0; k < NCAPS; k++)
			if ((r.caps & cap_names[k].cap) &&
			    !(usable & cap_names[k].cap)) {
				char where[256];

				tsi_pol_mounts_list(cap_names[k].cap, where,
				    sizeof(where));
				SERR(ld,
				    config_setting_get_member(g,
				        "capabilities"),
				    "%s: capability '%s' applies to none of "
				    "its paths "
				    "(%s is checked on %s)",
				    ctx, cap_names[k].name, cap_names[k].name,
				    where);
				bad = 1;
			}
	}
	if (bad || ld->oom) {
		tsi_pol_rule_clear(&r);
		return;
	}
	r.file = policy_xstrdup(ld, policy_file_of(ld, g));
	r.name = policy_xstrdup(ld, name);
	r.line = (int)config_setting_source_line(g);
	if (r.file == NULL || r.name == NULL || set_push_rule(ld, &r) < 0)
		tsi_pol_rule_clear(&r);
}

static void
ref_add(struct loader *ld, const char *role, const char *rule, const char *file,
    int line)
{
	struct ref *f;

	if (ld->nrefs == ld->refs_cap) {
		size_t nc = ld->refs_cap ? ld->refs_cap * 2 : 32;
		struct ref *nv = realloc(ld->refs, nc * sizeof(*nv));

		if (nv == NULL) {
			ld->oom = 1;
			return;
		}
		ld->refs = nv;
		ld->refs_cap = nc;
	}
	f = &ld->refs[ld->nrefs];
	f->role = policy_xstrdup(ld, role);
	f->rule = policy_xstrdup(ld, rule);
	f->file = policy_xstrdup(ld, file);
	f->line = line;
	if (f->role == NULL || f->rule == NULL || f->file == NULL) {
		free(f->role);
		free(f->rule);
		free(f->file);
		return;
	}
	ld->nrefs++;
}

void
policy_refs_free(struct loader *ld)
{
	size_t i;

	for (i = 0; i < ld->nrefs; i++) {
		free(ld->refs[i].role);
		free(ld->refs[i].rule);
		free(ld->refs[i].file);
	}
	free(ld->refs);
}

/* Every rule a role names must be defined (in any file). A rule that is
 * defined but invalid has been reported already. */
void
policy_check_refs(struct loader *ld)
{
	size_t i;

	for (i = 0; i < ld->nrefs; i++)
		if (seen_find(&ld->rules_seen, ld->refs[i].rule) == NULL)
			policy_lerr(ld, ld->refs[i].file, ld->refs[i].line,
			    "role '%s': unknown rule '%s'", ld->refs[i].role,
			    ld->refs[i].rule);
}

static void
parse_role(struct loader *ld, const config_setting_t *g)
{
	struct tsi_pol_role r;
	const char *name;
	char ctx[TSI_POL_NAME_MAX + 16];
	int i, n, bad = 0;

	memset(&r, 0, sizeof(r));
	r.ttl = DEFAULT_TTL;
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		SERR(ld, g, "each entry of 'roles' must be a group { ... }");
		return;
	}
	if ((name = get_name(ld, g, "role")) == NULL) {
		bad = 1;
		snprintf(ctx, sizeof(ctx), "role");
	} else {
		snprintf(ctx, sizeof(ctx), "role '%s'", name);
		if (check_dup(ld, &ld->roles_seen, g, "role", name) < 0)
			bad = 1;
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		const config_setting_t *m =
		    config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);

		if (key == NULL || strcmp(key, "name") == 0)
			continue;
		if (strcmp(key, "description") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_STRING) {
				SERR(ld, m,
				    "%s: 'description' must be a string", ctx);
				bad = 1;
			}
		} else if (strcmp(key, "rules") == 0) {
			size_t j;

			if (get_strlist(ld, m, ctx, 0, &r.rule_names,
			        &r.nrules) < 0) {
				bad = 1;
				continue;
			}
			for (j = 0; j < r.nrules; j++) {
				const config_setting_t *e =
				    config_setting_get_elem(m, (unsigned)j);

				if (!valid_name(r.rule_names[j])) {
					SERR(ld, e,
					    "%s: invalid rule name '%s'", ctx,
					    r.rule_names[j]);
					bad = 1;
				} else
					ref_add(ld, name ? name : "?",
					    r.rule_names[j],
					    policy_file_of(ld, e),
					    (int)config_setting_source_line(e));
			}
		} else if (strcmp(key, "token_ttl") == 0) {
			long long v;

			if (config_setting_type(m) == CONFIG_TYPE_INT)
				v = config_setting_get_int(m);
			else if (config_setting_type(m) == CONFIG_TYPE_INT64)
				v = config_setting_get_int64(m);
			else {
				SERR(ld, m,
				    "%s: 'token_ttl' must be an integer "
				    "(seconds)",
				    ctx);
				bad = 1;
				continue;
			}
			if (v < 1 || v > MAX_TTL) {
				SERR(ld, m,
				    "%s: 'token_ttl' must be between 1 and %d",
				    ctx, MAX_TTL);
				bad = 1;
				continue;
			}
			r.ttl = (long)v;
		} else if (strcmp(key, "match") == 0) {
			if (parse_match(ld, m, ctx, &r.match) < 0)
				bad = 1;
		} else {
			SERR(ld, m, "%s: unknown setting '%s'", ctx, key);
			bad = 1;
		}
	}
	if (config_setting_get_member(g, "rules") == NULL) {
		SERR(ld, g, "%s: no 'rules'", ctx);
		bad = 1;
	}
	if (bad || ld->oom) {
		tsi_pol_role_clear(&r);
		return;
	}
	r.file = policy_xstrdup(ld, policy_file_of(ld, g));
	r.name = policy_xstrdup(ld, name);
	r.line = (int)config_setting_source_line(g);
	if (r.file == NULL || r.name == NULL || set_push_role(ld, &r) < 0)
		tsi_pol_role_clear(&r);
}

void
policy_parse_list(struct loader *ld, const config_setting_t *s, int rules)
{
	int i, n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		SERR(ld, s, "'%s' must be a list ( { ... }, ... )",
		    config_setting_name(s));
		return;
	}
	n = config_setting_length(s);
	for (i = 0; i < n && !ld->oom; i++) {
		const config_setting_t *g =
		    config_setting_get_elem(s, (unsigned)i);

		if (rules)
			parse_rule(ld, g);
		else
			parse_role(ld, g);
	}
}

/*
 * Reads path into a NUL-terminated string (caller frees), at most
 * TSI_POL_FILE_MAX bytes, refusing NUL bytes and @include directives: a
 * policy set is exactly the files of its directory, and loading never reads
 * a file outside it. NULL with the error reported.
 */
