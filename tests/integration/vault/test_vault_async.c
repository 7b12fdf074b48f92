/*
 * Reads and logins answered from MHD's thread after their audit record is
 * durable (the record is submitted, the connection suspended and resumed by
 * the record's callback): keep-alive holds over many reads, every answer
 * has its record, concurrent readers all get answers, and a server stopped
 * under read load exits cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static int
count_records(struct vfx *f, const char *query)
{
	struct vresp r;
	char path[512];
	int n;

	snprintf(path, sizeof(path), "/v1/sys/audit/releases?limit=1000&%s",
	    query);
	assert_int_equal(vfx_http(f, NULL, "GET", path, f->root, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	n = (int)json_array_size(
	    json_object_get(json_object_get(r.json, "data"), "records"));
	vresp_clear(&r);
	return n;
}

static void
test_keep_alive_reads_audited(void **state)
{
	struct vfx f;
	struct vresp r;
	CURL *c;
	int i, ok = 0, nf = 0, denied = 0;
	const char *path;

	(void)state;
	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(vfx_kv_put(&f, f.root, "ka/one",
	                     "{\"data\":{\"v\":\"KA-SECRET\"}}"),
	    200);
	c = curl_easy_init();
	assert_non_null(c);
	for (i = 0; i < 60; i++) {
		path = i % 5 == 3 ? "/v1/secret/data/ka/none"
		                  : "/v1/secret/data/ka/one";
		assert_int_equal(vfx_http(&f, c, "GET", path,
		                     i % 7 == 6 ? "s.not-a-token" : f.root,
		                     NULL, &r),
		    0);
		/* one connection for all of them */
		assert_int_equal(r.connects, i == 0 ? 1 : 0);
		if (i % 7 == 6) {
			assert_int_equal(r.status, 403);
			denied++;
		} else if (i % 5 == 3) {
			assert_int_equal(r.status, 404);
			nf++;
		} else {
			assert_int_equal(r.status, 200);
			assert_non_null(strstr(r.body, "KA-SECRET"));
			ok++;
		}
		vresp_clear(&r);
	}
	/* a metadata read and a list on the same connection */
	assert_int_equal(vfx_http(&f, c, "GET", "/v1/secret/metadata/ka/one",
	                     f.root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.connects, 0);
	vresp_clear(&r);
	assert_int_equal(vfx_http(&f, c, "LIST", "/v1/secret/metadata/ka",
	                     f.root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "one"));
	assert_int_equal(r.connects, 0);
	vresp_clear(&r);
	curl_easy_cleanup(c);
	/* every answer has its record */
	assert_int_equal(count_records(&f,
	    "decision=allow&path=secret/data/ka/one"), ok + 2 /* the write:
	    its decision and its outcome */);
	assert_int_equal(count_records(&f,
	                     "decision=allow&path=secret/data/ka/none"),
	    nf);
	assert_int_equal(count_records(&f,
	                     "decision=deny&path=secret/data/ka/"),
	    denied);
	assert_int_equal(vfx_stop(&f), 0);
	vfx_cleanup(&f);
}

struct reader {
	struct vfx *f;
	int n;
	int ok;
	int answered;
	volatile int *stop;
};

static void *
reader_main(void *arg)
{
	struct reader *rd = arg;
	struct vresp r;
	CURL *c = curl_easy_init();
	int i;

	for (i = 0; c != NULL && i < rd->n && !*rd->stop; i++) {
		if (vfx_http(rd->f, c, "GET", "/v1/secret/data/ka/one",
		        rd->f->root, NULL, &r) != 0)
			break;
		__atomic_add_fetch(&rd->answered, 1, __ATOMIC_RELAXED);
		if (r.status == 200 && strstr(r.body, "KA-SECRET") != NULL)
			rd->ok++;
		vresp_clear(&r);
	}
	if (c != NULL)
		curl_easy_cleanup(c);
	return NULL;
}

#define READERS 6

static void
test_concurrent_reads_and_stop(void **state)
{
	struct vfx f;
	struct reader rd[READERS];
	pthread_t th[READERS];
	volatile int stop = 0;
	int i, spins, total = 0;

	(void)state;
	assert_int_equal(vfx_init(&f, NULL, NULL), 0);
	assert_int_equal(vfx_start(&f), 0);
	assert_int_equal(vfx_kv_put(&f, f.root, "ka/one",
	                     "{\"data\":{\"v\":\"KA-SECRET\"}}"),
	    200);
	for (i = 0; i < READERS; i++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].f = &f;
		rd[i].n = 40;
		rd[i].stop = &stop;
		assert_int_equal(pthread_create(&th[i], NULL, reader_main,
		                     &rd[i]),
		    0);
	}
	for (i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].answered, 40);
		assert_int_equal(rd[i].ok, 40);
		total += rd[i].ok;
	}
	assert_int_equal(count_records(&f,
	                     "decision=allow&path=secret/data/ka/one"),
	    total + 2);

	/* Stopped while readers keep going: suspended connections are
	 * resumed before the listener stops, and the server exits 0. */
	for (i = 0; i < READERS; i++) {
		memset(&rd[i], 0, sizeof(rd[i]));
		rd[i].f = &f;
		rd[i].n = 100000;
		rd[i].stop = &stop;
		assert_int_equal(pthread_create(&th[i], NULL, reader_main,
		                     &rd[i]),
		    0);
	}
	/* Until every reader has had an answer: the stop then meets
	 * connections in use. */
	for (spins = 0;; spins++) {
		int busy = 0;
		for (i = 0; i < READERS; i++)
			busy += __atomic_load_n(&rd[i].answered,
			            __ATOMIC_RELAXED) > 0;
		if (busy == READERS)
			break;
		assert_true(spins < 3000); /* 30 s */
		usleep(10 * 1000);
	}
	assert_int_equal(vfx_stop(&f), 0);
	stop = 1;
	for (i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	vfx_cleanup(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_alive_reads_audited),
		cmocka_unit_test(test_concurrent_reads_and_stop),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
