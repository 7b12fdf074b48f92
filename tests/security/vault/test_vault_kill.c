/*
 * tsi-vault killed with SIGKILL in the middle of concurrent KV writes, then
 * restarted on the same data directory: LMDB opens cleanly, every write
 * that was answered 200 is readable at the version it was given, with its
 * value, and the audit chain verifies (as `tsi audit verify --data-dir`).
 * A write answered 200 was committed: nothing acknowledged is lost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "tsi/audit.h"
#include "tsi/err.h"

#define WRITERS 6
#define MAXW 7000

struct acked {
	int key;
	long long version;
	unsigned seq;
};

struct writer {
	struct vfx *f;
	int id;
	volatile int *stop;
	struct acked *acks;
	size_t n;
	int errors_before_kill; /* non-200 answers while the server ran */
};

static void *
writer_run(void *arg)
{
	struct writer *w = arg;
	CURL *c = curl_easy_init();
	char path[128], body[128];
	struct vresp r;
	unsigned seq;

	for (seq = 0; !*w->stop && w->n < MAXW; seq++) {
		int key = (int)(seq % 8);
		snprintf(path, sizeof(path), "/v1/secret/data/w%d/k%d", w->id,
		    key);
		snprintf(body, sizeof(body),
		    "{\"data\":{\"writer\":%d,\"seq\":%u}}", w->id, seq);
		if (vfx_http(w->f, c, "POST", path, w->f->root, body, &r) ==
		    0) {
			if (r.status == 200) {
				json_t *v =
				    json_object_get(json_object_get(r.json,
				                        "data"),
				        "version");
				w->acks[w->n].key = key;
				w->acks[w->n].version = json_integer_value(v);
				w->acks[w->n].seq = seq;
				__atomic_store_n(&w->n, w->n + 1,
				    __ATOMIC_RELEASE);
			} else if (!*w->stop)
				w->errors_before_kill++;
		}
		vresp_clear(&r);
	}
	curl_easy_cleanup(c);
	return NULL;
}

static void
test_sigkill_during_writes(void **state)
{
	struct vfx f;
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	volatile int stop = 0;
	struct tsi_audit_reader *rd = NULL;
	struct tsi_audit_verify_result vr;
	char dir[400], path[160];
	size_t i, j, total = 0, checked = 0;
	struct vresp r;
	int st;

	(void)state;
	/* Keep 1000 versions (8 keys, at most 7000 writes a writer) so every
	 * acknowledged version is still there. */
	assert_int_equal(vfx_init(&f, NULL, "kv_max_versions = 1000;\n"), 0);
	assert_int_equal(vfx_start(&f), 0);
	for (i = 0; i < WRITERS; i++) {
		w[i].f = &f;
		w[i].id = (int)i;
		w[i].stop = &stop;
		w[i].acks = calloc(MAXW, sizeof(struct acked));
		w[i].n = 0;
		w[i].errors_before_kill = 0;
		assert_non_null(w[i].acks);
		assert_int_equal(pthread_create(&th[i], NULL, writer_run,
		                     &w[i]),
		    0);
	}
	/* Until the writers have had 300 writes acknowledged (at most 30 s):
	 * the kill then lands among acknowledged and in-flight writes,
	 * however slow the runner. */
	for (i = 0; i < 3000; i++) {
		size_t acked = 0;
		for (j = 0; j < WRITERS; j++)
			acked += __atomic_load_n(&w[j].n, __ATOMIC_ACQUIRE);
		if (acked >= 300)
			break;
		usleep(10 * 1000);
	}
	assert_true(i < 3000);
	/* No warning: the process dies between any two instructions. */
	assert_int_equal(kill(f.pid, SIGKILL), 0);
	assert_int_equal(waitpid(f.pid, &st, 0), f.pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	f.pid = 0;
	stop = 1;
	for (i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		total += w[i].n;
		assert_int_equal(w[i].errors_before_kill, 0);
	}
	fprintf(stderr, "acknowledged writes before SIGKILL: %zu\n", total);
	assert_true(total > 20);

	/* Restart on the same data directory. */
	assert_int_equal(vfx_start(&f), 0);
	for (i = 0; i < WRITERS; i++) {
		for (j = 0; j < w[i].n; j++) {
			struct acked *a = &w[i].acks[j];
			json_t *d;
			/* Every acknowledged version; all of the last 200. */
			if (j + 200 < w[i].n && j % 7 != 0)
				continue;
			snprintf(path, sizeof(path),
			    "/v1/secret/data/w%zu/k%d?version=%lld", i, a->key,
			    a->version);
			assert_int_equal(vfx_http(&f, NULL, "GET", path, f.root,
			                     NULL, &r),
			    0);
			if (r.status != 200)
				fprintf(stderr, "%s -> %ld\n", path, r.status);
			assert_int_equal(r.status, 200);
			d = json_object_get(json_object_get(r.json, "data"),
			    "data");
			assert_int_equal(json_integer_value(
			                     json_object_get(d, "writer")),
			    (json_int_t)i);
			assert_int_equal(json_integer_value(
			                     json_object_get(d, "seq")),
			    (json_int_t)a->seq);
			vresp_clear(&r);
			checked++;
		}
	}
	fprintf(stderr, "checked after restart: %zu\n", checked);
	/* Writes continue after the restart. */
	assert_int_equal(vfx_http(&f, NULL, "POST", "/v1/secret/data/w0/after",
	                     f.root, "{\"data\":{\"ok\":1}}", &r),
	    0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);

	/* The audit chain: intact across the kill. */
	snprintf(dir, sizeof(dir), "%s/audit", f.data_dir);
	assert_int_equal(tsi_audit_reader_open(dir, &rd), TSI_OK);
	memset(&vr, 0, sizeof(vr));
	assert_int_equal(tsi_audit_verify(rd, &vr), TSI_OK);
	assert_true(vr.records >= total);
	tsi_audit_reader_close(rd);
	assert_int_equal(vfx_stop(&f), 0);
	/* And after a clean stop, from a closed environment. */
	assert_int_equal(tsi_audit_reader_open(dir, &rd), TSI_OK);
	assert_int_equal(tsi_audit_verify(rd, &vr), TSI_OK);
	tsi_audit_reader_close(rd);
	for (i = 0; i < WRITERS; i++)
		free(w[i].acks);
	vfx_cleanup(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill_during_writes),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
