/* The retry schedule: bounds for every attempt and random value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sidecar/sidecar.h"

static void
test_bounds(void **state)
{
	static const uint32_t rnds[] = { 0, 1, 7, 1000, 0x7fffffff,
		0xffffffffu };
	unsigned a;
	size_t i;
	long nominal, d;

	(void)state;
	for (a = 0; a < 70; a++) {
		nominal = 250;
		for (unsigned k = 0; k < a && nominal < 5000; k++)
			nominal = nominal * 2 > 5000 ? 5000 : nominal * 2;
		for (i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
			d = tsi_sidecar_backoff_ms(a, 250, 5000, rnds[i]);
			assert_true(d <= nominal);
			assert_true(d >= nominal - nominal / 2);
			assert_true(d <= 5000);
		}
	}
	/* The schedule doubles: 250, 500, 1000, 2000, 4000, then the cap. */
	assert_int_equal(tsi_sidecar_backoff_ms(0, 250, 5000, 125), 250);
	assert_int_equal(tsi_sidecar_backoff_ms(3, 250, 5000, 1000), 2000);
	assert_int_equal(tsi_sidecar_backoff_ms(4, 250, 5000, 0), 2000);
	assert_int_equal(tsi_sidecar_backoff_ms(5, 250, 5000, 2500), 5000);
	assert_int_equal(tsi_sidecar_backoff_ms(1000000, 250, 5000, 2500),
	    5000);
	/* base above cap is clamped; nonsense gives no delay, not a hang. */
	assert_true(tsi_sidecar_backoff_ms(0, 9000, 5000, 12345) <= 5000);
	assert_int_equal(tsi_sidecar_backoff_ms(3, 0, 5000, 1), 0);
	assert_int_equal(tsi_sidecar_backoff_ms(3, 100, -1, 1), 0);
}

static void
test_total_bound(void **state)
{
	/* --once with the defaults (6 attempts: 5 sleeps) waits at most
	 * 250+500+1000+2000+4000 ms. */
	long total = 0;
	unsigned a;

	(void)state;
	for (a = 0; a < 5; a++)
		total += tsi_sidecar_backoff_ms(a, 250, 5000, 0xffffffffu);
	assert_true(total <= 7750);
	assert_true(total >= 7750 / 2);
}

static void
test_jitter(void **state)
{
	uint32_t r;

	(void)state;
	for (r = 0; r < 5000; r += 7) {
		long d = tsi_sidecar_jitter_ms(60000, r * 2654435761u);
		assert_true(d >= 48000);
		assert_true(d < 72000);
	}
	assert_int_equal(tsi_sidecar_jitter_ms(60000, 0), 48000);
	assert_int_equal(tsi_sidecar_jitter_ms(0, 5), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_total_bound),
		cmocka_unit_test(test_jitter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
