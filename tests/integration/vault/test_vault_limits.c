/*
 * Connection limits: per-IP connection limit and the idle/slow client
 * timeout, against a real TLS server configured with small values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

static int
raw_connect(int port)
{
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

static void
test_limits(void **state)
{
	struct vfx f;
	struct vresp r;
	CURL *c1 = curl_easy_init(), *c2 = curl_easy_init(),
	     *c3 = curl_easy_init();
	struct timeval tv = { 5, 0 };
	struct timespec t0, t1;
	char buf[64];
	ssize_t n;
	long ms = 0;
	int i, s;

	assert_int_equal(vfx_init(&f, NULL,
	                     "per_ip_connection_limit = 2;\n"
	                     "connection_timeout = 1;\n"),
	    0);
	assert_int_equal(vfx_start(&f), 0);

	/* Two kept-alive connections from 127.0.0.1 use up the limit... */
	assert_int_equal(vfx_http(&f, c1, "GET", "/v1/sys/health", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	assert_int_equal(vfx_http(&f, c2, "GET", "/v1/sys/health", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	/* ...so a third is turned away without an answer. */
	assert_int_not_equal(vfx_http(&f, c3, "GET", "/v1/sys/health", NULL,
	                         NULL, &r),
	    0);
	vresp_clear(&r);

	/* Idle connections are closed after the timeout (1 s); then there is
	 * room again (polled, 10 s at most), and c1 needs a new connection. */
	for (i = 0; i < 100; i++) {
		if (vfx_http(&f, c3, "GET", "/v1/sys/health", NULL, NULL, &r) ==
		        0 &&
		    r.status == 200)
			break;
		vresp_clear(&r);
		usleep(100 * 1000);
	}
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	/* c1's connection was closed by the server: a new one is made (once
	 * the server has also closed c2's, polled as above). */
	for (i = 0; i < 100; i++) {
		if (vfx_http(&f, c1, "GET", "/v1/sys/health", NULL, NULL, &r) ==
		        0 &&
		    r.status == 200)
			break;
		vresp_clear(&r);
		usleep(100 * 1000);
	}
	assert_int_equal(r.status, 200);
	assert_int_equal(r.connects, 1);
	vresp_clear(&r);
	curl_easy_cleanup(c1);
	curl_easy_cleanup(c2);
	curl_easy_cleanup(c3);

	/* A client that sends half a TLS record and stalls is cut off: the
	 * server may send an alert first, then the connection ends at the
	 * 1 s timeout, well before our own 5 s receive timeout. A connection
	 * ended at once was turned away by the per-IP limit (the closes of
	 * c1..c3 not yet seen by the server): tried again. */
	for (i = 0; i < 50; i++) {
		s = raw_connect(f.port);
		assert_true(s >= 0);
		assert_int_equal(send(s, "\x16\x03\x01", 3, 0), 3);
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while ((n = recv(s, buf, sizeof(buf), 0)) > 0)
			;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		close(s);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= 500)
			break;
		usleep(100 * 1000);
	}
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	assert_true(ms >= 500);
	assert_true(ms < 4000);

	assert_int_equal(vfx_stop(&f), 0);
	vfx_cleanup(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
