/*
 * Fuzzes the policy language: the input is one policy file. Loading must
 * either fail with "file:line: reason" or give a set whose evaluation is
 * well-defined for a fixed set of claims and paths.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tsi/err.h"
#include "tsi/policy.h"
#include "mounts.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/tsi-fuzz-policy-XXXXXX";
static char file[128];
static json_t *claims;

static void
ignore(const char *msg, void *arg)
{
	(void)arg;
	if (msg == NULL || strstr(msg, ".conf:") == NULL)
		abort(); /* every error must name the file and line */
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vault_policy_mounts_register();
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(file, sizeof(file), "%s/fuzz.conf", dir);
	claims = json_pack("{s:s, s:s, s:s, s:s, s:[s,s], s:s}", "cluster-name",
	    "hipaaCluster", "region", "eu-de", "datacenter", "dal05",
	    "namespace", "ns1", "images", "sha256:aa", "sha256:bb", "sub",
	    "spiffe://x/y");
	return claims ? 0 : -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "secret/data/medical/r1",
		"secret/data/tsi-rcn/eu-de/hipaaCluster/ns1/x",
		"secret/metadata/a/b", "sys/audit/releases",
		"secret/data/eu/x" };
	struct tsi_policy_set *p = NULL;
	struct tsi_decision d;
	char err[512];
	long ttl;
	size_t i;
	int fd;

	if ((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	(void)tsi_policy_check_dir(dir, ignore, NULL);
	if (tsi_policy_load_dir(dir, &p, err, sizeof(err)) == TSI_OK) {
		(void)tsi_policy_login(p, "demo", claims, &ttl, &d);
		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			int r = tsi_policy_eval(p, "demo", claims, paths[i],
			    TSI_CAP_READ, &d);
			if ((r == TSI_OK) != (d.allowed == 1) ||
			    d.rule[0] == '\0')
				abort();
			/* Root: allowed by "root", or denied by a named rule. */
			r = tsi_policy_eval_root(p, NULL, paths[i],
			    TSI_CAP_READ, &d);
			if ((r == TSI_OK) != (d.allowed == 1) ||
			    d.rule[0] == '\0' ||
			    (d.allowed && strcmp(d.rule, "root") != 0))
				abort();
		}
		/* A set never drops rules against itself. */
		if (tsi_policy_check_dropped(p, p, err, sizeof(err)) != TSI_OK)
			abort();
		tsi_policy_unref(p);
	}
	return 0;
}
