/*
 * audit_load - appends audit records from several threads and prints each
 * acknowledged seq on stdout (one line, flushed, after tsi_audit_append
 * returned TSI_OK). Used by the crash test (killed with SIGKILL mid-load)
 * and by the CLI script test (a writer running while the CLI reads).
 *
 *   audit_load DIR [--threads N] [--count M per thread, 0: until killed]
 *                  [--sleep-ms S between appends] [--quiet]
 *
 * Records vary over 3 datacenters, 2 clusters, 4 namespaces, 2 images,
 * 3 decisions and 5 paths, deterministically by a per-thread counter.
 * Exit 0 when all appends succeeded, 1 otherwise, 2 on bad usage.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "tsi/audit.h"
#include "tsi/err.h"
#include "tsi/log.h"

static struct tsi_audit *audit;
static long count = 100, sleep_ms;
static int quiet;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int failures;

static const char *const dcs[] = { "dal05", "fra02", "lon04" };
static const char *const clusters[] = { "hipaaCluster", "devCluster" };
static const char *const nss[] = { "default", "medical", "billing", "ops" };
static const char *const decisions[] = { "allow", "allow", "deny" };
static const char *const rules[] = { "medical-records", "per-location",
	"never-outside-eu" };
static const char *const paths[] = {
	"secret/data/medical/a",
	"secret/data/medical/b",
	"secret/data/billing/x",
	"secret/data/eu/y",
	"auth/trusted-identity/login",
};
static const char *const images[] = {
	"sha256:"
	"1111111111111111111111111111111111111111111111111111111111111111",
	"sha256:"
	"2222222222222222222222222222222222222222222222222222222222222222",
};

static void *
worker(void *arg)
{
	long id = (long)(intptr_t)arg, i;
	uint64_t seq;
	char rid[64];
	json_t *rec;
	int rc;

	for (i = 0; count == 0 || i < count; i++) {
		long k = id * 7919 + i;

		snprintf(rid, sizeof(rid), "req-%ld-%ld", id, i);
		rec =
		    json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:[s]},"
		              "s:s,s:s,s:s,s:i}",
		        "op", k % 5 == 4 ? "login" : "read", "path",
		        paths[k % 5], "version", (int)(k % 3) + 1, "decision",
		        decisions[(k / 5) % 3], "rule", rules[(k / 5) % 3],
		        "reason", "rule matched", "claims", "datacenter",
		        dcs[k % 3], "cluster-name", clusters[k % 2],
		        "namespace", nss[k % 4], "images", images[(k / 3) % 2],
		        "accessor", "acc-test", "remote", "127.0.0.1",
		        "request_id", rid, "status",
		        (k / 5) % 3 == 2 ? 403 : 200);
		if (rec == NULL)
			abort();
		rc = tsi_audit_append(audit, rec, &seq);
		json_decref(rec);
		pthread_mutex_lock(&out_mu);
		if (rc == TSI_OK) {
			if (!quiet) {
				printf("%llu\n", (unsigned long long)seq);
				fflush(stdout);
			}
		} else {
			failures++;
			fprintf(stderr, "append: %s\n", tsi_strerror(rc));
		}
		pthread_mutex_unlock(&out_mu);
		if (sleep_ms > 0)
			usleep((useconds_t)sleep_ms * 1000);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[64];
	long nthreads = 4, t;
	int i, rc;

	if (argc < 2) {
		fprintf(stderr,
		    "usage: audit_load DIR [--threads N] [--count M] "
		    "[--sleep-ms S] [--quiet]\n");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			nthreads = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--sleep-ms") == 0 && i + 1 < argc)
			sleep_ms = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = 1;
		else {
			fprintf(stderr, "audit_load: bad argument '%s'\n",
			    argv[i]);
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > 64 || count < 0) {
		fprintf(stderr, "audit_load: --threads 1..64, --count >= 0\n");
		return 2;
	}
	tsi_log_init("audit_load", TSI_LOG_ERROR);
	if ((rc = tsi_audit_open(argv[1], NULL, &audit)) != TSI_OK) {
		fprintf(stderr, "audit_load: open %s: %s\n", argv[1],
		    tsi_strerror(rc));
		return 1;
	}
	for (t = 0; t < nthreads; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) !=
		    0)
			return 1;
	for (t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	tsi_audit_close(audit);
	return failures ? 1 : 0;
}
