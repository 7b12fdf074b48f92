/*
 * policy.h - the location policy engine (CONTRACT "Policy language").
 *
 * A policy set is every *.conf file of a policy directory (libconfig syntax):
 * roles and rules. Evaluation is default deny; a matching deny rule wins over
 * any allow (deny rules apply to every role, listed in it or not; allow rules
 * only to the roles that list them; deny rules marked guardrail bind the root
 * token too); every decision names the rule that made it. docs/policy.md is the reference. A set is immutable
 * once loaded and reference counted, so a server can swap in a reloaded set
 * (SIGHUP) while requests still evaluate against the old one.
 */
#ifndef TSI_POLICY_H
#define TSI_POLICY_H

#include <stddef.h>
#include <jansson.h>

/* Capabilities, Vault's names plus audit. A bit set. */
enum tsi_cap {
	TSI_CAP_CREATE = 1 << 0,
	TSI_CAP_READ = 1 << 1,
	TSI_CAP_UPDATE = 1 << 2,
	TSI_CAP_DELETE = 1 << 3,
	TSI_CAP_LIST = 1 << 4,
	TSI_CAP_AUDIT = 1 << 5,
	TSI_CAP_PATCH = 1 << 6, /* Vault's: PATCH of secret/data */
};

/* "read" -> TSI_CAP_READ; 0 when unknown. */
int tsi_cap_from_name(const char *name);
const char *tsi_cap_name(int cap);

struct tsi_policy_set;

struct tsi_decision {
	int allowed;      /* 1 allow, 0 deny */
	char rule[128];   /* the deciding rule, or "default-deny" */
	char reason[256]; /* one line for logs, audit and `tsi policy eval` */
};

/* Loads every *.conf file of dir (in name order). On the first error returns
 * TSI_ERR_CONFIG with "file:line: reason" in err. *out: tsi_policy_unref. */
int tsi_policy_load_dir(const char *dir, struct tsi_policy_set **out, char *err,
    size_t errlen);

/* Checks every file of dir and reports every error, one "file:line: reason"
 * per call of report. Returns the number of errors (0: all good), or a
 * negative TSI_ERR_* when dir cannot be read. */
int tsi_policy_check_dir(const char *dir,
    void (*report)(const char *msg, void *arg), void *arg);

struct tsi_policy_set *tsi_policy_ref(struct tsi_policy_set *p);
void tsi_policy_unref(struct tsi_policy_set *p); /* accepts NULL */

/* Login check for role: the role must exist and its match (bound claims) must
 * hold for claims. On success fills *ttl with the role's token_ttl (seconds).
 * Returns TSI_OK (d->allowed = 1) or TSI_ERR_DENIED / TSI_ERR_NOT_FOUND with
 * d filled. */
int tsi_policy_login(const struct tsi_policy_set *p, const char *role,
    const json_t *claims, long *ttl, struct tsi_decision *d);

/* May the holder of role with these claims use capability cap on path?
 * path is the API path without "/v1/", e.g. "secret/data/medical/r1".
 * Always fills d; returns TSI_OK for allow, TSI_ERR_DENIED for deny.
 * role may be NULL: then every rule of the set is considered (for
 * `tsi policy eval` without --role); with a role, only its rules, and its
 * bound claims are checked again. A malformed path (leading '/', empty, "."
 * or ".." segments, control characters) is denied. KV v2 mapping (as
 * Vault): read/create/update/delete on secret/data/<p>, list (and metadata
 * read/delete) on secret/metadata/<p>, audit on sys/audit/releases.
 * All arguments are borrowed for the call; p may be shared by threads. */
int tsi_policy_eval(const struct tsi_policy_set *p, const char *role,
    const json_t *claims, const char *path, int cap, struct tsi_decision *d);

/* The rule names of a role, in order; borrowed from p. NULL if no role. */
const char *const *tsi_policy_role_rules(const struct tsi_policy_set *p,
    const char *role, size_t *n);

/* Counts of a loaded set (any pointer may be NULL). Added for `tsi policy
 * check` summaries and server logs. */
void tsi_policy_stats(const struct tsi_policy_set *p, size_t *nfiles,
    size_t *nroles, size_t *nrules);

/* The decision for the root token, which has no role: allow (rule "root"),
 * unless a guardrail applies, i.e. a deny rule written with
 * `guardrail = true;` (then deny, naming it). claims may be NULL or an empty
 * object: root has no claims, so a guardrail whose match names a claim, or
 * whose path has a {claim} template, applies to root on its paths (deny
 * rules fail closed). Deny rules without the flag do not bind root. A
 * malformed path, or a capability that does not apply to the path's mount,
 * is denied as in tsi_policy_eval. p may be NULL (no set: no guardrails,
 * allow). Always fills d; TSI_OK for allow, TSI_ERR_DENIED for deny. All
 * arguments borrowed for the call. */
int tsi_policy_eval_root(const struct tsi_policy_set *p, const json_t *claims,
    const char *path, int cap, struct tsi_decision *d);

/* Number of guardrails (deny rules with guardrail = true) of a set. */
size_t tsi_policy_guardrails(const struct tsi_policy_set *p);

/* A reload must never drop rules silently. Compares the set in force (prev)
 * with a newly loaded one (next): TSI_ERR_CONFIG, with "file: reason" in
 * err, when a file that defined rules or roles in prev is still there but
 * defines none in next (emptied, truncated, or only comments left: the shape
 * of a file caught while being written in place), or when next has no rules
 * or roles at all while prev had some (an empty or unmounted directory). A
 * file that is gone from the directory while others keep rules is a
 * deliberate removal and allowed. prev NULL: TSI_OK. Both sets borrowed. */
int tsi_policy_check_dropped(const struct tsi_policy_set *prev,
    const struct tsi_policy_set *next, char *err, size_t errlen);

/* Saves the files of p, the bytes that were loaded, as a policy directory
 * at path (the last good set, loaded again with tsi_policy_load_dir). path
 * is a symbolic link to a sibling directory "<path>.XXXXXX"; the new copy is
 * written and synced in a fresh sibling, then the link is replaced by
 * rename(2) and the old copy removed, so path always names one whole set.
 * Files are written 0600, directories 0700. TSI_OK, or TSI_ERR_IO (or
 * TSI_ERR_INVALID_ARG) with the reason in err. p borrowed. */
int tsi_policy_save(const struct tsi_policy_set *p, const char *path, char *err,
    size_t errlen);

/* A path prefix a program serves and the capabilities that make sense
 * under it. The policy library names no path itself: each program that
 * loads or evaluates policies registers its own (tsi-vault: its route
 * table's mounts, vault-plugin/mounts.c). */
struct tsi_policy_mount {
	const char *prefix; /* "secret/data/": a pattern's literal start
	                         * must hold it whole */
	int caps;           /* TSI_CAP_* */
};

/* Sets the mounts rule paths must fall under (m borrowed until the
 * process ends: a static table). Call once at start-up, before any policy
 * is loaded or evaluated and before threads start. Until it is called no
 * path falls under a mount: every rule path is refused on load and every
 * request denied. */
void tsi_policy_mounts_set(const struct tsi_policy_mount *m, size_t n);

/* Whether a Vault-style glob ("+" one segment, trailing "*" prefix) matches. */
int tsi_policy_path_match(const char *pattern, const char *path);

#endif /* TSI_POLICY_H */
