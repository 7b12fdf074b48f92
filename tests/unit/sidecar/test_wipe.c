/*
 * The sidecar's allocators (lib/wipe.c, installed by sidecar/wipe.c) wipe
 * what jansson, libcurl and OpenSSL free: a decoded secret value must not stay behind in freed heap memory.
 * The blocks are looked at as they reach free() (tests/support/free_probe.h;
 * this executable is linked with -Wl,--wrap=free, so tsi_wipe_free
 * reaches the probe; the libraries' own frees reach it only through the
 * installed allocators, which the counts below also check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "sidecar/sidecar.h"
#include "tsi/err.h"
#include "tests/support/free_probe.h"

#define SECRET "S3CRET-sidecar-wipe-0123456789abcdef"

/* jansson: the parser's buffers and the decoded value. */
static void
test_jansson_frees_wiped(void **state)
{
	json_error_t err;
	json_t *j;

	(void)state;
	free_probe_arm(NULL, 0, SECRET);
	j = json_loads("{\"password\":\"" SECRET "\",\"user\":\"app\"}", 0,
	    &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "password")),
	    SECRET);
	json_decref(j);
	free_probe_disarm();
	/* The value and the parser's token buffer at least went through. */
	assert_true(free_probe.frees >= 2);
	assert_int_equal(free_probe.marker_found, 0);
}

/* libcurl: memory it hands out and takes back with curl_free. */
static void
test_curl_frees_wiped(void **state)
{
	char *e;

	(void)state;
	free_probe_arm(NULL, 0, SECRET);
	e = curl_easy_escape(NULL, SECRET, 0);
	assert_non_null(e);
	assert_string_equal(e, SECRET); /* nothing in it needs escaping */
	curl_free(e);
	free_probe_disarm();
	assert_true(free_probe.frees >= 1);
	assert_int_equal(free_probe.marker_found, 0);
}

/* OpenSSL: OPENSSL_free goes through the installed o_free. */
static void
test_openssl_frees_wiped(void **state)
{
	char *s;

	(void)state;
	free_probe_arm(NULL, 0, SECRET);
	s = OPENSSL_strdup(SECRET);
	assert_non_null(s);
	OPENSSL_free(s);
	free_probe_disarm();
	assert_true(free_probe.frees >= 1);
	assert_int_equal(free_probe.marker_found, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jansson_frees_wiped),
		cmocka_unit_test(test_curl_frees_wiped),
		cmocka_unit_test(test_openssl_frees_wiped),
	};

	/* As tsi-sidecar's main does, before anything allocates. */
	tsi_sidecar_wipe_install();
	if (tsi_sidecar_curl_init(0) != TSI_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
