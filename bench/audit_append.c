/*
 * audit_append.c - the audit store's group commit on its own: THREADS
 * callers each call tsi_audit_append (which returns only once the record is
 * durable) back to back for SECONDS, with records shaped like a KV read's.
 *
 * With as many callers as tsi-vault has request threads this shows how many
 * records/s the vault can commit when every request thread waits for its own
 * record; with many callers, what the committer could do if requests did not
 * hold a thread while they wait. Compare with lmdb_raw (256 per commit).
 *
 *   audit_append --dir D [--threads 2] [--seconds 2] [--records N]
 *
 * --records N stops after N records (or SECONDS, whichever comes first: give
 * a generous SECONDS), to fill a store for the RSS figure; the store then
 * holds a real chain. --map-size sets the LMDB map (bytes; default 1 GiB).
 * --datacenters K spreads the records over datacenters bench-dc-0..K-1 (and
 * namespaces, decisions) so that filtered queries select a fraction.
 * Prints one JSON object: {"records", "seconds", "records_per_sec",
 * "threads", "failed"}. Exit 0, 1 on failure, 2 on bad usage.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tsi/audit.h"
#include "tsi/err.h"

struct worker {
	pthread_t th;
	struct tsi_audit *a;
	double deadline;
	unsigned long long quota;   /* 0: until the deadline */
	long datacenters;           /* 0: all "bench-dc" */
	unsigned long long n, failed;
	int id;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	char path[64], rid[64], dc[32], ns[32];
	json_t *rec;

	while ((w->quota == 0 || w->n < w->quota) && now_s() < w->deadline) {
		uint64_t seq;

		snprintf(path, sizeof(path), "secret/data/bench/s%llu", w->n % 100);
		snprintf(rid, sizeof(rid), "req-%d-%llu", w->id, w->n);
		if (w->datacenters > 0) {
			snprintf(dc, sizeof(dc), "bench-dc-%llu",
			    (w->n * 7 + (unsigned long long)w->id) %
			    (unsigned long long)w->datacenters);
			snprintf(ns, sizeof(ns), "ns-%llu", w->n % 13);
		} else {
			snprintf(dc, sizeof(dc), "bench-dc");
			snprintf(ns, sizeof(ns), "bench");
		}
		rec = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:{s:s, s:s, s:s, "
		    "s:s, s:s, s:[s]}, s:s, s:s, s:s, s:i}",
		    "op", "read", "path", path, "version", 1, "decision",
		    w->datacenters > 0 && w->n % 10 == 9 ? "deny" : "allow",
		    "rule", "bench-rw", "reason", "allowed by rule bench-rw",
		    "claims", "sub", "spiffe://bench.tsi/ns/bench/sa/bench",
		    "cluster-name", "bench-cluster", "region", "bench-region",
		    "datacenter", dc, "namespace", ns,
		    "images", "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    "accessor", "acc-0123456789abcdef", "remote", "127.0.0.1",
		    "request_id", rid, "status", 200);
		if (rec == NULL) {
			w->failed++;
			break;
		}
		if (tsi_audit_append(w->a, rec, &seq) == TSI_OK)
			w->n++;
		else
			w->failed++;
		json_decref(rec);
	}
	return NULL;
}

static int
usage(void)
{
	fprintf(stderr, "usage: audit_append --dir D [--threads N] [--seconds S] "
	    "[--records N] [--map-size BYTES] [--datacenters K]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	long threads = 2, k;
	double seconds = 2, t0, t1;
	long long records = 0, map_size = 0;
	long datacenters = 0;
	struct tsi_audit_opts o;
	struct tsi_audit *a = NULL;
	struct worker *ws = NULL;
	unsigned long long n = 0, failed = 0;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--datacenters") == 0 && i + 1 < argc)
			datacenters = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--map-size") == 0 && i + 1 < argc)
			map_size = strtoll(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
			records = strtoll(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (dir == NULL || threads < 1 || threads > 1024 || seconds <= 0 ||
	    records < 0 || map_size < 0 || datacenters < 0 || datacenters > 1000)
		return usage();
	if (records > 0 && records < threads)
		threads = (long)records;
	memset(&o, 0, sizeof(o));
	o.map_size = (size_t)map_size;
	if ((r = tsi_audit_open(dir, &o, &a)) != TSI_OK) {
		fprintf(stderr, "audit_append: open %s: %s\n", dir, tsi_strerror(r));
		return 1;
	}
	if ((ws = calloc((size_t)threads, sizeof(*ws))) == NULL) {
		tsi_audit_close(a);
		return 1;
	}
	t0 = now_s();
	for (k = 0; k < threads; k++) {
		ws[k].a = a;
		ws[k].deadline = t0 + seconds;
		ws[k].id = (int)k;
		ws[k].datacenters = datacenters;
		ws[k].quota = (unsigned long long)(records / threads +
		    (k < records % threads ? 1 : 0));
		if (pthread_create(&ws[k].th, NULL, run, &ws[k]) != 0) {
			threads = k;
			break;
		}
	}
	for (k = 0; k < threads; k++) {
		pthread_join(ws[k].th, NULL);
		n += ws[k].n;
		failed += ws[k].failed;
	}
	t1 = now_s();
	tsi_audit_close(a);
	free(ws);
	printf("{\"records\": %llu, \"seconds\": %.3f, \"records_per_sec\": %.1f, "
	    "\"threads\": %ld, \"failed\": %llu}\n", n, t1 - t0,
	    (double)n / (t1 - t0), threads, failed);
	return n > 0 && failed == 0 ? 0 : 1;
}
