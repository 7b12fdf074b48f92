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
 * --window W: each caller uses tsi_audit_submit with up to W records in
 * flight instead of waiting for each (as tsi-vault's HTTP threads do): what
 * the committer can do when callers do not hold a thread per record.
 * --commit-delay-us U sets the group-commit hold (opts.commit_delay_us;
 * default 0, off).
 * Prints one JSON object: {"records", "seconds", "records_per_sec",
 * "threads", "window", "failed", "commits", "records_per_commit",
 * "commit_delay_us"}. Exit 0, 1 on failure, 2 on bad usage.
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
	unsigned long long quota; /* 0: until the deadline */
	long datacenters;         /* 0: all "bench-dc" */
	unsigned long long n, failed;
	int id;
	long window;        /* 0: tsi_audit_append */
	pthread_mutex_t mu; /* with window: n, failed, outstanding */
	pthread_cond_t cv;
	long outstanding;
	int waiting;
};

static void
done_cb(void *arg, int rc, uint64_t seq)
{
	struct worker *w = arg;

	(void)seq;
	pthread_mutex_lock(&w->mu);
	w->outstanding--;
	if (rc == TSI_OK)
		w->n++;
	else
		w->failed++;
	if (w->waiting)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Submits rec with a window of records in flight. */
static void
submit_windowed(struct worker *w, const json_t *rec, unsigned long long *sent)
{
	pthread_mutex_lock(&w->mu);
	while (w->outstanding >= w->window) {
		w->waiting = 1;
		pthread_cond_wait(&w->cv, &w->mu);
		w->waiting = 0;
	}
	w->outstanding++;
	pthread_mutex_unlock(&w->mu);
	if (tsi_audit_submit(w->a, rec, done_cb, w) == TSI_OK) {
		(*sent)++;
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->outstanding--;
	w->failed++;
	pthread_mutex_unlock(&w->mu);
}

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
	unsigned long long sent = 0;

	while ((w->quota == 0 || (w->window > 0 ? sent : w->n) < w->quota) &&
	    now_s() < w->deadline) {
		uint64_t seq;
		unsigned long long i = w->window > 0 ? sent : w->n;

		snprintf(path, sizeof(path), "secret/data/bench/s%llu",
		    i % 100);
		snprintf(rid, sizeof(rid), "req-%d-%llu", w->id, i);
		if (w->datacenters > 0) {
			snprintf(dc, sizeof(dc), "bench-dc-%llu",
			    (i * 7 + (unsigned long long)w->id) %
			        (unsigned long long)w->datacenters);
			snprintf(ns, sizeof(ns), "ns-%llu", i % 13);
		} else {
			snprintf(dc, sizeof(dc), "bench-dc");
			snprintf(ns, sizeof(ns), "bench");
		}
		rec = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:{s:s, s:s, "
		                "s:s, "
		                "s:s, s:s, s:[s]}, s:s, s:s, s:s, s:i}",
		    "op", "read", "path", path, "version", 1, "decision",
		    w->datacenters > 0 && i % 10 == 9 ? "deny" : "allow",
		    "rule", "bench-rw", "reason", "allowed by rule bench-rw",
		    "claims", "sub", "spiffe://bench.tsi/ns/bench/sa/bench",
		    "cluster-name", "bench-cluster", "region", "bench-region",
		    "datacenter", dc, "namespace", ns, "images",
		    "sha256:"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaa",
		    "accessor", "acc-0123456789abcdef", "remote", "127.0.0.1",
		    "request_id", rid, "status", 200);
		if (rec == NULL) {
			w->failed++;
			break;
		}
		if (w->window > 0)
			submit_windowed(w, rec, &sent);
		else if (tsi_audit_append(w->a, rec, &seq) == TSI_OK)
			w->n++;
		else
			w->failed++;
		json_decref(rec);
	}
	if (w->window > 0) {
		/* the records in flight count once durable */
		pthread_mutex_lock(&w->mu);
		while (w->outstanding > 0) {
			w->waiting = 1;
			pthread_cond_wait(&w->cv, &w->mu);
			w->waiting = 0;
		}
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: audit_append --dir D [--threads N] [--seconds S] "
	    "[--records N] [--map-size BYTES] [--datacenters K] [--window W] "
	    "[--commit-delay-us U]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	long threads = 2, k;
	double seconds = 2, t0, t1;
	long long records = 0, map_size = 0;
	long datacenters = 0, window = 0, delay_us = 0;
	struct tsi_audit_status st;
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
		else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
			window = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--commit-delay-us") == 0 &&
		    i + 1 < argc)
			delay_us = strtol(argv[++i], NULL, 10);
		else
			return usage();
	}
	if (dir == NULL || threads < 1 || threads > 1024 || seconds <= 0 ||
	    records < 0 || map_size < 0 || datacenters < 0 ||
	    datacenters > 1000 || window < 0 || window > 1000000 ||
	    delay_us < 0 || delay_us > 1000000)
		return usage();
	if (records > 0 && records < threads)
		threads = (long)records;
	memset(&o, 0, sizeof(o));
	o.map_size = (size_t)map_size;
	o.commit_delay_us = (int)delay_us;
	if ((r = tsi_audit_open(dir, &o, &a)) != TSI_OK) {
		fprintf(stderr, "audit_append: open %s: %s\n", dir,
		    tsi_strerror(r));
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
		ws[k].window = window;
		pthread_mutex_init(&ws[k].mu, NULL);
		pthread_cond_init(&ws[k].cv, NULL);
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
	tsi_audit_status(a, &st);
	tsi_audit_close(a);
	free(ws);
	printf("{\"records\": %llu, \"seconds\": %.3f, \"records_per_sec\": "
	       "%.1f, "
	       "\"threads\": %ld, \"window\": %ld, \"failed\": %llu, "
	       "\"commits\": %llu, \"records_per_commit\": %.2f, "
	       "\"commit_delay_us\": %ld}\n",
	    n, t1 - t0, (double)n / (t1 - t0), threads, window, failed,
	    (unsigned long long)st.commits,
	    st.commits > 0 ? (double)st.committed / (double)st.commits : 0.0,
	    delay_us);
	return n > 0 && failed == 0 ? 0 : 1;
}
