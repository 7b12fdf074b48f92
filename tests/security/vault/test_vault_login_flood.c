/*
 * A flood of invalid logins (issue 15.1): threads posting ~55 KB JWTs with
 * a real x5c chain and a random signature, from several loopback
 * addresses, against a server whose audit log is small and bounded by
 * size (audit_retention_bytes). Meanwhile a workload logged in before
 * keeps reading its secret. Every legitimate read must succeed, the
 * releases recorded before the flood must survive retention, failed
 * logins beyond the per-source limit are answered 429 with Retry-After,
 * and health and metrics say what happened. Prints the legitimate reads'
 * latency (p50/p99) during the flood.
 *
 * Bounded: each flooding thread stops once the flood has done what the
 * case needs (its source throttled a few times and FLOOD_MIN_S over, or
 * the log down to its reserve), after FLOOD_S seconds, or after FLOOD_MAX requests in all: a
 * goal, not a duration, so that a slow build (sanitizers) or a loaded
 * machine still reaches it.
 * TSI_FLOOD_RATE=N paces the flood to N requests/s in all (for comparing
 * latency at the same attack rate; unset: as fast as answers come).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "tsi/audit.h"
#include "tsi/jwt.h"
#include "tsi/err.h"

#define SOURCES 6 /* 127.0.0.2 .. 127.0.0.7 */
#define FLOOD_S 120.0
#define GOAL_429 3      /* 429s per source that show the limit works */
#define FLOOD_MIN_S 8.0 /* with the limit: flood at least this long */
#define FLOOD_MAX 40000 /* requests, all threads together */
#define RELEASES 30
#define LAT_MAX 20000
/* The workload reads every READ_EVERY_S: a steady probe, and a bounded
 * number of records (the reserve must hold them all when the flood has
 * filled the rest). */
#define READ_EVERY_S 0.005

static const char policy_fmt[] =
    "roles = ( { name = \"demo\"; rules = [ \"app\" ]; token_ttl = 600; } );\n"
    "rules = ( { name = \"app\"; paths = [ \"secret/data/app/*\" ];\n"
    "    capabilities = [ \"read\" ];\n"
    "    match = { images = [ \"%s\" ]; }; } );\n";

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct shared {
	struct vfx *f;
	const char *body;
	double until;
	double min_until; /* with the limit: not before this */
	int stop;         /* atomic */
	int sent;         /* atomic: flood requests so far */
	double interval;  /* seconds between one thread's requests; 0: none */
	int want_503;     /* no limit: stop once the reserve refuses (atomic) */
	int got_503;      /* atomic */
};

struct flooder {
	struct shared *sh;
	int src; /* 127.0.0.<src> */
	long n403, n429, n503, nother;
	int retry_after_ok;
};

static size_t
sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static void *
flood_main(void *arg)
{
	struct flooder *fl = arg;
	struct shared *sh = fl->sh;
	struct curl_slist *h = NULL;
	char url[256], iface[64];
	CURL *c = curl_easy_init();
	long status;
	double next;

	snprintf(url, sizeof(url), "%s/v1/auth/trusted-identity/login",
	    sh->f->addr);
	snprintf(iface, sizeof(iface), "host!127.0.0.%d", fl->src);
	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
	curl_easy_setopt(c, CURLOPT_CAINFO, sh->f->tls_ca);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, sh->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(sh->body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	next = now_s();
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE) &&
	    now_s() < sh->until &&
	    (fl->n429 < GOAL_429 || now_s() < sh->min_until) &&
	    !(sh->want_503 &&
	        __atomic_load_n(&sh->got_503, __ATOMIC_ACQUIRE)) &&
	    __atomic_fetch_add(&sh->sent, 1, __ATOMIC_RELAXED) < FLOOD_MAX) {
		if (sh->interval > 0) {
			/* pacing, not synchronisation */
			double d;

			next += sh->interval;
			if ((d = next - now_s()) > 0)
				nanosleep(&(struct timespec){ (time_t)d,
				              (long)((d - (double)(time_t)d) *
				                  1e9) },
				    NULL);
		}
		if (curl_easy_perform(c) != CURLE_OK) {
			fl->nother++;
			continue;
		}
		status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (status == 403)
			fl->n403++;
		else if (status == 429) {
			struct curl_header *ra = NULL;
			fl->n429++;
			if (curl_easy_header(c, "Retry-After", 0, CURLH_HEADER,
			        -1, &ra) == CURLHE_OK &&
			    atoi(ra->value) > 0)
				fl->retry_after_ok++;
		} else if (status == 503) {
			fl->n503++;
			__atomic_store_n(&sh->got_503, 1, __ATOMIC_RELEASE);
		} else
			fl->nother++;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return NULL;
}

struct reader {
	struct shared *sh;
	const char *token;
	double lat[LAT_MAX];
	int n, ok, failed, retried;
};

static void *
read_main(void *arg)
{
	struct reader *rd = arg;
	CURL *c = curl_easy_init();
	struct vresp r;
	double t0, next = now_s(), d;

	while (!__atomic_load_n(&rd->sh->stop, __ATOMIC_ACQUIRE) &&
	    rd->n < LAT_MAX) {
		/* pacing, not synchronisation */
		next += READ_EVERY_S;
		if ((d = next - now_s()) > 0)
			nanosleep(&(struct timespec){ 0, (long)(d * 1e9) },
			    NULL);
		t0 = now_s();
		if (vfx_http(rd->sh->f, c, "GET", "/v1/secret/data/app/db",
		        rd->token, NULL, &r) != 0) {
			/* No HTTP answer at all: a kept-alive connection
			 * closed as the request went out. A client retries an
			 * idempotent GET once on a new connection; a refusal
			 * (any status but 200) is never retried. */
			vresp_clear(&r);
			rd->retried++;
			curl_easy_cleanup(c);
			c = curl_easy_init();
			if (vfx_http(rd->sh->f, c, "GET",
			        "/v1/secret/data/app/db", rd->token, NULL,
			        &r) != 0)
				r.status = 0;
		}
		if (r.status == 200)
			rd->ok++;
		else {
			rd->failed++;
			print_message("legitimate read failed: status %ld\n",
			    (long)r.status);
		}
		rd->lat[rd->n++] = now_s() - t0;
		vresp_clear(&r);
	}
	curl_easy_cleanup(c);
	return NULL;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* A JWT of about 55 KB with a real chain: a real token's header (x5c)
 * and claims with a large claim added, and a random signature. */
static char *
flood_jwt(struct vfx_node *n, const char *img)
{
	char *pad = malloc(40 * 1024 + 1), *jwt, *hj, *cj, *h64 = NULL,
	     *c64 = NULL, *s64 = NULL, *out;
	unsigned char sig[64];
	json_t *hdr = NULL, *claims = NULL;
	size_t len;

	assert_non_null(pad);
	memset(pad, 'p', 40 * 1024);
	pad[40 * 1024] = '\0';
	jwt = vfx_jwt(n, img, "prod", NULL, 300);
	assert_non_null(jwt);
	assert_int_equal(tsi_jwt_decode_unverified(jwt, &hdr, &claims), TSI_OK);
	json_object_set_new(claims, "pad", json_string(pad));
	hj = json_dumps(hdr, JSON_COMPACT);
	cj = json_dumps(claims, JSON_COMPACT);
	assert_int_equal(RAND_bytes(sig, sizeof(sig)), 1);
	assert_int_equal(tsi_b64url_encode(hj, strlen(hj), &h64), TSI_OK);
	assert_int_equal(tsi_b64url_encode(cj, strlen(cj), &c64), TSI_OK);
	assert_int_equal(tsi_b64url_encode(sig, sizeof(sig), &s64), TSI_OK);
	len = strlen(h64) + strlen(c64) + strlen(s64) + 3;
	out = malloc(len);
	assert_non_null(out);
	snprintf(out, len, "%s.%s.%s", h64, c64, s64);
	free(h64);
	free(c64);
	free(s64);
	free(hj);
	free(cj);
	json_decref(hdr);
	json_decref(claims);
	free(jwt);
	free(pad);
	return out;
}

static double
metric(struct vfx *f, const char *name)
{
	struct vresp r;
	char key[128];
	const char *p;
	double v = -1;

	if (vfx_http(f, NULL, "GET", "/v1/sys/metrics?format=prometheus", NULL,
	        NULL, &r) != 0)
		return -1;
	snprintf(key, sizeof(key), "\n%s ", name);
	if (r.body != NULL && (p = strstr(r.body, key)) != NULL)
		v = strtod(p + strlen(key), NULL);
	vresp_clear(&r);
	return v;
}

/* Releases of app/db recorded before t_us, as the root token sees them. */
static size_t
releases_before(struct vfx *f, long long t_s)
{
	struct vresp r;
	char path[256];
	json_t *recs, *e;
	size_t n, i;

	snprintf(path, sizeof(path),
	    "/v1/sys/audit/releases?"
	    "path=secret/data/app/db&decision=allow&until=%lld&limit=1000",
	    t_s);
	assert_int_equal(vfx_http(f, NULL, "GET", path, f->root, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	recs = json_object_get(json_object_get(r.json, "data"), "records");
	n = 0;
	json_array_foreach (recs, i, e)
		if (strcmp(json_string_value(json_object_get(e, "op")),
		        "read") == 0)
			n++;
	vresp_clear(&r);
	return n;
}

struct agg {
	long count;
	long records;
	int seen[SOURCES];
};

static int
agg_cb(const json_t *rec, void *arg)
{
	struct agg *g = arg;
	const char *src = json_string_value(json_object_get(rec, "source"));
	int i;

	if (strcmp(json_string_value(json_object_get(rec, "op")),
	        "login.throttled") != 0)
		return 0;
	g->records++;
	g->count += (long)json_integer_value(json_object_get(rec, "count"));
	for (i = 0; src != NULL && i < SOURCES; i++) {
		char want[32];

		snprintf(want, sizeof(want), "127.0.0.%d", 2 + i);
		if (strcmp(src, want) == 0)
			g->seen[i] = 1;
	}
	return 0;
}

/* In the log: one login.throttled record per source and window, the
 * counts adding up to the 429s answered, every source named. */
static void
check_throttled_records(struct vfx *f, long n429)
{
	struct tsi_audit_reader *rd = NULL;
	struct tsi_audit_query q;
	struct agg g;
	char dir[400];
	uint64_t next = 0;
	int i;

	memset(&g, 0, sizeof(g));
	memset(&q, 0, sizeof(q));
	q.decision = "deny";
	q.path_prefix = "auth/trusted-identity/login";
	q.limit = SIZE_MAX;
	snprintf(dir, sizeof(dir), "%s/audit", f->data_dir);
	assert_int_equal(tsi_audit_reader_open(dir, &rd), TSI_OK);
	assert_int_equal(tsi_audit_query(rd, &q, agg_cb, &g, &next), TSI_OK);
	tsi_audit_reader_close(rd);
	print_message("%ld login.throttled records for %ld refusals\n",
	    g.records, g.count);
	assert_int_equal(g.count, n429);
	assert_true(g.records >= SOURCES);
	assert_true(g.records < n429);
	for (i = 0; i < SOURCES; i++)
		assert_true(g.seen[i]);
}

/* Which defence a run exercises. */
enum mode {
	WITH_LIMIT,   /* the defaults: per-source limit, reserve, min age */
	WITHOUT_LIMIT /* limit off: the reserve and the min age alone */
};

static void
run_flood(enum mode mode)
{
	struct vfx f;
	struct vfx_node node;
	struct shared sh;
	struct flooder fl[SOURCES];
	struct reader *rd = calloc(1, sizeof(*rd));
	pthread_t th[SOURCES], rt;
	char policy[1024], img[72], *token, *jwt, *body;
	json_t *req;
	long status;
	long long t_flood;
	long n403 = 0, n429 = 0, n503 = 0, nother = 0, ra_ok = 0;
	int i;

	assert_non_null(rd);
	vfx_image("flood-app", img);
	snprintf(policy, sizeof(policy), policy_fmt, img);
	/* A small log bounded by size: what the flood could evict. Without
	 * the limit, the flood fills the log down to the reserve (half of
	 * it), which the workload's reads then use. */
	assert_int_equal(
	    vfx_init(&f, policy,
	        mode == WITH_LIMIT
	            ? "audit_map_size = 8388608;\naudit_retention_bytes = "
	              "1048576;\n"
	              "login_failure_limit = 10;\nlogin_failure_window = 4;\n"
	              "max_body = 131072;\n"
	            : "audit_map_size = 4194304;\naudit_retention_bytes = "
	              "1048576;\n"
	              "audit_reserve_bytes = 2097152;\nlogin_failure_limit = "
	              "0;\n"
	              "max_body = 131072;\n"),
	    0);
	assert_int_equal(vfx_node_new(&f, "c1", "r1", "dc1", "node-1", &node),
	    0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(vfx_kv_put(&f, f.root, "app/db",
	                     "{\"data\":{\"pw\":\"APP-SECRET\"}}"),
	    200);
	token = vfx_login_as(&f, &node, img, "prod", "demo", &status);
	assert_int_equal(status, 200);
	assert_non_null(token);
	for (i = 0; i < RELEASES; i++)
		assert_int_equal(vfx_kv_get(&f, token, "app/db", NULL), 200);
	t_flood = (long long)time(NULL) + 1;
	/* the flood starts in the next second: "until" is exclusive */
	while ((long long)time(NULL) < t_flood)
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	assert_int_equal(releases_before(&f, t_flood), RELEASES);

	jwt = flood_jwt(&node, img);
	req = json_pack("{ssss}", "role", "demo", "jwt", jwt);
	body = json_dumps(req, JSON_COMPACT);
	assert_true(strlen(body) > 50 * 1024);
	memset(&sh, 0, sizeof(sh));
	sh.f = &f;
	sh.body = body;
	sh.until = now_s() + FLOOD_S;
	sh.min_until = now_s() + FLOOD_MIN_S;
	sh.want_503 = mode != WITH_LIMIT;
	if (getenv("TSI_FLOOD_RATE") != NULL &&
	    atof(getenv("TSI_FLOOD_RATE")) > 0)
		sh.interval = SOURCES / atof(getenv("TSI_FLOOD_RATE"));
	rd->sh = &sh;
	rd->token = token;
	for (i = 0; i < SOURCES; i++) {
		memset(&fl[i], 0, sizeof(fl[i]));
		fl[i].sh = &sh;
		fl[i].src = 2 + i;
		assert_int_equal(pthread_create(&th[i], NULL, flood_main,
		                     &fl[i]),
		    0);
	}
	assert_int_equal(pthread_create(&rt, NULL, read_main, rd), 0);
	for (i = 0; i < SOURCES; i++) {
		pthread_join(th[i], NULL);
		n403 += fl[i].n403;
		n429 += fl[i].n429;
		n503 += fl[i].n503;
		nother += fl[i].nother;
		ra_ok += fl[i].retry_after_ok;
	}
	__atomic_store_n(&sh.stop, 1, __ATOMIC_RELEASE);
	pthread_join(rt, NULL);
	qsort(rd->lat, (size_t)rd->n, sizeof(double), cmp_d);
	print_message("flood: %d requests from %d sources: %ld 403, %ld 429 "
	              "(%ld with Retry-After), %ld 503, %ld other\n",
	    __atomic_load_n(&sh.sent, __ATOMIC_RELAXED), SOURCES, n403, n429,
	    ra_ok, n503, nother);
	print_message("legitimate reads during the flood: %d (%d ok, %d "
	              "failed, %d retried on a new connection), p50 %.1f ms, "
	              "p99 %.1f "
	              "ms\n",
	    rd->n, rd->ok, rd->failed, rd->retried,
	    rd->n ? rd->lat[rd->n / 2] * 1e3 : 0.0,
	    rd->n ? rd->lat[(rd->n * 99) / 100] * 1e3 : 0.0);
	/* Every legitimate read succeeded. */
	assert_true(rd->n > 0);
	assert_int_equal(rd->failed, 0);
	/* After the flood the releases recorded before it are all there,
	 * reads work, and health is 200. */
	{
		struct vresp r;
		size_t kept = releases_before(&f, t_flood);

		print_message("releases recorded before the flood and still "
		              "in the log: %zu of %d\n",
		    kept, RELEASES);
		assert_int_equal(kept, RELEASES);
		assert_int_equal(vfx_kv_get(&f, token, "app/db", NULL), 200);
		assert_int_equal(vfx_http(&f, NULL, "GET", "/v1/sys/health",
		                     NULL, NULL, &r),
		    0);
		assert_int_equal(r.status, 200);
		vresp_clear(&r);
	}
	if (mode == WITH_LIMIT) {
		/* Failed logins beyond the per-source limit: 429 with
		 * Retry-After, counted in the metrics; the rest were denied
		 * (403) and recorded one by one. */
		assert_true(n429 > 0);
		assert_int_equal(ra_ok, n429);
		assert_true(n403 > 0);
		assert_int_equal(n503 + nother, 0);
		assert_true(metric(&f, "tsi_vault_login_throttled_total") >=
		    (double)n429);
		/* The refusals are recorded per source and window once the
		 * window ends (health and logins look for ended windows):
		 * wait for all of them, bounded. */
		{
			double t_end = now_s() + 30, rec = 0;
			struct vresp r;

			while (now_s() < t_end &&
			    (rec = metric(&f,
			         "tsi_vault_login_throttled_recorded_total")) <
			        (double)n429) {
				assert_int_equal(vfx_http(&f, NULL, "GET",
				                     "/v1/sys/health", NULL,
				                     NULL, &r),
				    0);
				vresp_clear(&r);
				nanosleep(&(struct timespec){ 0, 100000000 },
				    NULL);
			}
			assert_true(rec == (double)n429);
		}
	} else {
		/* No limit: once the log was down to its reserve, the
		 * denials' records were refused (503 to the flood) while
		 * the authenticated reads went on; pruning stopped at the
		 * young releases. */
		assert_int_equal(n429, 0);
		assert_true(n503 > 0);
		assert_true(
		    metric(&f, "tsi_vault_audit_reserve_refused_total") > 0);
		/* Pruning runs with the commits: the flood may stop (at its
		 * first 503) before a prune has met the young releases.
		 * Authenticated reads keep committing; wait for the held
		 * gauge, bounded. */
		{
			double t_end = now_s() + 30;

			while (now_s() < t_end &&
			    metric(&f, "tsi_vault_audit_retention_held") != 1) {
				assert_int_equal(vfx_kv_get(&f, token, "app/db",
				                     NULL),
				    200);
				nanosleep(&(struct timespec){ 0, 100000000 },
				    NULL);
			}
		}
		assert_true(metric(&f, "tsi_vault_audit_retention_held") == 1);
		{
			struct vresp r;

			assert_int_equal(vfx_http(&f, NULL, "GET",
			                     "/v1/sys/health", NULL, NULL, &r),
			    0);
			assert_non_null(strstr(r.body, "audit_reserve_in_use"));
			vresp_clear(&r);
		}
	}
	assert_int_equal(vfx_stop(&f), 0);
	if (mode == WITH_LIMIT)
		check_throttled_records(&f, n429);
	free(body);
	json_decref(req);
	free(jwt);
	free(token);
	free(rd);
	vfx_node_free(&node);
	vfx_cleanup(&f);
}

static void
test_login_flood(void **state)
{
	(void)state;
	run_flood(WITH_LIMIT);
}

static void
test_login_flood_no_limit(void **state)
{
	(void)state;
	run_flood(WITHOUT_LIMIT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_flood),
		cmocka_unit_test(test_login_flood_no_limit),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
