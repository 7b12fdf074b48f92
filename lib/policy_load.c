/*
 * policy_load.c - reads a policy directory into an immutable policy set.
 *
 * Every *.conf file of the directory (name order, byte-wise) is parsed with
 * libconfig; roles and rules may be spread over files, and a name defined
 * twice is an error wherever the two are. Everything is validated before a
 * set exists: a set that loaded is one the evaluator can trust (known
 * capabilities, valid patterns, every role's rules resolved). Errors are
 * "file:line: reason"; checking reports them all, loading keeps the first.
 */
#include "policy_int.h"
#include "tsi/err.h"
#include "tsi/policy.h"

#include <dirent.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
#define ALL_CAPS (TSI_CAP_CREATE | TSI_CAP_READ | TSI_CAP_UPDATE | \
    TSI_CAP_DELETE | TSI_CAP_LIST | TSI_CAP_AUDIT | TSI_CAP_PATCH)

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

/* A name seen while loading, valid or not: for duplicates and references. */
struct seen {
	char *name;
	char *file;
	int line;
};

struct seen_list {
	struct seen *v;
	size_t n, cap;
};

/* A role's reference to a rule, checked once every file is read. */
struct ref {
	char *role;
	char *rule;
	char *file;
	int line;
};

struct loader {
	void (*report)(const char *msg, void *arg);
	void *arg;
	int nerr;
	int oom;
	const char *file;            /* the file being parsed */
	struct tsi_policy_set *set;
	size_t rules_cap, roles_cap, files_cap;
	struct seen_list rules_seen;
	struct seen_list roles_seen;
	struct ref *refs;
	size_t nrefs, refs_cap;
};

static void lerr(struct loader *ld, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
lerr(struct loader *ld, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (line > 0)
		n = snprintf(msg, sizeof(msg), "%s:%d: ", file, line);
	else
		n = snprintf(msg, sizeof(msg), "%s: ", file);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	if (vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap) < 0)
		msg[n] = '\0';
	va_end(ap);
	ld->nerr++;
	if (ld->report != NULL)
		ld->report(msg, ld->arg);
}

static const char *
file_of(const struct loader *ld, const config_setting_t *s)
{
	const char *f = config_setting_source_file(s);

	return f != NULL ? f : ld->file;
}

#define SERR(ld, s, ...) \
	lerr((ld), file_of((ld), (s)), (int)config_setting_source_line(s), \
	    __VA_ARGS__)

static char *
xstrdup(struct loader *ld, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		ld->oom = 1;
	return d;
}

static void
strv_free(char **v, size_t n)
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
		strv_free(m->conds[i].pats, m->conds[i].npats);
	}
	free(m->conds);
	m->conds = NULL;
	m->nconds = 0;
}

void
tsi_pol_rule_clear(struct tsi_pol_rule *r)
{
	free(r->name);
	strv_free(r->paths, r->npaths);
	match_clear(&r->match);
	free(r->file);
	memset(r, 0, sizeof(*r));
}

void
tsi_pol_role_clear(struct tsi_pol_role *r)
{
	strv_free(r->rule_names, r->nrules);
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
	l->v[l->n].name = xstrdup(ld, name);
	l->v[l->n].file = xstrdup(ld, file);
	if (l->v[l->n].name == NULL || l->v[l->n].file == NULL) {
		free(l->v[l->n].name);
		free(l->v[l->n].file);
		return;
	}
	l->v[l->n].line = line;
	l->n++;
}

static void
seen_free(struct seen_list *l)
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
		    (v[0] = xstrdup(ld, config_setting_get_string(s))) == NULL) {
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
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			SERR(ld, e, "%s: '%s' must be a list of strings", ctx, key);
			return -1;
		}
	}
	if ((v = calloc(n, sizeof(*v))) == NULL) {
		ld->oom = 1;
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if ((v[i] = xstrdup(ld, config_setting_get_string(e))) == NULL) {
			strv_free(v, i);
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
		SERR(ld, g, "%s: 'match' is empty (leave it out to match any caller)",
		    ctx);
		return -1;
	}
	if ((m->conds = calloc((size_t)n, sizeof(*m->conds))) == NULL) {
		ld->oom = 1;
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *c = config_setting_get_elem(g, (unsigned)i);
		const char *claim = config_setting_name(c);
		struct tsi_pol_cond *cond = &m->conds[m->nconds];
		size_t j;
		int pbad = 0;

		if (claim == NULL || !tsi_pol_claim_known(claim, strlen(claim))) {
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
				SERR(ld, c, "%s: empty pattern in match '%s'", ctx,
				    claim);
				pbad = 1;
			} else if (strlen(p) > TSI_POL_VALUE_PAT_MAX) {
				SERR(ld, c, "%s: pattern longer than %d characters in match '%s'",
				    ctx, TSI_POL_VALUE_PAT_MAX, claim);
				pbad = 1;
			} else if (has_ctl(p)) {
				SERR(ld, c, "%s: control character in match '%s'",
				    ctx, claim);
				pbad = 1;
			}
		}
		if (pbad || (cond->claim = xstrdup(ld, claim)) == NULL) {
			strv_free(cond->pats, cond->npats);
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
		SERR(ld, s, "invalid %s name '%s' (letters, digits, '.', '_', '-'; "
		    "at most %d characters; not 'default-deny')", what, name,
		    TSI_POL_NAME_MAX);
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
	seen_add(ld, l, name, file_of(ld, g), (int)config_setting_source_line(g));
	return 0;
}

/* vec (n elements of size bytes, room for *cap) with room for one more:
 * vec itself, or a doubled copy (*cap updated). NULL (and ld->oom) when
 * memory runs out; vec is then unchanged. */
static void *
set_grow(struct loader *ld, void *vec, size_t n, size_t *cap, size_t size)
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

	if ((nv = set_grow(ld, p->rules, p->nrules, &ld->rules_cap,
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

	if ((nv = set_grow(ld, p->roles, p->nroles, &ld->roles_cap,
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
			SERR(ld, s, "%s: 'effect' must be \"allow\" or \"deny\"", ctx);
			bad = 1;
		}
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);

		if (key == NULL)
			continue;
		if (strcmp(key, "name") == 0 || strcmp(key, "effect") == 0)
			continue;
		if (strcmp(key, "description") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_STRING) {
				SERR(ld, m, "%s: 'description' must be a string", ctx);
				bad = 1;
			}
		} else if (strcmp(key, "guardrail") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
				SERR(ld, m, "%s: 'guardrail' must be true or false",
				    ctx);
				bad = 1;
				continue;
			}
			r.guardrail = config_setting_get_bool(m);
			guard = m;
		} else if (strcmp(key, "paths") == 0) {
			size_t j;

			if (get_strlist(ld, m, ctx, 0, &r.paths, &r.npaths) < 0) {
				bad = 1;
				continue;
			}
			for (j = 0; j < r.npaths; j++) {
				char why[512];

				if (tsi_pol_pattern_check(r.paths[j], why,
				    sizeof(why)) < 0) {
					SERR(ld, config_setting_get_elem(m,
					    (unsigned)j), "%s: %s", ctx, why);
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
					SERR(ld, config_setting_get_elem(m,
					    (unsigned)j), "%s: unknown capability '%s' "
					    "(create, read, update, delete, list, audit)",
					    ctx, caps[j]);
					bad = 1;
				}
				r.caps |= c;
			}
			strv_free(caps, ncaps);
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
				SERR(ld, config_setting_get_member(g, "capabilities"),
				    "%s: capability '%s' applies to none of its paths "
				    "(%s is checked on %s)", ctx, cap_names[k].name,
				    cap_names[k].name, where);
				bad = 1;
			}
	}
	if (bad || ld->oom) {
		tsi_pol_rule_clear(&r);
		return;
	}
	r.file = xstrdup(ld, file_of(ld, g));
	r.name = xstrdup(ld, name);
	r.line = (int)config_setting_source_line(g);
	if (r.file == NULL || r.name == NULL || set_push_rule(ld, &r) < 0)
		tsi_pol_rule_clear(&r);
}

static void
ref_add(struct loader *ld, const char *role, const char *rule,
    const char *file, int line)
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
	f->role = xstrdup(ld, role);
	f->rule = xstrdup(ld, rule);
	f->file = xstrdup(ld, file);
	f->line = line;
	if (f->role == NULL || f->rule == NULL || f->file == NULL) {
		free(f->role);
		free(f->rule);
		free(f->file);
		return;
	}
	ld->nrefs++;
}

static void
refs_free(struct loader *ld)
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
static void
check_refs(struct loader *ld)
{
	size_t i;

	for (i = 0; i < ld->nrefs; i++)
		if (seen_find(&ld->rules_seen, ld->refs[i].rule) == NULL)
			lerr(ld, ld->refs[i].file, ld->refs[i].line,
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
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *key = config_setting_name(m);

		if (key == NULL || strcmp(key, "name") == 0)
			continue;
		if (strcmp(key, "description") == 0) {
			if (config_setting_type(m) != CONFIG_TYPE_STRING) {
				SERR(ld, m, "%s: 'description' must be a string", ctx);
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
					SERR(ld, e, "%s: invalid rule name '%s'",
					    ctx, r.rule_names[j]);
					bad = 1;
				} else
					ref_add(ld, name ? name : "?",
					    r.rule_names[j], file_of(ld, e),
					    (int)config_setting_source_line(e));
			}
		} else if (strcmp(key, "token_ttl") == 0) {
			long long v;

			if (config_setting_type(m) == CONFIG_TYPE_INT)
				v = config_setting_get_int(m);
			else if (config_setting_type(m) == CONFIG_TYPE_INT64)
				v = config_setting_get_int64(m);
			else {
				SERR(ld, m, "%s: 'token_ttl' must be an integer (seconds)",
				    ctx);
				bad = 1;
				continue;
			}
			if (v < 1 || v > MAX_TTL) {
				SERR(ld, m, "%s: 'token_ttl' must be between 1 and %d",
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
	r.file = xstrdup(ld, file_of(ld, g));
	r.name = xstrdup(ld, name);
	r.line = (int)config_setting_source_line(g);
	if (r.file == NULL || r.name == NULL || set_push_role(ld, &r) < 0)
		tsi_pol_role_clear(&r);
}

static void
parse_list(struct loader *ld, const config_setting_t *s, int rules)
{
	int i, n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		SERR(ld, s, "'%s' must be a list ( { ... }, ... )",
		    config_setting_name(s));
		return;
	}
	n = config_setting_length(s);
	for (i = 0; i < n && !ld->oom; i++) {
		const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);

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
static char *
read_policy_file(struct loader *ld, const char *path)
{
	FILE *f;
	struct stat st;
	char *text = NULL, *line;
	size_t n, size;
	int lineno = 1;

	if ((f = fopen(path, "r")) == NULL) {
		lerr(ld, path, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0) {
		lerr(ld, path, 0, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (st.st_size > TSI_POL_FILE_MAX) {
		lerr(ld, path, 0, "file larger than %d bytes", TSI_POL_FILE_MAX);
		goto fail;
	}
	size = (size_t)st.st_size;
	if ((text = malloc(size + 2)) == NULL) {
		ld->oom = 1;
		goto fail;
	}
	/* One byte more than the size: a file that grew is noticed. */
	n = fread(text, 1, size + 1, f);
	if (ferror(f)) {
		lerr(ld, path, 0, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (n != size) {
		lerr(ld, path, 0, "file changed while being read");
		goto fail;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		lerr(ld, path, 0, "file contains a NUL byte");
		goto fail;
	}
	for (line = text; line != NULL; lineno++) {
		const char *c = line + strspn(line, " \t\r");

		if (strncmp(c, "@include", 8) == 0) {
			lerr(ld, path, lineno, "@include is not supported in "
			    "policy files (put the file in the policy directory)");
			goto fail;
		}
		if ((line = strchr(line, '\n')) != NULL)
			line++;
	}
	fclose(f);
	return text;
fail:
	free(text);
	fclose(f);
	return NULL;
}

/* Records a parsed file in the set; takes *text (set to NULL) on success,
 * sets ld->oom when memory runs out. */
static void
set_push_file(struct loader *ld, const char *name, char **text,
    size_t nrules, size_t nroles)
{
	struct tsi_policy_set *p = ld->set;
	struct tsi_pol_file *nv, *f;

	if ((nv = set_grow(ld, p->files, p->nfiles, &ld->files_cap,
	    sizeof(*nv))) == NULL)
		return;
	p->files = nv;
	f = &p->files[p->nfiles];
	memset(f, 0, sizeof(*f));
	if ((f->name = xstrdup(ld, name)) == NULL)
		return;
	f->text = *text;
	f->len = strlen(*text);
	*text = NULL;
	f->nrules = nrules;
	f->nroles = nroles;
	p->nfiles++;
}

static void
parse_file(struct loader *ld, const char *dir, const char *name)
{
	char path[4096];
	char *text = NULL;
	config_t cfg;
	const config_setting_t *root;
	struct tsi_policy_set *p = ld->set;
	size_t rules0 = p->nrules, roles0 = p->nroles;
	int i, n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path)) {
		lerr(ld, name, 0, "path too long");
		return;
	}
	if ((text = read_policy_file(ld, path)) == NULL)
		return;
	ld->file = path;
	config_init(&cfg);
	if (config_read_string(&cfg, text) != CONFIG_TRUE) {
		lerr(ld, path, config_error_line(&cfg), "%s",
		    config_error_text(&cfg));
		goto out;
	}
	root = config_root_setting(&cfg);
	n = config_setting_length(root);
	for (i = 0; i < n && !ld->oom; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *key = config_setting_name(s);

		if (key != NULL && strcmp(key, "rules") == 0)
			parse_list(ld, s, 1);
		else if (key != NULL && strcmp(key, "roles") == 0)
			parse_list(ld, s, 0);
		else
			SERR(ld, s, "unknown setting '%s' (a policy file has roles "
			    "and rules)", key ? key : "?");
	}
	set_push_file(ld, name, &text, p->nrules - rules0, p->nroles - roles0);
out:
	config_destroy(&cfg);
	free(text);
	ld->file = NULL;
}

/* Resolves every valid role's rule names to indexes; drops roles that name
 * a rule that is unknown or invalid (check_refs and parse_rule report). */
static void
resolve_roles(struct loader *ld)
{
	struct tsi_policy_set *p = ld->set;
	size_t i, j, k, kept = 0;

	for (i = 0; i < p->nroles; i++) {
		struct tsi_pol_role *r = &p->roles[i];
		int bad = 0;

		if ((r->rule_idx = calloc(r->nrules, sizeof(*r->rule_idx))) ==
		    NULL) {
			ld->oom = 1;
			return;
		}
		for (j = 0; j < r->nrules; j++) {
			for (k = 0; k < p->nrules; k++)
				if (strcmp(p->rules[k].name, r->rule_names[j]) == 0)
					break;
			if (k < p->nrules) {
				r->rule_idx[j] = k;
				continue;
			}
			bad = 1;
		}
		if (bad)
			tsi_pol_role_clear(r);
		else
			p->roles[kept++] = *r;
	}
	p->nroles = kept;
}

static void
set_free(struct tsi_policy_set *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrules; i++)
		tsi_pol_rule_clear(&p->rules[i]);
	for (i = 0; i < p->nroles; i++)
		tsi_pol_role_clear(&p->roles[i]);
	for (i = 0; i < p->nfiles; i++) {
		free(p->files[i].name);
		free(p->files[i].text);
	}
	free(p->rules);
	free(p->roles);
	free(p->files);
	free(p);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
wanted(const char *dir, const char *name)
{
	size_t n = strlen(name);
	char path[4096];
	struct stat st;

	if (name[0] == '.' || n < 6 || strcmp(name + n - 5, ".conf") != 0)
		return 0;
	/* stat, not lstat: ConfigMap volumes are symlinks to regular files. */
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return 1; /* parse_file reports it */
	return stat(path, &st) != 0 || S_ISREG(st.st_mode);
}

/*
 * Loads dir. Returns the number of errors (each reported), or a negative
 * TSI_ERR_* (dir unreadable, out of memory). *out is set only when there
 * were no errors.
 */
static int
load(const char *dir, void (*report)(const char *, void *), void *arg,
    struct tsi_policy_set **out)
{
	struct loader ld;
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int r;

	memset(&ld, 0, sizeof(ld));
	ld.report = report;
	ld.arg = arg;
	if (dir == NULL)
		return TSI_ERR_INVALID_ARG;
	if ((ld.set = calloc(1, sizeof(*ld.set))) == NULL)
		return TSI_ERR_ALLOC;
	atomic_init(&ld.set->refs, 1);
	if ((d = opendir(dir)) == NULL) {
		lerr(&ld, dir, 0, "cannot open policy directory: %s",
		    strerror(errno));
		r = TSI_ERR_IO;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!wanted(dir, de->d_name))
			continue;
		if (n == TSI_POL_FILES_MAX) {
			lerr(&ld, dir, 0, "more than %d policy files",
			    TSI_POL_FILES_MAX);
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = realloc(names, nc * sizeof(*nv));

			if (nv == NULL) {
				r = TSI_ERR_ALLOC;
				goto out;
			}
			names = nv;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n && !ld.oom; i++)
		parse_file(&ld, dir, names[i]);
	if (!ld.oom)
		check_refs(&ld);
	if (!ld.oom)
		resolve_roles(&ld);
	if (ld.oom) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	r = ld.nerr;
	if (r == 0 && out != NULL) {
		*out = ld.set;
		ld.set = NULL; /* transferred */
	}
out:
	if (d != NULL)
		closedir(d);
	strv_free(names, n);
	seen_free(&ld.rules_seen);
	seen_free(&ld.roles_seen);
	refs_free(&ld);
	set_free(ld.set);
	return r;
}

struct first_err {
	char *buf;
	size_t len;
	int have;
};

static void
keep_first(const char *msg, void *arg)
{
	struct first_err *f = arg;

	if (f->have || f->buf == NULL || f->len == 0)
		return;
	snprintf(f->buf, f->len, "%s", msg);
	f->have = 1;
}

int
tsi_policy_load_dir(const char *dir, struct tsi_policy_set **out, char *err,
    size_t errlen)
{
	struct first_err f = { err, errlen, 0 };
	int r;

	if (out == NULL)
		return TSI_ERR_INVALID_ARG;
	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	r = load(dir, keep_first, &f, out);
	if (r > 0)
		return TSI_ERR_CONFIG;
	if (r == TSI_ERR_ALLOC && err != NULL && errlen > 0)
		snprintf(err, errlen, "%s: out of memory", dir);
	return r;
}

int
tsi_policy_check_dir(const char *dir,
    void (*report)(const char *msg, void *arg), void *arg)
{
	return load(dir, report, arg, NULL);
}

struct tsi_policy_set *
tsi_policy_ref(struct tsi_policy_set *p)
{
	if (p != NULL)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void
tsi_policy_unref(struct tsi_policy_set *p)
{
	if (p == NULL)
		return;
	/* acq_rel: the last owner sees every other owner's reads done. */
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		set_free(p);
}

void
tsi_policy_stats(const struct tsi_policy_set *p, size_t *nfiles,
    size_t *nroles, size_t *nrules)
{
	if (nfiles != NULL)
		*nfiles = p ? p->nfiles : 0;
	if (nroles != NULL)
		*nroles = p ? p->nroles : 0;
	if (nrules != NULL)
		*nrules = p ? p->nrules : 0;
}

const char *const *
tsi_policy_role_rules(const struct tsi_policy_set *p, const char *role,
    size_t *n)
{
	size_t i;

	if (n != NULL)
		*n = 0;
	if (p == NULL || role == NULL)
		return NULL;
	for (i = 0; i < p->nroles; i++)
		if (strcmp(p->roles[i].name, role) == 0) {
			if (n != NULL)
				*n = p->roles[i].nrules;
			return (const char *const *)p->roles[i].rule_names;
		}
	return NULL;
}
