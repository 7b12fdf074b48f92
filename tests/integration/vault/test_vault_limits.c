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
	CURL *c1 = curl_easy_init(), *c2 = curl_easy_init(), *c3 = curl_easy_init();
	struct timeval tv = { 5, 0 };
	struct timespec t0, t1;
	char buf[64];
	ssize_t n;
	int s;

	assert_int_equal(vfx_init(&f, NULL, "per_ip_connection_limit = 2;\n"
	    "connection_timeout = 1;\n"), 0);
	assert_int_equal(vfx_start(&f), 0);

	/* Two kept-alive connections from 127.0.0.1 use up the limit... */
	assert_int_equal(vfx_http(&f, c1, "GET", "/v1/sys/health", NULL, NULL,
	    &r), 0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	assert_int_equal(vfx_http(&f, c2, "GET", "/v1/sys/health", NULL, NULL,
	    &r), 0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	/* ...so a third is turned away without an answer. */
	assert_int_not_equal(vfx_http(&f, c3, "GET", "/v1/sys/health", NULL,
	    NULL, &r), 0);
	vresp_clear(&r);

	/* Idle connections are closed after the timeout; then there is room
	 * again, and c1 needs a new connection. */
	sleep(3);
	assert_int_equal(vfx_http(&f, c3, "GET", "/v1/sys/health", NULL, NULL,
	    &r), 0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	assert_int_equal(vfx_http(&f, c1, "GET", "/v1/sys/health", NULL, NULL,
	    &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.connects, 1);
	vresp_clear(&r);
	curl_easy_cleanup(c1);
	curl_easy_cleanup(c2);
	curl_easy_cleanup(c3);
	sleep(2);

	/* A client that sends half a TLS record and stalls is cut off: the
	 * server may send an alert first, then the connection ends, well
	 * before our own 5 s receive timeout. */
	s = raw_connect(f.port);
	assert_true(s >= 0);
	assert_int_equal(send(s, "\x16\x03\x01", 3, 0), 3);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((n = recv(s, buf, sizeof(buf), 0)) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	assert_true(t1.tv_sec - t0.tv_sec < 4);
	close(s);

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
