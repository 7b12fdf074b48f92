/*
 * policy_lastgood.c - what a server keeps of the policy sets it ran with.
 *
 * A reload must never drop rules silently: a policy file caught while an
 * editor or `: >` rewrites it in place is empty or holds only comments, and
 * libconfig reads that as a valid file without rules. tsi_policy_check_dropped
 * refuses such a set. tsi_policy_save keeps a copy of the files of the set in
 * force (the bytes that were parsed, not the files as they are now), so that
 * a server whose policy directory is broken at start-up can start with the
 * last set that loaded instead of staying down.
 */
#include "policy_int.h"
#include "tsi/err.h"
#include "tsi/policy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct tsi_pol_file *
find_file(const struct tsi_policy_set *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nfiles; i++)
		if (strcmp(p->files[i].name, name) == 0)
			return &p->files[i];
	return NULL;
}

int
tsi_policy_check_dropped(const struct tsi_policy_set *prev,
    const struct tsi_policy_set *next, char *err, size_t errlen)
{
	size_t i;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (next == NULL)
		return TSI_ERR_INVALID_ARG;
	if (prev == NULL)
		return TSI_OK;
	/* Every file gone at once is a failed mount or a wrong directory far
	 * more often than a decision; running without policies is chosen by
	 * leaving policy_dir out of the configuration. */
	if (next->nrules + next->nroles == 0 &&
	    prev->nrules + prev->nroles > 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
			    "the policy directory defines no "
			    "rules or roles (%zu file%s), but the set in force "
			    "has "
			    "%zu rule%s and %zu role%s",
			    next->nfiles, next->nfiles == 1 ? "" : "s",
			    prev->nrules, prev->nrules == 1 ? "" : "s",
			    prev->nroles, prev->nroles == 1 ? "" : "s");
		return TSI_ERR_CONFIG;
	}
	for (i = 0; i < prev->nfiles; i++) {
		const struct tsi_pol_file *o = &prev->files[i];
		const struct tsi_pol_file *n = find_file(next, o->name);

		if (o->nrules + o->nroles == 0 || n == NULL ||
		    n->nrules + n->nroles > 0)
			continue;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen,
			    "%s: defines no rules or roles, "
			    "but the set in force has %zu rule%s and %zu "
			    "role%s "
			    "from it (%s); write policy files by atomic "
			    "rename, "
			    "and remove a file to drop its rules",
			    o->name, o->nrules, o->nrules == 1 ? "" : "s",
			    o->nroles, o->nroles == 1 ? "" : "s",
			    n->len == 0
			        ? "empty file"
			        : "no entries: truncated or only comments");
		return TSI_ERR_CONFIG;
	}
	return TSI_OK;
}

static void
serr(char *err, size_t errlen, const char *what, const char *path)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
}

/* Writes len bytes to dir/name (new file, 0600) and syncs it. */
static int
write_synced(int dfd, const char *name, const char *text, size_t len)
{
	int fd, r = TSI_ERR_IO;
	size_t off = 0;

	if ((fd = openat(dfd, name,
	         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) <
	    0)
		return TSI_ERR_IO;
	while (len - off > 0) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto out;
	r = TSI_OK;
out:
	close(fd);
	return r;
}

/* Removes a copy made by tsi_policy_save: a flat directory of files. */
static void
remove_copy(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	(void)rmdir(dir);
}

/*
 * Removes the siblings "<base>.XXXXXX" of the link other than keep: the copy
 * it pointed to before, and any a crash left half-written.
 */
static void
remove_old_copies(const char *parent, const char *base, const char *keep)
{
	size_t bl = strlen(base);
	DIR *d = opendir(parent);
	struct dirent *de;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;

		if (strncmp(n, base, bl) != 0 || n[bl] != '.' ||
		    strlen(n + bl + 1) != 6 || strcmp(n, keep) == 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", parent, n) >=
		    (int)sizeof(path))
			continue;
		remove_copy(path);
	}
	closedir(d);
}

int
tsi_policy_save(const struct tsi_policy_set *p, const char *path, char *err,
    size_t errlen)
{
	char parent[PATH_MAX], copy[PATH_MAX], tmp[PATH_MAX];
	const char *base, *slash;
	int dfd = -1, pfd = -1, r = TSI_ERR_IO;
	size_t i;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (p == NULL || path == NULL || (slash = strrchr(path, '/')) == NULL ||
	    slash[1] == '\0' || (size_t)(slash - path) >= sizeof(parent)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "policy copy: bad path");
		return TSI_ERR_INVALID_ARG;
	}
	if (slash == path) {
		parent[0] = '/';
		parent[1] = '\0';
	} else {
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
	}
	base = slash + 1;
	if (snprintf(copy, sizeof(copy), "%s.XXXXXX", path) >=
	        (int)sizeof(copy) ||
	    snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "policy copy: path too long");
		return TSI_ERR_INVALID_ARG;
	}
	if (mkdtemp(copy) == NULL) {
		serr(err, errlen, "cannot create", copy);
		return TSI_ERR_IO;
	}
	if ((dfd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		serr(err, errlen, "cannot open", copy);
		goto out;
	}
	for (i = 0; i < p->nfiles; i++)
		if (write_synced(dfd, p->files[i].name, p->files[i].text,
		        p->files[i].len) != TSI_OK) {
			serr(err, errlen, "cannot write a policy file in",
			    copy);
			goto out;
		}
	if (fsync(dfd) != 0) {
		serr(err, errlen, "cannot sync", copy);
		goto out;
	}
	/* The link names the copy by its base name, so that the data
	 * directory can be moved as a whole. */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		serr(err, errlen, "cannot remove", tmp);
		goto out;
	}
	if (symlink(copy + (base - path), tmp) != 0) {
		serr(err, errlen, "cannot create", tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		serr(err, errlen, "cannot replace", path);
		(void)unlink(tmp);
		goto out;
	}
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(pfd) != 0) {
		serr(err, errlen, "cannot sync", parent);
		/* The link is in place; only its durability is in doubt. */
		r = TSI_ERR_IO;
		copy[0] = '\0';
		goto out;
	}
	remove_old_copies(parent, base, copy + (base - path));
	copy[0] = '\0'; /* in use */
	r = TSI_OK;
out:
	if (dfd >= 0)
		close(dfd);
	if (pfd >= 0)
		close(pfd);
	if (copy[0] != '\0')
		remove_copy(copy);
	return r;
}
