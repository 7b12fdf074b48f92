#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tsi/buf.h"
#include "tsi/err.h"

static void
test_put_within_limit(void **state)
{
	struct tsi_buf *b = tsi_buf_new(8);

	(void)state;
	assert_non_null(b);
	assert_int_equal(tsi_buf_put(b, "abcd", 4), TSI_OK);
	assert_int_equal(tsi_buf_puts(b, "efgh"), TSI_OK);
	assert_int_equal(tsi_buf_len(b), 8);
	assert_string_equal(tsi_buf_str(b), "abcdefgh");
	/* One byte over the limit fails and changes nothing. */
	assert_int_equal(tsi_buf_put(b, "x", 1), TSI_ERR_TOO_LARGE);
	assert_int_equal(tsi_buf_len(b), 8);
	assert_string_equal(tsi_buf_str(b), "abcdefgh");
	tsi_buf_free(b);
}

static void
test_grows_past_initial_capacity(void **state)
{
	struct tsi_buf *b = tsi_buf_new(100000);
	char chunk[1000];
	int i;

	(void)state;
	memset(chunk, 'z', sizeof(chunk));
	for (i = 0; i < 100; i++)
		assert_int_equal(tsi_buf_put(b, chunk, sizeof(chunk)), TSI_OK);
	assert_int_equal(tsi_buf_len(b), 100000);
	assert_int_equal(tsi_buf_put(b, "z", 1), TSI_ERR_TOO_LARGE);
	assert_int_equal(tsi_buf_ptr(b)[99999], 'z');
	assert_int_equal(tsi_buf_ptr(b)[100000], '\0');
	tsi_buf_free(b);
}

static void
test_putf_bounded(void **state)
{
	struct tsi_buf *b = tsi_buf_new(10);

	(void)state;
	assert_int_equal(tsi_buf_putf(b, "%d-%s", 42, "ab"), TSI_OK);
	assert_string_equal(tsi_buf_str(b), "42-ab");
	assert_int_equal(tsi_buf_putf(b, "%s", "123456"), TSI_ERR_TOO_LARGE);
	assert_string_equal(tsi_buf_str(b), "42-ab");
	tsi_buf_free(b);
}

static void
test_get_advances_only_on_success(void **state)
{
	struct tsi_buf *b = tsi_buf_new(16);
	char out[8];

	(void)state;
	assert_int_equal(tsi_buf_put(b, "hello", 5), TSI_OK);
	assert_int_equal(tsi_buf_get(b, out, 2), TSI_OK);
	assert_memory_equal(out, "he", 2);
	assert_int_equal(tsi_buf_len(b), 3);
	assert_int_equal(tsi_buf_get(b, out, 4), TSI_ERR_PARSE);
	assert_int_equal(tsi_buf_len(b), 3);
	assert_string_equal(tsi_buf_str(b), "llo");
	assert_int_equal(tsi_buf_get(b, NULL, 3), TSI_OK);
	assert_int_equal(tsi_buf_len(b), 0);
	tsi_buf_free(b);
}

static void
test_take_and_reset(void **state)
{
	struct tsi_buf *b = tsi_buf_new(16);
	size_t n;
	char *s;

	(void)state;
	assert_int_equal(tsi_buf_puts(b, "secret"), TSI_OK);
	s = tsi_buf_take(b, &n);
	assert_non_null(s);
	assert_int_equal(n, 6);
	assert_string_equal(s, "secret");
	assert_int_equal(tsi_buf_len(b), 0);
	tsi_strfree(s);
	tsi_buf_free(NULL);
	tsi_freezero(NULL, 10);
	tsi_buf_free(b);
}

static void
test_zero_max(void **state)
{
	struct tsi_buf *b = tsi_buf_new(0);

	(void)state;
	assert_non_null(b);
	assert_int_equal(tsi_buf_put(b, "", 0), TSI_OK);
	assert_int_equal(tsi_buf_put(b, "a", 1), TSI_ERR_TOO_LARGE);
	assert_string_equal(tsi_buf_str(b), "");
	tsi_buf_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_within_limit),
		cmocka_unit_test(test_grows_past_initial_capacity),
		cmocka_unit_test(test_putf_bounded),
		cmocka_unit_test(test_get_advances_only_on_success),
		cmocka_unit_test(test_take_and_reset),
		cmocka_unit_test(test_zero_max),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
