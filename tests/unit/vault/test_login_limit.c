/* Per-source limits on failed logins (login_limit.c, issue 15.1): the
 * limit per window, Retry-After to the window's end, one aggregate per
 * source and window, IPv6 by /64, a table that stays bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "vault.h"
#include "login_limit.h"
#include "tsi/err.h"

struct seen {
	int calls;
	unsigned total;
	char src[64];
	time_t start;
};

static void
note(void *arg, const char *src, unsigned count, time_t start, unsigned window)
{
	struct seen *s = arg;

	assert_int_equal(window, 10);
	s->calls++;
	s->total += count;
	snprintf(s->src, sizeof(s->src), "%s", src);
	s->start = start;
}

static void
test_limit_window_and_record(void **state)
{
	struct vault_limiter *l = NULL;
	struct seen s;
	time_t t0 = 1000000;
	int first = 0, i;

	(void)state;
	assert_int_equal(vault_limiter_new(3, 10, 64, &l), TSI_OK);
	for (i = 0; i < 3; i++) {
		assert_int_equal(vault_limiter_check(l, "10.0.0.1", t0, &first),
		    0);
		vault_limiter_fail(l, "10.0.0.1", t0);
	}
	/* over the limit: refused until the window ends, others unaffected */
	assert_int_equal(vault_limiter_check(l, "10.0.0.1", t0 + 4, &first), 6);
	assert_int_equal(first, 1);
	assert_int_equal(vault_limiter_check(l, "10.0.0.1", t0 + 9, &first), 1);
	assert_int_equal(first, 0);
	assert_int_equal(vault_limiter_check(l, "10.0.0.2", t0 + 9, &first), 0);
	assert_int_equal(vault_limiter_throttled(l, t0 + 9), 1);
	/* nothing is recorded while the window runs */
	memset(&s, 0, sizeof(s));
	assert_int_equal(vault_limiter_drain(l, t0 + 9, note, &s, 8), 0);
	/* it ended: the source may try again, and its two refusals become
	 * one record, once */
	assert_int_equal(vault_limiter_check(l, "10.0.0.1", t0 + 10, &first),
	    0);
	assert_int_equal(vault_limiter_drain(l, t0 + 11, note, &s, 8), 1);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.total, 2);
	assert_string_equal(s.src, "10.0.0.1");
	assert_int_equal(s.start, t0);
	assert_int_equal(vault_limiter_drain(l, t0 + 12, note, &s, 8), 0);
	assert_int_equal(vault_limiter_throttled(l, t0 + 12), 0);
	vault_limiter_free(l);
}

static void
test_ipv6_by_prefix(void **state)
{
	struct vault_limiter *l = NULL;
	int first = 0;

	(void)state;
	assert_int_equal(vault_limiter_new(2, 10, 64, &l), TSI_OK);
	/* two addresses of one /64 share a budget */
	vault_limiter_fail(l, "2001:db8:1:2::1", 100);
	vault_limiter_fail(l, "2001:db8:1:2:ffff::9", 100);
	assert_true(
	    vault_limiter_check(l, "2001:db8:1:2::77", 101, &first) > 0);
	assert_int_equal(vault_limiter_check(l, "2001:db8:1:3::1", 101, &first),
	    0);
	vault_limiter_free(l);
}

static void
test_bounded_table(void **state)
{
	struct vault_limiter *l = NULL;
	char ip[32];
	int first = 0, i;

	(void)state;
	/* 8 slots: thousands of failing sources share the overflow slot,
	 * which is then limited as one source */
	assert_int_equal(vault_limiter_new(5, 10, 8, &l), TSI_OK);
	for (i = 0; i < 2000; i++) {
		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
		vault_limiter_fail(l, ip, 500);
	}
	assert_true(vault_limiter_check(l, "10.9.9.9", 501, &first) > 0);
	assert_true(vault_limiter_throttled(l, 501) >= 1);
	vault_limiter_free(l);
}

static void
test_off(void **state)
{
	struct vault_limiter *l = NULL;
	int first = 0, i;

	(void)state;
	assert_int_equal(vault_limiter_new(0, 10, 8, &l), TSI_OK);
	for (i = 0; i < 100; i++)
		vault_limiter_fail(l, "10.0.0.1", 1);
	assert_int_equal(vault_limiter_check(l, "10.0.0.1", 1, &first), 0);
	vault_limiter_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_window_and_record),
		cmocka_unit_test(test_ipv6_by_prefix),
		cmocka_unit_test(test_bounded_table),
		cmocka_unit_test(test_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
