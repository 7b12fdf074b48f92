/*
 * policies.c - the policy set in force: loading it at start-up, checking a
 * reloaded one before main.c swaps it in, and keeping the last good set in
 * data_dir (docs/policy.md, "Reloads and the last good set").
 *
 * Two promises: a reload never drops rules silently (a file that had rules
 * and now has none is refused, the set in force stays), and a policy
 * directory broken while the server was down does not keep it down when a
 * last good set exists (it starts with that set, loudly).
 */
#include "vault.h"
#include "settings.h"
#include "policies.h"

#include "tsi/err.h"
#include "tsi/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LAST_GOOD "policy-last-good"
#define ERRLEN 1024

/* data_dir/policy-last-good into buf; 0 when there is no data_dir yet. */
static int
last_good_path(const struct vault *v, char *buf, size_t len)
{
	int n;

	if (v->set->data_dir == NULL)
		return 0;
	n = snprintf(buf, len, "%s/%s", v->set->data_dir, LAST_GOOD);
	return n > 0 && (size_t)n < len;
}

/* The last good set, or NULL when there is none (or it does not load:
 * logged, since then a broken directory keeps the server down). */
static struct tsi_policy_set *
last_good_load(const struct vault *v, char *path, size_t pathlen)
{
	struct tsi_policy_set *p = NULL;
	char err[ERRLEN];
	struct stat st;

	if (!last_good_path(v, path, pathlen))
		return NULL;
	if (lstat(path, &st) != 0) {
		if (errno != ENOENT)
			tsi_log(TSI_LOG_ERROR, "policy.last_good_unusable",
			    TSI_LS("path", path),
			    TSI_LS("error", strerror(errno)));
		return NULL;
	}
	if (tsi_policy_load_dir(path, &p, err, sizeof(err)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "policy.last_good_unusable",
		    TSI_LS("path", path), TSI_LS("error", err));
		return NULL;
	}
	return p;
}

static void
refused(struct vault *v, int dropped)
{
	__atomic_fetch_add(dropped ? &v->metrics.policy_refused_dropped
	                           : &v->metrics.policy_refused_invalid,
	    1, __ATOMIC_RELAXED);
	__atomic_store_n(&v->metrics.policy_stale, 1, __ATOMIC_RELAXED);
}

int
vault_policy_start(struct vault *v, char *err, size_t errlen)
{
	struct tsi_policy_set *np = NULL, *lg = NULL;
	char why[ERRLEN], path[4096];
	size_t nrules = 0;
	int r, dropped = 0;

	v->policy = NULL;
	if (v->set->policy_dir == NULL)
		return TSI_OK;
	r = tsi_policy_load_dir(v->set->policy_dir, &np, err, errlen);
	if (r == TSI_ERR_ALLOC)
		return r;
	lg = last_good_load(v, path, sizeof(path));
	if (r == TSI_OK) {
		if (lg == NULL ||
		    tsi_policy_check_dropped(lg, np, why, sizeof(why)) ==
		        TSI_OK) {
			tsi_policy_unref(lg);
			v->policy = np;
			return TSI_OK;
		}
		dropped = 1;
		tsi_policy_unref(np);
	} else {
		snprintf(why, sizeof(why), "%s", err);
		if (lg == NULL)
			return r;
	}
	/* Up with the last set that loaded rather than down: every request
	 * is still decided by a whole, validated set, the one in force before
	 * the stop. Loud, because the files on disk are not what runs. */
	refused(v, dropped);
	v->policy = lg;
	tsi_policy_stats(lg, NULL, NULL, &nrules);
	tsi_log(TSI_LOG_ERROR, "policy.start_last_good",
	    TSI_LS("policy_dir", v->set->policy_dir), TSI_LS("error", why),
	    TSI_LS("in_force", path), TSI_LI("rules", nrules),
	    TSI_LS("fix", "correct the policy directory, then SIGHUP"));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	return TSI_OK;
}

int
vault_policy_prepare(struct vault *v, struct tsi_policy_set **out)
{
	struct tsi_policy_set *np = NULL, *cur;
	char err[ERRLEN];

	*out = NULL;
	if (v->set->policy_dir == NULL)
		return 1;
	if (tsi_policy_load_dir(v->set->policy_dir, &np, err, sizeof(err)) !=
	    TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "reload.policy_failed",
		    TSI_LS("error", err),
		    TSI_LS("kept", "previous policy set"));
		refused(v, 0);
		return 0;
	}
	cur = vault_policy_get(v);
	if (tsi_policy_check_dropped(cur, np, err, sizeof(err)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "reload.policy_refused",
		    TSI_LS("policy_dir", v->set->policy_dir),
		    TSI_LS("error", err),
		    TSI_LS("kept", "previous policy set"));
		tsi_policy_unref(cur);
		tsi_policy_unref(np);
		refused(v, 1);
		return 0;
	}
	tsi_policy_unref(cur);
	*out = np;
	return 1;
}

void
vault_policy_keep(struct vault *v, int from_dir)
{
	struct tsi_policy_set *p;
	char path[4096], err[ERRLEN];

	if (from_dir)
		__atomic_store_n(&v->metrics.policy_stale, 0, __ATOMIC_RELAXED);
	else if (__atomic_load_n(&v->metrics.policy_stale, __ATOMIC_RELAXED))
		return; /* the set in force is the last good copy itself */
	if (!last_good_path(v, path, sizeof(path)) ||
	    (p = vault_policy_get(v)) == NULL)
		return;
	if (tsi_policy_save(p, path, err, sizeof(err)) != TSI_OK)
		tsi_log(TSI_LOG_ERROR, "policy.save_failed",
		    TSI_LS("error", err),
		    TSI_LS("effect",
		        "a restart with a broken policy directory "
		        "falls back to an older set, or none"));
	tsi_policy_unref(p);
}
