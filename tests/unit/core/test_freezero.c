/*
 * Secrets are wiped before their memory is freed: tsi_freezero,
 * tsi_strfree and tsi_buf (on free and when it grows). The blocks are
 * looked at as they reach free() (tests/support/free_probe.h, this
 * executable is linked with -Wl,--wrap=free): a free that skipped the
 * wipe hands over a block that still holds the secret.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tests/support/free_probe.h"

#define SECRET "S3CRET-freezero-0123456789abcdef"

static void
test_freezero_wipes(void **state)
{
	size_t n = 200;
	unsigned char *p = malloc(n);

	(void)state;
	assert_non_null(p);
	memset(p, 0xa5, n);
	free_probe_arm(p, n, NULL);
	tsi_freezero(p, n);
	free_probe_disarm();
	assert_int_equal(free_probe.watch_freed, 1);
	assert_true(free_probe_watch_wiped());
	/* NULL is accepted and frees nothing. */
	free_probe_arm(NULL, 0, NULL);
	tsi_freezero(NULL, 16);
	free_probe_disarm();
	assert_int_equal(free_probe.frees, 0);
}

static void
test_strfree_wipes(void **state)
{
	char *s = strdup(SECRET);

	(void)state;
	assert_non_null(s);
	free_probe_arm(s, strlen(SECRET), SECRET);
	tsi_strfree(s);
	free_probe_disarm();
	assert_int_equal(free_probe.watch_freed, 1);
	assert_true(free_probe_watch_wiped());
	assert_int_equal(free_probe.marker_found, 0);
}

/* A buffer that held a secret, grown (its old block freed) and freed. */
static void
test_buf_wipes(void **state)
{
	struct tsi_buf *b = tsi_buf_new(1 << 20);
	size_t i;

	(void)state;
	assert_non_null(b);
	free_probe_arm(NULL, 0, SECRET);
	assert_int_equal(tsi_buf_put(b, SECRET, strlen(SECRET)), TSI_OK);
	for (i = 0; i < 64; i++) /* grows from 64 bytes to over 2 KiB */
		assert_int_equal(tsi_buf_put(b,
		                     "................................", 32),
		    TSI_OK);
	tsi_buf_free(b);
	free_probe_disarm();
	/* The old blocks and the last one and the struct were all freed. */
	assert_true(free_probe.frees >= 4);
	assert_int_equal(free_probe.marker_found, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_freezero_wipes),
		cmocka_unit_test(test_strfree_wipes),
		cmocka_unit_test(test_buf_wipes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
