/*
 * policy_int.h - internals shared by the policy engine's files:
 * policy_load.c (reading and validating a directory), policy_glob.c (path and
 * value globs) and policy_eval.c (login and access decisions). Not a public
 * interface: only lib/policy*.c and the policy unit tests include it.
 */
#ifndef TSI_POLICY_INT_H
#define TSI_POLICY_INT_H

#include <stdatomic.h>
#include <stddef.h>

/* Limits: policy files are written by operators, but a set is loaded into a
 * server, so every size is bounded. */
#define TSI_POL_NAME_MAX 100      /* rule and role names */
#define TSI_POL_PATH_MAX 1024     /* a path pattern, and a path to evaluate */
#define TSI_POL_SEG_MAX 512       /* one expanded path segment */
#define TSI_POL_VALUE_PAT_MAX 256 /* one match pattern */
#define TSI_POL_LIST_MAX 1000     /* elements of one list setting */
#define TSI_POL_FILE_MAX (1024 * 1024) /* one policy file */
#define TSI_POL_FILES_MAX 4096         /* files in a policy directory */

/* One claim condition of a match group: claim = [ patterns ]. */
struct tsi_pol_cond {
	char *claim;
	char **pats; /* "!x" excludes x; "*" and "?" glob */
	size_t npats;
};

struct tsi_pol_match {
	struct tsi_pol_cond *conds;
	size_t nconds;
};

struct tsi_pol_rule {
	char *name;
	int deny; /* effect = "deny" */
	int caps; /* bit set of TSI_CAP_*; a deny rule without
	                   * capabilities has them all */
	char **paths;
	size_t npaths;
	struct tsi_pol_match match;
	int guardrail; /* deny rule that binds the root token too */
	char *file;
	int line;
};

struct tsi_pol_role {
	char *name;
	char **rule_names; /* as written, in order */
	size_t *rule_idx;  /* indexes into the set's rules */
	size_t nrules;
	long ttl;
	struct tsi_pol_match match;
	char *file;
	int line;
};

/* One file of a set as it was read: its bytes are what tsi_policy_save
 * writes as the last good set, and its counts are what
 * tsi_policy_check_dropped compares. */
struct tsi_pol_file {
	char *name; /* base name, as in the directory */
	char *text; /* the bytes that were parsed (NUL-terminated) */
	size_t len;
	size_t nrules, nroles;
};

struct tsi_policy_set {
	atomic_long refs;
	struct tsi_pol_rule *rules;
	size_t nrules;
	struct tsi_pol_role *roles;
	size_t nroles;
	struct tsi_pol_file *files;
	size_t nfiles;
};

/* Resolves the {claim} templates of a path pattern for one caller.
 * resolve returns the claim's literal value (NUL-terminated; may be written
 * into tmp) or NULL when the claim cannot stand for one path segment (absent,
 * not a string or integer, several values, empty, or holding '/').
 * When wild is set, a segment with such a template matches any one segment
 * (deny rules fail closed); otherwise it matches nothing. */
struct tsi_pol_tmpl {
	const char *(*resolve)(const char *name, size_t len, void *arg,
	    char *tmp, size_t tmplen);
	void *arg;
	int wild;
};

/* Vault path glob: trailing '*' is a prefix match, a "+" segment matches
 * exactly one non-empty segment, "{claim}" is replaced by the caller's value
 * (literally). t may be NULL: templates then match nothing. 1 match, 0 not. */
int tsi_pol_path_match(const char *pattern, const char *path,
    const struct tsi_pol_tmpl *t);

/* Glob on claim values: '*' any run of characters (including '/'), '?' one
 * character, everything else literal. Bounded: O(len(pat) * len(s)).
 * 1 match, 0 not. */
int tsi_pol_glob(const char *pat, const char *s);

/* A pattern list as in `match`: the value must match one of the positive
 * patterns (if there are any) and none of the "!" ones. 1 match, 0 not. */
int tsi_pol_value_match(char *const *pats, size_t npats, const char *value);

/* Checks a path pattern as written in a policy file. 0 when valid; otherwise
 * -1 and a reason (without file:line) in why. */
int tsi_pol_pattern_check(const char *pattern, char *why, size_t whylen);

/* Checks a path given to tsi_policy_eval: no leading '/', no empty, "." or
 * ".." segments, no control characters, bounded. 0 valid, -1 not. */
int tsi_pol_path_valid(const char *path);

/* 1 when name (len bytes) is a claim the policy language knows. */
int tsi_pol_claim_known(const char *name, size_t len);

/* Which capabilities make sense on a path pattern: those of the mount
 * (tsi_policy_mounts_set) whose prefix it starts with; 0 when none. */
int tsi_pol_caps_for_pattern(const char *pattern);
/* The prefixes of the mounts checked for cap (0: every mount), ", "
 * between them, into out (cut at outlen; "no mount registered" when none). */
void tsi_pol_mounts_list(int cap, char *out, size_t outlen);

/* Frees what a rule or role owns (not the struct itself). */
void tsi_pol_rule_clear(struct tsi_pol_rule *r);
void tsi_pol_role_clear(struct tsi_pol_role *r);

#endif /* TSI_POLICY_INT_H */
