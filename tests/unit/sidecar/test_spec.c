/* TSI_SECRETS parsing: good input, malformed, oversized, path escapes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/sidecar.h"
#include "tsi/err.h"

static int
parse(const char *text, struct tsi_sidecar_spec **out, char *err, size_t n)
{
	return tsi_sidecar_spec_parse("TSI_SECRETS", text, strlen(text),
	    "/run/tsi/secrets", out, err, n);
}

/* Expects failure with code r and a message containing want. */
static void
expect_bad(const char *text, int r, const char *want)
{
	struct tsi_sidecar_spec *s = NULL;
	char err[512] = "";

	assert_int_equal(parse(text, &s, err, sizeof(err)), r);
	assert_null(s);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, want);
}

static void
test_good(void **state)
{
	struct tsi_sidecar_spec *s = NULL;
	char err[256];

	(void)state;
	assert_int_equal(parse("[{\"name\":\"record\",\"path\":\"secret/data/"
	                       "medical/record\","
	                       "\"dest\":\"medical/record.json\"},"
	                       "{\"name\":\"pw\",\"path\":\"db/"
	                       "creds\",\"dest\":\"/run/tsi/secrets/db/pw\","
	                       "\"field\":\"password\",\"format\":\"raw\"},"
	                       "{\"name\":\"env\",\"path\":\"db/"
	                       "creds\",\"dest\":\"db.env\",\"format\":\"env\"}"
	                       "]",
	                     &s, err, sizeof(err)),
	    TSI_OK);
	assert_non_null(s);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->v[0].name, "record");
	assert_string_equal(s->v[0].path,
	    "medical/record"); /* prefix dropped */
	assert_string_equal(s->v[0].dest, "medical/record.json");
	assert_null(s->v[0].field);
	assert_int_equal(s->v[0].format, TSI_SIDECAR_FMT_JSON);
	assert_string_equal(s->v[1].dest,
	    "db/pw"); /* absolute under dest dir */
	assert_string_equal(s->v[1].field, "password");
	assert_int_equal(s->v[1].format, TSI_SIDECAR_FMT_RAW);
	assert_int_equal(s->v[2].format, TSI_SIDECAR_FMT_ENV);
	tsi_sidecar_spec_free(s);
}

static void
test_malformed(void **state)
{
	(void)state;
	expect_bad("[{\"name\":\"a\",", TSI_ERR_PARSE, "invalid JSON");
	expect_bad("{\"name\":\"a\"}", TSI_ERR_INVALID_ARG, "JSON array");
	expect_bad("[]", TSI_ERR_INVALID_ARG, "no secrets");
	expect_bad("[42]", TSI_ERR_INVALID_ARG,
	    "TSI_SECRETS[0]: must be an object");
	expect_bad("[{\"path\":\"a\",\"dest\":\"a\"}]", TSI_ERR_INVALID_ARG,
	    "TSI_SECRETS[0].name: is missing");
	expect_bad("[{\"name\":\"a\",\"dest\":\"a\"}]", TSI_ERR_INVALID_ARG,
	    ".path: is missing");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\"}]", TSI_ERR_INVALID_ARG,
	    ".dest: is missing");
	expect_bad("[{\"name\":1,\"path\":\"a\",\"dest\":\"a\"}]",
	    TSI_ERR_INVALID_ARG, ".name: must be a string");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"a\",\"mode\":"
	           "\"0644\"}]",
	    TSI_ERR_INVALID_ARG, "unknown key 'mode'");
	expect_bad("[{\"name\":\"a b\",\"path\":\"a\",\"dest\":\"a\"}]",
	    TSI_ERR_INVALID_ARG, "may only contain");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"a\",\"format\":"
	           "\"yaml\"}]",
	    TSI_ERR_INVALID_ARG, "'yaml' is not one of json, raw, env");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"a\",\"format\":"
	           "\"raw\"}]",
	    TSI_ERR_INVALID_ARG, "needs a 'field'");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"a\",\"field\":"
	           "\"\"}]",
	    TSI_ERR_INVALID_ARG, ".field");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"x\"},"
	           "{\"name\":\"a\",\"path\":\"b\",\"dest\":\"y\"}]",
	    TSI_ERR_INVALID_ARG, "TSI_SECRETS[1].name: 'a' is already used");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"x\"},"
	           "{\"name\":\"b\",\"path\":\"b\",\"dest\":\"x\"}]",
	    TSI_ERR_INVALID_ARG, "TSI_SECRETS[1].dest: 'x' is already used");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"x\"},"
	           "{\"name\":\"b\",\"path\":\"b\",\"dest\":\"x/y\"}]",
	    TSI_ERR_INVALID_ARG, "same name as file and directory");
	/* Duplicate keys are ambiguous: rejected. */
	expect_bad("[{\"name\":\"a\",\"name\":\"b\",\"path\":\"a\",\"dest\":"
	           "\"a\"}]",
	    TSI_ERR_PARSE, "duplicate");
	expect_bad("[{\"name\":\"a\",\"path\":\"a/../b\",\"dest\":\"a\"}]",
	    TSI_ERR_INVALID_ARG, ".path: must not contain '.' or '..'");
	expect_bad("[{\"name\":\"a\",\"path\":\"a?version=1\",\"dest\":\"a\"}]",
	    TSI_ERR_INVALID_ARG, ".path: contains a character");
	expect_bad("[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"a\\u0000b\"}]",
	    TSI_ERR_PARSE, "u0000");
}

static void
test_path_escapes(void **state)
{
	static const char *const dests[] = { "..", "../x", "a/../../x", "a/./b",
		"./a", "/etc/passwd", "/run/tsi/secretsX/a", "/run/tsi/secrets",
		"a//b", "a/", "", "/run/tsi/secrets/../x" };
	char text[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dests) / sizeof(dests[0]); i++) {
		snprintf(text, sizeof(text),
		    "[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"%s\"}]",
		    dests[i]);
		expect_bad(text, TSI_ERR_INVALID_ARG, "TSI_SECRETS[0].dest");
	}
	/* An absolute dest is refused when no absolute dest dir is known. */
	{
		struct tsi_sidecar_spec *s = NULL;
		char err[256];
		const char *t =
		    "[{\"name\":\"a\",\"path\":\"a\",\"dest\":\"/x/a\"}]";
		assert_int_equal(tsi_sidecar_spec_parse("T", t, strlen(t),
		                     "rel", &s, err, sizeof(err)),
		    TSI_ERR_INVALID_ARG);
		assert_null(s);
	}
}

static void
test_oversized(void **state)
{
	char *big;
	size_t i, off = 0, cap = 2 * TSI_SIDECAR_SPEC_MAX_BYTES;
	struct tsi_sidecar_spec *s = NULL;
	char err[256];

	(void)state;
	/* Text over the byte limit is refused before it is parsed. */
	big = malloc(cap);
	assert_non_null(big);
	memset(big, ' ', TSI_SIDECAR_SPEC_MAX_BYTES + 1);
	big[0] = '[';
	big[TSI_SIDECAR_SPEC_MAX_BYTES] = ']';
	assert_int_equal(tsi_sidecar_spec_parse("TSI_SECRETS", big,
	                     TSI_SIDECAR_SPEC_MAX_BYTES + 1, "/d", &s, err,
	                     sizeof(err)),
	    TSI_ERR_TOO_LARGE);
	assert_non_null(strstr(err, "at most 16384"));
	/* Too many entries. */
	off = (size_t)snprintf(big, cap, "[");
	for (i = 0; i <= TSI_SIDECAR_MAX_SECRETS; i++)
		off += (size_t)snprintf(big + off, cap - off,
		    "%s{\"name\":\"s%zu\",\"path\":\"p\",\"dest\":\"d%zu\"}",
		    i ? "," : "", i, i);
	off += (size_t)snprintf(big + off, cap - off, "]");
	assert_int_equal(tsi_sidecar_spec_parse("TSI_SECRETS", big, off, "/d",
	                     &s, err, sizeof(err)),
	    TSI_ERR_TOO_LARGE);
	assert_null(s);
	/* Over-long fields. */
	memset(big, 'a', 300);
	big[300] = '\0';
	{
		char t[1024];
		snprintf(t, sizeof(t),
		    "[{\"name\":\"%s\",\"path\":\"p\",\"dest\":\"d\"}]", big);
		expect_bad(t, TSI_ERR_INVALID_ARG, "longer than 64");
		snprintf(t, sizeof(t),
		    "[{\"name\":\"n\",\"path\":\"p\",\"dest\":\"%s\"}]", big);
		expect_bad(t, TSI_ERR_INVALID_ARG, "longer than 255");
	}
	/* Exactly at the entry limit is fine. */
	off = (size_t)snprintf(big, cap, "[");
	for (i = 0; i < TSI_SIDECAR_MAX_SECRETS; i++)
		off += (size_t)snprintf(big + off, cap - off,
		    "%s{\"name\":\"s%zu\",\"path\":\"p\",\"dest\":\"d%zu\"}",
		    i ? "," : "", i, i);
	off += (size_t)snprintf(big + off, cap - off, "]");
	assert_int_equal(tsi_sidecar_spec_parse("TSI_SECRETS", big, off, "/d",
	                     &s, err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(s->n, TSI_SIDECAR_MAX_SECRETS);
	tsi_sidecar_spec_free(s);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_path_escapes),
		cmocka_unit_test(test_oversized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
