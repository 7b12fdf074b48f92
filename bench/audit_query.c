/*
 * audit_query.c - audit store figures (docs/audit.md "Benchmark").
 *
 *   audit_query --dir D [--records 1000000] [--days 30] [--dcs 4]
 *               [--threads 1,8,32] [--seconds 3] [--tsi PATH] [--skip-fill]
 *
 * 1. Fills D with --records records spread evenly over --days days ending
 *    now and over --dcs datacenters, written as the writer writes them (the
 *    same sealing, chain and indexes) but with those times, 10,000 per synced
 *    transaction; the chain verifies afterwards.
 * 2. Times the filtered query "one datacenter, one day" through
 *    tsi_audit_query and through `tsi audit list --format json` (stdout to
 *    /dev/null), each the best of 3, after one warm-up.
 * 3. Measures raw LMDB synced batch commits (256 records of 600 bytes per
 *    mdb_txn_commit) and tsi_audit_append with N threads, records/s.
 *
 * D must be on the disk the log would use (fsync cost is part of it). Prints
 * lines for people and, last, one JSON object. Not part of ctest.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <lmdb.h>

#include "../lib/audit/audit_int.h"
#include "tsi/err.h"
#include "tsi/log.h"

static const char *const dcs[] = { "dal05", "fra02", "lon04", "tok01", "syd03",
	"sao01", "wdc07", "par01" };
static const char *const paths[] = { "secret/data/medical/a",
	"secret/data/medical/b", "secret/data/billing/x", "secret/data/eu/y",
	"auth/trusted-identity/login" };

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *
make_rec(long i, int ndcs)
{
	char rid[32];

	snprintf(rid, sizeof(rid), "req-%ld", i);
	return json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:[s]},"
	                 "s:s,s:s,s:s,s:i}",
	    "op", i % 5 == 4 ? "login" : "read", "path", paths[i % 5],
	    "version", 1, "decision", i % 7 == 0 ? "deny" : "allow", "rule",
	    "medical-records", "reason", "rule matched", "claims", "datacenter",
	    dcs[i % ndcs], "cluster-name",
	    i % 2 ? "hipaaCluster" : "devCluster", "namespace", "medical",
	    "sub", "spiffe://tsi.example/ns/medical/sa/app", "images",
	    "sha256:"
	    "4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a4f5a",
	    "accessor", "acc-0123456789abcdef", "remote", "10.1.2.3",
	    "request_id", rid, "status", i % 7 == 0 ? 403 : 200);
}

static int
fill(const char *dir, long n, int days, int ndcs, long long *t_first)
{
	struct audit_env *e = NULL;
	struct audit_point h;
	MDB_txn *txn = NULL;
	uint8_t kb[8], hash[AUDIT_HASH_LEN];
	MDB_val k = { 8, kb }, v;
	long long span = (long long)days * 86400LL * 1000000LL;
	long long t0 = audit_now_us() - span, t;
	double s0 = now_s();
	json_t *rec;
	char *body;
	size_t len;
	long i;
	int rc, r;

	if ((r = audit_env_acquire(dir, 1, (size_t)8 << 30, &e)) != TSI_OK) {
		fprintf(stderr, "audit_query: open %s: %s\n", dir,
		    tsi_strerror(r));
		return 1;
	}
	memset(&h, 0, sizeof(h));
	*t_first = t0;
	for (i = 0; i < n; i++) {
		if (txn == NULL &&
		    (rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0)
			goto fail;
		t = t0 + span / n * i;
		rec = make_rec(i, ndcs);
		if (rec == NULL ||
		    audit_record_seal(rec, h.seq + 1, t, h.hash, hash, &body,
		        &len) != TSI_OK) {
			rc = ENOMEM;
			goto fail;
		}
		audit_be64_put(kb, h.seq + 1);
		v.mv_size = len;
		v.mv_data = body;
		rc = mdb_put(txn, e->records, &k, &v, MDB_APPEND);
		if (rc == 0)
			rc = audit_index_update(e, txn, rec, h.seq + 1, t, 0);
		free(body);
		json_decref(rec);
		if (rc != 0)
			goto fail;
		h.seq++;
		memcpy(h.hash, hash, AUDIT_HASH_LEN);
		if (h.seq % 10000 == 0 || i + 1 == n) {
			if ((rc = audit_meta_put_point(e, txn, "head", &h)) !=
			    0)
				goto fail;
			rc = mdb_txn_commit(txn);
			txn = NULL;
			if (rc != 0)
				goto fail;
		}
	}
	printf("fill: %ld records over %d days, %d datacenters in %.1f s\n", n,
	    days, ndcs, now_s() - s0);
	audit_env_release(e, 1);
	return 0;
fail:
	fprintf(stderr, "audit_query: fill: %s\n", mdb_strerror(rc));
	if (txn != NULL)
		mdb_txn_abort(txn);
	audit_env_release(e, 1);
	return 1;
}

static int
count_cb(const json_t *rec, void *arg)
{
	(void)rec;
	(*(size_t *)arg)++;
	return 0;
}

static void
rfc3339(long long us, char *out, size_t len)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double
time_cli(const char *tsi, const char *dir, const char *since, const char *until,
    const char *dc)
{
	double t0 = now_s();
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execl(tsi, "tsi", "audit", "list", "--data-dir", dir, "--since",
		    since, "--until", until, "--datacenter", dc, "--limit", "0",
		    "--format", "json", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st) != 0)
		return -1;
	return (now_s() - t0) * 1000;
}

static double
raw_lmdb(const char *dir, double seconds)
{
	MDB_env *env = NULL;
	MDB_txn *txn;
	MDB_dbi dbi;
	char val[600], path[4200];
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { sizeof(val), val };
	uint64_t seq = 0;
	double t0, el = 0;
	int i, rc;

	memset(val, 'x', sizeof(val));
	mkdir(dir, 0700);
	/* a fresh environment each run: keys are appended from 1 */
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_set_mapsize(env, (size_t)4 << 30)) != 0 ||
	    (rc = mdb_env_open(env, dir, 0, 0600)) != 0)
		goto out;
	t0 = now_s();
	while ((el = now_s() - t0) < seconds) {
		if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
		    (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0)
			goto out;
		for (i = 0; i < 256; i++) {
			audit_be64_put(kb, ++seq);
			if ((rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND)) != 0) {
				mdb_txn_abort(txn);
				goto out;
			}
		}
		if ((rc = mdb_txn_commit(txn)) != 0)
			goto out;
	}
out:
	if (env != NULL)
		mdb_env_close(env);
	if (rc != 0) {
		fprintf(stderr, "audit_query: raw lmdb: %s\n",
		    mdb_strerror(rc));
		return -1;
	}
	return (double)seq / el;
}

struct app {
	struct tsi_audit *a;
	double until;
	long ok, failed;
};

static void *
app_thread(void *arg)
{
	struct app *p = arg;
	json_t *rec;
	uint64_t seq;
	long i = 0;

	while (now_s() < p->until) {
		rec = make_rec(i++, 4);
		if (tsi_audit_append(p->a, rec, &seq) == TSI_OK)
			p->ok++;
		else
			p->failed++;
		json_decref(rec);
	}
	return NULL;
}

static double
appends(const char *dir, int nthreads, double seconds, long *failed)
{
	struct tsi_audit *a = NULL;
	struct app apps[256];
	pthread_t th[256];
	double t0;
	long ok = 0;
	int i;

	*failed = 0;
	if (tsi_audit_open(dir, NULL, &a) != TSI_OK)
		return -1;
	t0 = now_s();
	for (i = 0; i < nthreads; i++) {
		memset(&apps[i], 0, sizeof(apps[i]));
		apps[i].a = a;
		apps[i].until = t0 + seconds;
		pthread_create(&th[i], NULL, app_thread, &apps[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		ok += apps[i].ok;
		*failed += apps[i].failed;
	}
	t0 = now_s() - t0;
	tsi_audit_close(a);
	return (double)ok / t0;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *tsi = NULL, *threads = "1,8,32";
	long n = 1000000;
	int days = 30, ndcs = 4, skip_fill = 0, i, rep;
	double seconds = 3, best_q = 1e9, best_cli = 1e9, t0, ms, raw;
	char self[2048], tsibuf[4096], sub[4096], since[40], until[40];
	struct tsi_audit_reader *r = NULL;
	struct tsi_audit_query q;
	struct tsi_audit_verify_result vr;
	long long t_first = 0, day_us = 86400LL * 1000000LL;
	size_t matched = 0;
	ssize_t sl;
	char *p, *tend = NULL;
	json_t *out, *app_js;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
			n = atol(argv[++i]);
		else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc)
			days = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dcs") == 0 && i + 1 < argc)
			ndcs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (strcmp(argv[i], "--tsi") == 0 && i + 1 < argc)
			tsi = argv[++i];
		else if (strcmp(argv[i], "--skip-fill") == 0)
			skip_fill = 1;
		else {
			fprintf(stderr,
			    "usage: audit_query --dir D [--records N] [--days "
			    "D] "
			    "[--dcs K] [--threads 1,8,32] [--seconds S] [--tsi "
			    "PATH] [--skip-fill]\n");
			return 2;
		}
	}
	if (dir == NULL || n < 1 || days < 3 || ndcs < 1 || ndcs > 8) {
		fprintf(stderr,
		    "audit_query: --dir is required; --days >= 3; --dcs "
		    "1..8\n");
		return 2;
	}
	if (tsi == NULL) {
		/* next to this program */
		if ((sl = readlink("/proc/self/exe", self, sizeof(self) - 1)) <=
		    0)
			return 1;
		self[sl] = '\0';
		if ((p = strrchr(self, '/')) != NULL)
			*p = '\0';
		snprintf(tsibuf, sizeof(tsibuf), "%s/tsi", self);
		tsi = tsibuf;
	}
	tsi_log_init("audit_query", TSI_LOG_ERROR);
	mkdir(dir, 0700);
	snprintf(sub, sizeof(sub), "%s/audit", dir);
	if (!skip_fill && fill(sub, n, days, ndcs, &t_first) != 0)
		return 1;
	if (tsi_audit_reader_open(sub, &r) != TSI_OK)
		return 1;
	if (t_first == 0) {
		json_t *rec = NULL;

		if (tsi_audit_get(r, 1, &rec) != TSI_OK)
			return 1;
		t_first = json_integer_value(json_object_get(rec, "time_us"));
		json_decref(rec);
	}
	/* a day in the middle, one datacenter */
	memset(&q, 0, sizeof(q));
	q.since_us = t_first + (long long)(days / 2) * day_us;
	q.until_us = q.since_us + day_us;
	q.datacenter = dcs[1 % ndcs];
	q.limit = SIZE_MAX;
	for (rep = 0; rep < 4; rep++) {
		matched = 0;
		t0 = now_s();
		if (tsi_audit_query(r, &q, count_cb, &matched, NULL) != TSI_OK)
			return 1;
		ms = (now_s() - t0) * 1000;
		if (rep > 0 && ms < best_q)
			best_q = ms;
	}
	printf("query (reader): %zu records of %s on one day in %.1f ms\n",
	    matched, q.datacenter, best_q);
	rfc3339(q.since_us, since, sizeof(since));
	rfc3339(q.until_us, until, sizeof(until));
	for (rep = 0; rep < 4; rep++) {
		ms = time_cli(tsi, dir, since, until, q.datacenter);
		if (ms < 0) {
			fprintf(stderr, "audit_query: %s audit list failed\n",
			    tsi);
			best_cli = -1;
			break;
		}
		if (rep > 0 && ms < best_cli)
			best_cli = ms;
	}
	printf("query (tsi audit list --format json): %.1f ms\n", best_cli);
	t0 = now_s();
	if (tsi_audit_verify(r, &vr) != TSI_OK) {
		fprintf(stderr, "audit_query: verify: seq %llu: %s\n",
		    (unsigned long long)vr.first_bad_seq, vr.reason);
		return 1;
	}
	printf("verify: %llu records in %.1f s\n",
	    (unsigned long long)vr.records, now_s() - t0);
	tsi_audit_reader_close(r);

	snprintf(sub, sizeof(sub), "%s/raw", dir);
	raw = raw_lmdb(sub, seconds);
	printf("raw LMDB, 256 x 600 B per synced commit: %.0f records/s\n",
	    raw);
	app_js = json_object();
	for (p = (char *)threads; *p != '\0';
	     p = *tend == ',' ? tend + 1 : tend) {
		long nt = strtol(p, &tend, 10);
		long failed = 0;
		double rate;
		char key[16];

		if (tend == p)
			break;
		if (nt < 1 || nt > 256)
			continue;
		snprintf(sub, sizeof(sub), "%s/append-%ld", dir, nt);
		rate = appends(sub, (int)nt, seconds, &failed);
		printf("tsi_audit_append, %ld threads: %.0f records/s (%ld "
		       "failed)\n",
		    nt, rate, failed);
		snprintf(key, sizeof(key), "%ld", nt);
		json_object_set_new(app_js, key, json_real(rate));
	}
	out = json_pack("{s:I,s:s,s:I,s:f,s:f,s:f,s:o}", "records",
	    (json_int_t)n, "datacenter", q.datacenter, "matched",
	    (json_int_t)matched, "query_ms", best_q, "cli_ms", best_cli,
	    "raw_lmdb_records_per_sec", raw, "append_records_per_sec", app_js);
	if (out != NULL) {
		char *s = json_dumps(out, JSON_COMPACT);

		puts(s);
		free(s);
		json_decref(out);
	}
	return 0;
}
