/* Field extraction and output formats. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/err.h"

static const char *record =
    "{\"patient\":\"Jane Doe\",\"diagnosis\":\"flu\",\"visits\":3,"
    "\"tags\":[\"a\",\"b\"]}";

/* Renders data with field/format; returns the code and the text in out. */
static int
render(const char *data, const char *field, enum tsi_sidecar_format f,
    char *out, size_t outlen, char *err, size_t errlen)
{
	struct tsi_sidecar_secret sec;
	struct tsi_buf *b = NULL;
	json_t *j = json_loads(data, 0, NULL);
	int r;

	assert_non_null(j);
	memset(&sec, 0, sizeof(sec));
	sec.name = (char *)"t";
	sec.field = (char *)field;
	sec.format = f;
	out[0] = '\0';
	r = tsi_sidecar_render(&sec, j, &b, err, errlen);
	if (r == TSI_OK) {
		assert_non_null(b);
		assert_true(tsi_buf_len(b) < outlen);
		memcpy(out, tsi_buf_ptr(b), tsi_buf_len(b));
		out[tsi_buf_len(b)] = '\0';
	} else {
		assert_null(b);
	}
	tsi_buf_free(b);
	json_decref(j);
	return r;
}

static void
test_json_whole(void **state)
{
	char out[1024], err[256];
	json_t *back;

	(void)state;
	assert_int_equal(render(record, NULL, TSI_SIDECAR_FMT_JSON, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(out[strlen(out) - 1], '\n');
	back = json_loads(out, 0, NULL);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "patient")),
	    "Jane Doe");
	assert_int_equal(json_integer_value(json_object_get(back, "visits")),
	    3);
	json_decref(back);
}

static void
test_json_field(void **state)
{
	char out[256], err[256];

	(void)state;
	assert_int_equal(render(record, "diagnosis", TSI_SIDECAR_FMT_JSON, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(out, "\"flu\"\n");
}

static void
test_raw(void **state)
{
	char out[256], err[256];

	(void)state;
	assert_int_equal(render(record, "patient", TSI_SIDECAR_FMT_RAW, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(out, "Jane Doe"); /* as is: no quotes, no newline */
	assert_int_equal(render(record, "visits", TSI_SIDECAR_FMT_RAW, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(out, "3");
	assert_int_equal(render(record, "tags", TSI_SIDECAR_FMT_RAW, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(out, "[\"a\",\"b\"]");
}

static void
test_missing_field(void **state)
{
	char out[256], err[256];

	(void)state;
	assert_int_equal(render(record, "ssn", TSI_SIDECAR_FMT_RAW, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "no field 'ssn'"));
}

static void
test_env(void **state)
{
	char out[256], err[256];

	(void)state;
	assert_int_equal(
	    render("{\"DB_USER\":\"app\",\"DB_PORT\":5432,\"TLS\":true}", NULL,
	        TSI_SIDECAR_FMT_ENV, out, sizeof(out), err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(out, "DB_USER=app\nDB_PORT=5432\nTLS=true\n");
	assert_int_equal(render("{\"DB_USER\":\"app\",\"DB_PORT\":5432}",
	                     "DB_USER", TSI_SIDECAR_FMT_ENV, out, sizeof(out),
	                     err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(out, "DB_USER=app\n");
	/* Keys that are no variable names, and values that would break lines,
	 * are refused; the message names the key, not the value. */
	assert_int_equal(render("{\"db-user\":\"app\"}", NULL,
	                     TSI_SIDECAR_FMT_ENV, out, sizeof(out), err,
	                     sizeof(err)),
	    TSI_ERR_PARSE);
	assert_non_null(strstr(err, "'db-user' is not a valid environment"));
	assert_int_equal(render("{\"K\":\"s3cr3t\\nX=1\"}", NULL,
	                     TSI_SIDECAR_FMT_ENV, out, sizeof(out), err,
	                     sizeof(err)),
	    TSI_ERR_PARSE);
	assert_null(strstr(err, "s3cr3t"));
	assert_non_null(strstr(err, "'K'"));
}

static void
test_not_object(void **state)
{
	char out[256], err[256];

	(void)state;
	assert_int_equal(render("[1,2]", NULL, TSI_SIDECAR_FMT_JSON, out,
	                     sizeof(out), err, sizeof(err)),
	    TSI_ERR_PARSE);
}

static void
test_format_names(void **state)
{
	enum tsi_sidecar_format f;

	(void)state;
	assert_int_equal(tsi_sidecar_format_parse("env", &f), TSI_OK);
	assert_int_equal(f, TSI_SIDECAR_FMT_ENV);
	assert_string_equal(tsi_sidecar_format_name(f), "env");
	assert_int_equal(tsi_sidecar_format_parse("JSON", &f),
	    TSI_ERR_INVALID_ARG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_whole),
		cmocka_unit_test(test_json_field),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_missing_field),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_not_object),
		cmocka_unit_test(test_format_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
