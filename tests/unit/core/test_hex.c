/* tsi_hex_encode/decode: the one hex rule of the chain hashes (audit: lower
 * case only, compared as written) and of operator input (tsi-attest's EK
 * hashes: either case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tsi/err.h"
#include "tsi/hex.h"

static void
test_round_trip(void **state)
{
	uint8_t in[256], back[256];
	char hex[513];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	tsi_hex_encode(in, sizeof(in), hex);
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102", 6);
	assert_string_equal(hex + 506, "fdfeff");
	assert_int_equal(tsi_hex_decode(hex, back, sizeof(back), 0), TSI_OK);
	assert_memory_equal(in, back, sizeof(in));
	tsi_hex_encode(in, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(tsi_hex_decode("", back, 0, 0), TSI_OK);
}

/* An audit record's hash: 64 lower-case digits, nothing else. */
static void
test_audit_strict(void **state)
{
	const char *ok =
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
	uint8_t md[32];
	char again[65];

	(void)state;
	assert_int_equal(tsi_hex_decode(ok, md, 32, 0), TSI_OK);
	tsi_hex_encode(md, 32, again);
	assert_string_equal(again, ok);
	assert_int_equal(tsi_hex_decode("9F86D081884C7D659A2FEAA0C55AD015A3BF4F"
	                                "1B2B0B822CD15D6C15B0F00A08",
	                     md, 32, 0),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode(ok, md, 31, 0), TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode(ok, md, 33, 0), TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode("0g", md, 1, 0), TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode(" 0", md, 1, 0), TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode("0", md, 1, 0), TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode(NULL, md, 1, 0), TSI_ERR_PARSE);
}

/* tsi-attest's EK hash from an operator: either case, same bytes. */
static void
test_attest_any_case(void **state)
{
	uint8_t a[4], b[4];

	(void)state;
	assert_int_equal(tsi_hex_decode("DEADbeef", a, 4, TSI_HEX_ANY_CASE),
	    TSI_OK);
	assert_int_equal(tsi_hex_decode("deadbeef", b, 4, 0), TSI_OK);
	assert_memory_equal(a, b, 4);
	assert_int_equal(tsi_hex_decode("DEADBEEG", a, 4, TSI_HEX_ANY_CASE),
	    TSI_ERR_PARSE);
	assert_int_equal(tsi_hex_decode("deadbeef", NULL, 4, 0), TSI_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_audit_strict),
		cmocka_unit_test(test_attest_any_case),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
