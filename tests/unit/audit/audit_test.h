/* audit_test.h - helpers shared by the audit tests (header-only). */
#ifndef TSI_AUDIT_TEST_H
#define TSI_AUDIT_TEST_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "tsi/audit.h"
#include "tsi/err.h"

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static inline void
test_rmrf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under TMPDIR; the caller removes it with test_rmrf. */
static inline char *
test_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char tmpl[512];
	char *d;

	snprintf(tmpl, sizeof(tmpl), "%s/tsi-audit-XXXXXX", t ? t : "/tmp");
	d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static inline long long
test_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A record as tsi-vault would write it. */
static inline json_t *
test_rec(const char *op, const char *path, const char *decision,
    const char *dc, const char *cluster, const char *ns, const char *image)
{
	json_t *claims = json_pack("{s:s,s:s,s:s,s:[s],s:s}",
	    "datacenter", dc, "cluster-name", cluster, "namespace", ns,
	    "images", image, "sub", "spiffe://tsi.example/ns/x/sa/y");

	return json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:i}",
	    "op", op, "path", path, "version", 1, "decision", decision,
	    "rule", "medical-records", "reason", "matched",
	    "claims", claims, "accessor", "acc-1234", "remote", "127.0.0.1",
	    "request_id", "req-1", "status", 200);
}

#endif /* TSI_AUDIT_TEST_H */
