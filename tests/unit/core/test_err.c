#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "tsi/err.h"

static void
test_every_code_has_text(void **state)
{
	int c;

	(void)state;
	assert_string_equal(tsi_strerror(TSI_OK), "success");
	for (c = TSI_ERR_INTERNAL; c >= TSI_ERR_UNIDENTIFIED; c--)
		assert_string_not_equal(tsi_strerror(c), "unknown error");
	assert_string_equal(tsi_strerror(-9999), "unknown error");
	assert_string_equal(tsi_strerror(TSI_ERR_AUDIT),
	    "audit log unavailable");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_has_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
