#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tsi/config.h"
#include "tsi/err.h"

static const char *good =
    "tcti = \"swtpm:host=127.0.0.1,port=2321\";\n"
    "token_ttl = 300;\n"
    "debug = true;\n"
    "sidecar_images = [ \"sha256:aa\", \"sha256:bb\" ];\n";

static void
test_reads_settings(void **state)
{
	struct tsi_config *c = NULL;
	char err[256];
	const char *s;
	long long v;
	int b;
	const char **list;
	size_t n;

	(void)state;
	assert_int_equal(tsi_config_load_string("issuer.conf", good, &c, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_config_str(c, "tcti", NULL, &s, err, sizeof(err)),
	    TSI_OK);
	assert_string_equal(s, "swtpm:host=127.0.0.1,port=2321");
	assert_int_equal(tsi_config_str(c, "absent", "dflt", &s, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_string_equal(s, "dflt");
	assert_int_equal(tsi_config_int(c, "token_ttl", 0, 1, 3600, &v, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(v, 300);
	assert_int_equal(tsi_config_bool(c, "debug", 0, &b, err, sizeof(err)),
	    TSI_OK);
	assert_true(b);
	assert_int_equal(tsi_config_strlist(c, "sidecar_images", &list, &n, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[1], "sha256:bb");
	free(list);
	assert_int_equal(tsi_config_line(c, "debug"), 3);
	tsi_config_free(c);
}

static void
test_syntax_error_names_file_and_line(void **state)
{
	struct tsi_config *c = NULL;
	char err[256];

	(void)state;
	assert_int_equal(tsi_config_load_string("bad.conf", "a = 1;\nb = ;\n",
	                     &c, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_null(c);
	assert_non_null(strstr(err, "bad.conf:2: "));
}

static void
test_type_and_range_errors(void **state)
{
	struct tsi_config *c = NULL;
	char err[256];
	const char *s;
	long long v;

	(void)state;
	assert_int_equal(tsi_config_load_string("x.conf",
	                     "a = 1;\nttl = 99999;\n", &c, err, sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_config_str(c, "a", NULL, &s, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_string_equal(err, "x.conf:1: 'a' must be a string");
	assert_int_equal(tsi_config_int(c, "ttl", 300, 1, 3600, &v, err,
	                     sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_string_equal(err, "x.conf:2: 'ttl' must be between 1 and 3600");
	tsi_config_free(c);
}

static void
test_unknown_setting_refused(void **state)
{
	struct tsi_config *c = NULL;
	char err[256];
	static const char *const allowed[] = { "tcti", "token_ttl", NULL };

	(void)state;
	assert_int_equal(tsi_config_load_string("i.conf",
	                     "tcti = \"x\";\ntoken_tll = 3;\n", &c, err,
	                     sizeof(err)),
	    TSI_OK);
	assert_int_equal(tsi_config_check_keys(c, allowed, err, sizeof(err)),
	    TSI_ERR_CONFIG);
	assert_string_equal(err, "i.conf:2: unknown setting 'token_tll'");
	tsi_config_free(c);
}

static void
test_missing_file(void **state)
{
	struct tsi_config *c = NULL;
	char err[256];

	(void)state;
	assert_int_equal(tsi_config_load("/nonexistent/tsi.conf", &c, err,
	                     sizeof(err)),
	    TSI_ERR_IO);
	assert_non_null(strstr(err, "/nonexistent/tsi.conf: cannot read"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_settings),
		cmocka_unit_test(test_syntax_error_names_file_and_line),
		cmocka_unit_test(test_type_and_range_errors),
		cmocka_unit_test(test_unknown_setting_refused),
		cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
