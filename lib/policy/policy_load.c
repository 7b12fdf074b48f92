/*
 * policy_load.c - reads a policy directory into an immutable policy set.
 *
 * Every *.conf file of the directory (name order, byte-wise) is parsed with
 * libconfig; roles and rules may be spread over files, and a name defined
 * twice is an error wherever the two are. Everything is validated before a
 * set exists: a set that loaded is one the evaluator can trust (known
 * capabilities, valid patterns, every role's rules resolved). Errors are
 * "file:line: reason"; checking reports them all, loading keeps the first.
 * The grammar of one rule or role is policy_rules.c's.
 */
#include "policy_int.h"
#include "policy_load_int.h"
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

void
policy_lerr(struct loader *ld, const char *file, int line, const char *fmt, ...)
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

const char *
policy_file_of(const struct loader *ld, const config_setting_t *s)
{
	const char *f = config_setting_source_file(s);

	return f != NULL ? f : ld->file;
}

char *
policy_xstrdup(struct loader *ld, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		ld->oom = 1;
	return d;
}

static char *
read_policy_file(struct loader *ld, const char *path)
{
	FILE *f;
	struct stat st;
	char *text = NULL, *line;
	size_t n, size;
	int lineno = 1;

	if ((f = fopen(path, "r")) == NULL) {
		policy_lerr(ld, path, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0) {
		policy_lerr(ld, path, 0, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (st.st_size > TSI_POL_FILE_MAX) {
		policy_lerr(ld, path, 0, "file larger than %d bytes",
		    TSI_POL_FILE_MAX);
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
		policy_lerr(ld, path, 0, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (n != size) {
		policy_lerr(ld, path, 0, "file changed while being read");
		goto fail;
	}
	text[n] = '\0';
	if (memchr(text, '\0', n) != NULL) {
		policy_lerr(ld, path, 0, "file contains a NUL byte");
		goto fail;
	}
	for (line = text; line != NULL; lineno++) {
		const char *c = line + strspn(line, " \t\r");

		if (strncmp(c, "@include", 8) == 0) {
			policy_lerr(ld, path, lineno,
			    "@include is not supported in "
			    "policy files (put the file in the policy "
			    "directory)");
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
set_push_file(struct loader *ld, const char *name, char **text, size_t nrules,
    size_t nroles)
{
	struct tsi_policy_set *p = ld->set;
	struct tsi_pol_file *nv, *f;

	if ((nv = policy_set_grow(ld, p->files, p->nfiles, &ld->files_cap,
	         sizeof(*nv))) == NULL)
		return;
	p->files = nv;
	f = &p->files[p->nfiles];
	memset(f, 0, sizeof(*f));
	if ((f->name = policy_xstrdup(ld, name)) == NULL)
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
		policy_lerr(ld, name, 0, "path too long");
		return;
	}
	if ((text = read_policy_file(ld, path)) == NULL)
		return;
	ld->file = path;
	config_init(&cfg);
	if (config_read_string(&cfg, text) != CONFIG_TRUE) {
		policy_lerr(ld, path, config_error_line(&cfg), "%s",
		    config_error_text(&cfg));
		goto out;
	}
	root = config_root_setting(&cfg);
	n = config_setting_length(root);
	for (i = 0; i < n && !ld->oom; i++) {
		const config_setting_t *s =
		    config_setting_get_elem(root, (unsigned)i);
		const char *key = config_setting_name(s);

		if (key != NULL && strcmp(key, "rules") == 0)
			policy_parse_list(ld, s, 1);
		else if (key != NULL && strcmp(key, "roles") == 0)
			policy_parse_list(ld, s, 0);
		else
			SERR(ld, s,
			    "unknown setting '%s' (a policy file has roles "
			    "and rules)",
			    key ? key : "?");
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
				if (strcmp(p->rules[k].name,
				        r->rule_names[j]) == 0)
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
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
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
		policy_lerr(&ld, dir, 0, "cannot open policy directory: %s",
		    strerror(errno));
		r = TSI_ERR_IO;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!wanted(dir, de->d_name))
			continue;
		if (n == TSI_POL_FILES_MAX) {
			policy_lerr(&ld, dir, 0, "more than %d policy files",
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
		policy_check_refs(&ld);
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
	policy_strv_free(names, n);
	policy_seen_free(&ld.rules_seen);
	policy_seen_free(&ld.roles_seen);
	policy_refs_free(&ld);
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
tsi_policy_stats(const struct tsi_policy_set *p, size_t *nfiles, size_t *nroles,
    size_t *nrules)
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
