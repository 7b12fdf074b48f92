/*
 * policy_load_int.h - the loader state shared by policy_load.c (directory,
 * files, the resulting set) and policy_rules.c (the grammar of one rule or
 * role). Internal to lib/policy.
 */
#ifndef TSI_POLICY_LOAD_INT_H
#define TSI_POLICY_LOAD_INT_H

#include <libconfig.h>
#include <stddef.h>

#include "tsi/policy.h"

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
	const char *file; /* the file being parsed */
	struct tsi_policy_set *set;
	size_t rules_cap, roles_cap, files_cap;
	struct seen_list rules_seen;
	struct seen_list roles_seen;
	struct ref *refs;
	size_t nrefs, refs_cap;
};

/* Reports "file:line: message" (line 0: "file: message") and counts it. */
void policy_lerr(struct loader *ld, const char *file, int line, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
/* The file a setting came from (borrowed from libconfig or ld). */
const char *policy_file_of(const struct loader *ld, const config_setting_t *s);
/* strdup that records an allocation failure in ld->oom. Caller frees. */
char *policy_xstrdup(struct loader *ld, const char *s);

#define SERR(ld, s, ...) \
	policy_lerr((ld), policy_file_of((ld), (s)), \
	    (int)config_setting_source_line(s), __VA_ARGS__)

/* policy_rules.c */
/* Parses the "rules" (rules != 0) or "roles" list setting s into ld->set. */
void policy_parse_list(struct loader *ld, const config_setting_t *s, int rules);
/* Reports every role's reference to a rule that was never defined. */
void policy_check_refs(struct loader *ld);
void policy_refs_free(struct loader *ld);
void policy_seen_free(struct seen_list *l);
/* Grows vec (n used, *cap allocated, elements of size) by one slot at
 * least; NULL (ld->oom set) when out of memory, vec unchanged. */
void *policy_set_grow(struct loader *ld, void *vec, size_t n, size_t *cap,
    size_t size);
/* Frees v[0..n) and v. */
void policy_strv_free(char **v, size_t n);

#endif /* TSI_POLICY_LOAD_INT_H */
