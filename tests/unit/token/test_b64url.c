/* base64url and base64: one accepted encoding per byte string. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/rand.h>

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/b64url.h"

static void
expect_url(const char *in, const char *want, size_t wantlen)
{
	unsigned char *out = NULL;
	size_t n = 0;

	assert_int_equal(tsi_b64url_decode(in, strlen(in), &out, &n), TSI_OK);
	assert_int_equal(n, wantlen);
	assert_memory_equal(out, want, wantlen);
	tsi_freezero(out, n);
}

static void
refuse_url(const char *in)
{
	unsigned char *out = NULL;
	size_t n = 0;

	assert_int_equal(tsi_b64url_decode(in, strlen(in), &out, &n),
	    TSI_ERR_PARSE);
	assert_null(out);
}

static void
test_known_vectors(void **state)
{
	char *e = NULL;

	(void)state;
	/* RFC 4648 section 10, without padding. */
	expect_url("", "", 0);
	expect_url("Zg", "f", 1);
	expect_url("Zm8", "fo", 2);
	expect_url("Zm9v", "foo", 3);
	expect_url("Zm9vYmFy", "foobar", 6);
	/* The url alphabet: 0xfb 0xff -> "-_8" */
	expect_url("-_8", "\xfb\xff", 2);
	assert_int_equal(tsi_b64url_encode("\xfb\xff", 2, &e), TSI_OK);
	assert_string_equal(e, "-_8");
	free(e);
	assert_int_equal(tsi_b64url_encode("f", 1, &e), TSI_OK);
	assert_string_equal(e, "Zg");
	free(e);
	assert_int_equal(tsi_b64url_encode("", 0, &e), TSI_OK);
	assert_string_equal(e, "");
	free(e);
}

static void
test_url_strictness(void **state)
{
	(void)state;
	refuse_url("Zg=="); /* padding */
	refuse_url("Zg=");
	refuse_url("Z"); /* impossible length */
	refuse_url("Zm9vY");
	refuse_url("+_8"); /* standard alphabet */
	refuse_url("-/8");
	refuse_url("Zm 9v"); /* whitespace */
	refuse_url("Zm9v\n");
	refuse_url("Zh"); /* non-zero unused bits: not canonical */
	refuse_url("Zm9");
	{
		unsigned char *out = NULL;
		size_t n;
		/* An embedded NUL within the given length. */
		assert_int_equal(tsi_b64url_decode("Zm\0v", 4, &out, &n),
		    TSI_ERR_PARSE);
	}
}

static void
test_std_strictness(void **state)
{
	unsigned char *out = NULL;
	size_t n = 0;
	char *e = NULL;

	(void)state;
	assert_int_equal(tsi_b64_decode("Zg==", 4, &out, &n), TSI_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'f');
	tsi_freezero(out, n);
	assert_int_equal(tsi_b64_decode("+/8=", 4, &out, &n), TSI_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\xfb\xff", 2);
	tsi_freezero(out, n);
	assert_int_equal(tsi_b64_encode("\xfb\xff", 2, &e), TSI_OK);
	assert_string_equal(e, "+/8=");
	free(e);
	out = NULL;
	assert_int_equal(tsi_b64_decode("Zg", 2, &out, &n), TSI_ERR_PARSE);
	assert_int_equal(tsi_b64_decode("Zg=", 3, &out, &n), TSI_ERR_PARSE);
	assert_int_equal(tsi_b64_decode("Z===", 4, &out, &n), TSI_ERR_PARSE);
	assert_int_equal(tsi_b64_decode("Zh==", 4, &out, &n), TSI_ERR_PARSE);
	assert_int_equal(tsi_b64_decode("Zg=a", 4, &out, &n), TSI_ERR_PARSE);
	assert_int_equal(tsi_b64_decode("-_8=", 4, &out, &n), TSI_ERR_PARSE);
	assert_int_equal(tsi_b64_decode("Zm9v\nZm9v", 9, &out, &n),
	    TSI_ERR_PARSE);
	assert_null(out);
}

static void
test_round_trip_random(void **state)
{
	unsigned char in[300], *out;
	char *e;
	size_t len, n;

	(void)state;
	for (len = 0; len < sizeof(in); len++) {
		RAND_bytes(in, (int)sizeof(in));
		assert_int_equal(tsi_b64url_encode(in, len, &e), TSI_OK);
		assert_null(strchr(e, '='));
		assert_int_equal(tsi_b64url_decode(e, strlen(e), &out, &n),
		    TSI_OK);
		assert_int_equal(n, len);
		assert_memory_equal(out, in, len);
		tsi_freezero(out, n);
		free(e);
		assert_int_equal(tsi_b64_encode(in, len, &e), TSI_OK);
		assert_int_equal(tsi_b64_decode(e, strlen(e), &out, &n),
		    TSI_OK);
		assert_int_equal(n, len);
		assert_memory_equal(out, in, len);
		tsi_freezero(out, n);
		free(e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_url_strictness),
		cmocka_unit_test(test_std_strictness),
		cmocka_unit_test(test_round_trip_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
