/*
 * policy_eval.c - how fast the policy engine loads a set and decides.
 *
 *   policy_eval [--dir DIR | --synthetic N] [--seconds S]
 *
 * --dir: a policy directory (default policies/, with the demo claims).
 * --synthetic N: writes N allow rules with templates and matches, plus one
 * deny rule, into a temporary directory, and one role listing them all; the
 * request then matches only the last rule (the worst case: every rule is
 * tried). Prints one JSON line: load time, evaluations per second and the
 * decision (so a wrong set shows up as a wrong decision, not a fast one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tsi/err.h"
#include "tsi/policy.h"
#include "mounts.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
write_synthetic(const char *dir, int n)
{
	char path[512];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/rules.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f,
	    "rules = (\n  { name = \"geo\"; effect = \"deny\"; "
	    "paths = [ \"secret/data/eu/*\" ]; match = { region = [ \"!eu-*\" "
	    "]; }; }");
	for (i = 0; i < n; i++)
		fprintf(f,
		    ",\n  { name = \"r%d\"; paths = [ "
		    "\"secret/data/tsi-rcn/{region}/{cluster-name}/{namespace}/"
		    "app%d/*\" ]; "
		    "capabilities = [ \"read\" ]; match = { images = [ "
		    "\"sha256:%064d\" ]; "
		    "cluster-name = [ \"c*\" ]; datacenter = [ \"dal0?\", "
		    "\"!dal09\" ]; }; }",
		    i, i, i);
	fprintf(f, "\n);\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/roles.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "roles = ( { name = \"all\"; rules = [ ");
	for (i = 0; i < n; i++)
		fprintf(f, "%s\"r%d\"", i ? ", " : "", i);
	fprintf(f, " ]; } );\n");
	fclose(f);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = "policies", *role = "demo";
	char tmp[] = "/tmp/tsi-bench-policy-XXXXXX", path[256], err[1024];
	char img[80];
	struct tsi_policy_set *p = NULL;
	struct tsi_decision d;
	json_t *claims;
	double secs = 2, t0, t1, load_ms;
	long iters = 0;
	int synthetic = 0, i, r;

	vault_policy_mounts_register();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--synthetic") == 0 && i + 1 < argc)
			synthetic = atoi(argv[++i]);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else {
			fprintf(stderr,
			    "usage: policy_eval [--dir DIR | "
			    "--synthetic N] [--seconds S]\n");
			return 2;
		}
	}
	snprintf(img, sizeof(img),
	    "sha256:"
	    "4f5a9c1e2b7d3a6f8e0c4b2a1d9f7e5c3b1a0f8e6d4c2b0a9f7e5d3c1b0a8f6e");
	snprintf(path, sizeof(path), "secret/data/medical/r1");
	if (synthetic > 0) {
		if (mkdtemp(tmp) == NULL ||
		    write_synthetic(tmp, synthetic) != 0) {
			perror("policy_eval");
			return 1;
		}
		dir = tmp;
		role = "all";
		snprintf(img, sizeof(img), "sha256:%064d", synthetic - 1);
		snprintf(path, sizeof(path),
		    "secret/data/tsi-rcn/eu-de/c1/ns/app%d/key", synthetic - 1);
	}
	claims = json_pack("{s:s, s:[s], s:s, s:s, s:s, s:s}", "sub",
	    "spiffe://bench/ns/ns/sa/x", "images", img, "cluster-name",
	    synthetic ? "c1" : "hipaaCluster", "region", "eu-de", "datacenter",
	    "dal05", "namespace", "ns");
	t0 = now();
	r = tsi_policy_load_dir(dir, &p, err, sizeof(err));
	load_ms = (now() - t0) * 1e3;
	if (r != TSI_OK) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	t0 = now();
	do {
		for (i = 0; i < 1000; i++)
			tsi_policy_eval(p, role, claims, path, TSI_CAP_READ,
			    &d);
		iters += 1000;
		t1 = now();
	} while (t1 - t0 < secs);
	printf("{\"dir\": \"%s\", \"rules\": %d, \"load_ms\": %.2f, "
	       "\"evals_per_s\": %.0f, \"decision\": \"%s\", \"rule\": "
	       "\"%s\"}\n",
	    synthetic ? "synthetic" : dir, synthetic, load_ms,
	    (double)iters / (t1 - t0), d.allowed ? "allow" : "deny", d.rule);
	tsi_policy_unref(p);
	json_decref(claims);
	if (synthetic > 0) {
		snprintf(path, sizeof(path), "%s/rules.conf", tmp);
		unlink(path);
		snprintf(path, sizeof(path), "%s/roles.conf", tmp);
		unlink(path);
		rmdir(tmp);
	}
	return 0;
}
