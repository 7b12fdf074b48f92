/*
 * policy_dir.h - temporary policy directories for the policy unit tests
 * that write files (test_policy_guard.c, test_policy_lastgood.c).
 */
#ifndef TSI_TEST_POLICY_DIR_H
#define TSI_TEST_POLICY_DIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Removes dir and what is under it (plain files, links, directories). */
static inline void
pd_rm(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[1024];

	if (d == NULL) {
		(void)unlink(dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >=
		    (int)sizeof(p))
			continue;
		if (unlink(p) != 0)
			pd_rm(p);
	}
	closedir(d);
	rmdir(dir);
}

/* A fresh directory under TMPDIR into dir[len]; 0 on success. */
static inline int
pd_make(char *dir, size_t len)
{
	const char *base = getenv("TMPDIR");

	int n =
	    snprintf(dir, len, "%s/tsi-policy-XXXXXX", base ? base : "/tmp");

	if (n < 0 || (size_t)n >= len)
		return -1;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

/* Writes text to dir/name (replacing it); 0 on success. */
static inline int
pd_write(const char *dir, const char *name, const char *text)
{
	char p[1024];
	FILE *f;
	int r;

	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p) ||
	    (f = fopen(p, "w")) == NULL)
		return -1;
	r = fputs(text, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

#endif
