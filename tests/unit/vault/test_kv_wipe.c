/*
 * tsi-vault frees KV write bodies wiped: with the allocators main() installs
 * (tsi_wipe_install(TSI_WIPE_JSON), lib/wipe.c), a body parsed by
 * vault_kv_write_parse leaves no secret value in freed heap memory. The
 * blocks are looked at as they reach free() (tests/support/free_probe.h,
 * -Wl,--wrap=free); first with plain allocators, to show the probe does see
 * an unwiped value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vault.h"
#include "parse.h"
#include "tsi/err.h"
#include "tsi/wipe.h"
#include "tests/support/free_probe.h"

#define SECRET "S3CRET-vault-kv-wipe-0123456789abcdef"
#define BODY \
	"{\"options\":{\"cas\":3},\"data\":{\"password\":\"" SECRET \
	"\",\"user\":\"app\"}}"

static void *
plain_malloc(size_t n)
{
	return malloc(n);
}

/* free here is __wrap_free: the probe sees the block as jansson left it. */
static void
plain_free(void *p)
{
	free(p);
}

/* Parses BODY as the KV write handler does, then frees it; returns how
 * many freed blocks still held the secret. */
static int
parse_and_free(void)
{
	json_t *req = NULL, *data = NULL;
	long long cas = 0;

	free_probe_arm(NULL, 0, SECRET);
	assert_int_equal(vault_kv_write_parse(BODY, strlen(BODY), &req, &data,
	                     &cas),
	    TSI_OK);
	assert_int_equal(cas, 3);
	assert_string_equal(json_string_value(
	                        json_object_get(data, "password")),
	    SECRET);
	json_decref(req);
	free_probe_disarm();
	assert_true(free_probe.frees >= 2); /* the value, the parser's buffer */
	return free_probe.marker_found;
}

static void
test_kv_write_body_wiped(void **state)
{
	(void)state;
	json_set_alloc_funcs(plain_malloc, plain_free);
	assert_true(parse_and_free() > 0);
	tsi_wipe_install(TSI_WIPE_JSON);
	assert_int_equal(parse_and_free(), 0);
}

/* The allocators themselves: realloc moves and wipes the old block. */
static void
test_wipe_realloc(void **state)
{
	char *p, *q;

	(void)state;
	assert_non_null(p = tsi_wipe_malloc(64));
	memcpy(p, SECRET, sizeof(SECRET));
	free_probe_arm(p, sizeof(SECRET), SECRET);
	assert_non_null(q = tsi_wipe_realloc(p, 4096));
	free_probe_disarm();
	assert_true(free_probe_watch_wiped());
	assert_int_equal(free_probe.marker_found, 0);
	assert_memory_equal(q, SECRET, sizeof(SECRET));
	free_probe_arm(q, sizeof(SECRET), SECRET);
	tsi_wipe_free(q);
	free_probe_disarm();
	assert_true(free_probe_watch_wiped());
	assert_int_equal(free_probe.marker_found, 0);
	tsi_wipe_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_write_body_wiped),
		cmocka_unit_test(test_wipe_realloc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
