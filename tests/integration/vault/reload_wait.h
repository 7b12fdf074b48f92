/*
 * reload_wait.h - SIGHUP a running tsi-vault and wait until the reload is
 * reported in /v1/sys/metrics (tsi_vault_policy_reloads_total grows), and
 * read single metrics. For the policy reload and guardrail tests.
 */
#ifndef TSI_TEST_VAULT_RELOAD_WAIT_H
#define TSI_TEST_VAULT_RELOAD_WAIT_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* The value of the sample whose name and labels are exactly name (e.g.
 * "tsi_vault_policy_stale"), summed when prefix is set and the line only
 * starts with name. -1 when /v1/sys/metrics did not answer 200. */
static inline long long
rw_metric(struct vfx *f, const char *name, int prefix)
{
	struct vresp r;
	long long sum = 0;
	size_t nl = strlen(name);
	const char *l;

	if (vfx_http(f, NULL, "GET", "/v1/sys/metrics?format=prometheus", NULL,
	        NULL, &r) != 0 ||
	    r.status != 200 || r.body == NULL) {
		vresp_clear(&r);
		return -1;
	}
	for (l = r.body; l != NULL;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *sp;

		if (strncmp(l, name, nl) != 0 || (!prefix && l[nl] != ' ') ||
		    (sp = strchr(l + nl, ' ')) == NULL)
			continue;
		sum += strtoll(sp + 1, NULL, 10);
	}
	vresp_clear(&r);
	return sum;
}

/* Reloads counted so far, whatever their result. */
static inline long long
rw_reloads(struct vfx *f)
{
	return rw_metric(f, "tsi_vault_policy_reloads_total{", 1);
}

/* SIGHUP, then waits (at most 60 s, for a loaded machine) until the
 * reload is counted. 0 when it was. */
static inline int
rw_reload(struct vfx *f)
{
	long long n0 = rw_reloads(f);
	struct timespec t0, t;

	if (n0 < 0 || f->pid <= 0 || kill(f->pid, SIGHUP) != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (rw_reloads(f) > n0)
			return 0;
		usleep(20 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 60);
	return -1;
}

/* Whether the server's log holds text. */
static inline int
rw_log_has(const struct vfx *f, const char *text)
{
	FILE *fp = fopen(f->log, "r");
	char line[8192];
	int found = 0;

	if (fp == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = strstr(line, text) != NULL;
	fclose(fp);
	return found;
}

#endif
