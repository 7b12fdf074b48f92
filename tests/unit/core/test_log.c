#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "tsi/log.h"
#include "log_capture.h"

/* Runs fn with the log redirected to a pipe and returns the parsed line. */
static json_t *
capture(void (*fn)(void))
{
	static char buf[16384];

	return log_capture(fn, buf, sizeof(buf));
}

static void
emit_basic(void)
{
	tsi_log(TSI_LOG_INFO, "kv.read", TSI_LS("path", "secret/data/a\"b\n"),
	    TSI_LI("version", 3));
}

static void
test_line_is_json(void **state)
{
	json_t *j;

	(void)state;
	tsi_log_init("test", TSI_LOG_DEBUG);
	j = capture(emit_basic);
	assert_string_equal(json_string_value(json_object_get(j, "event")),
	    "kv.read");
	assert_string_equal(json_string_value(json_object_get(j, "prog")),
	    "test");
	assert_string_equal(json_string_value(json_object_get(j, "level")),
	    "info");
	assert_string_equal(json_string_value(json_object_get(j, "path")),
	    "secret/data/a\"b\n");
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
	assert_non_null(json_object_get(j, "ts"));
	json_decref(j);
}

static void
emit_secrets(void)
{
	tsi_log(TSI_LOG_WARN, "login", TSI_LS("jwt", "eyJhbGciOi.x.y"),
	    TSI_LS("client_token", "hvs.abc"), TSI_LS("X-Vault-Token", "t"),
	    TSI_LS("private_key", "-----BEGIN"), TSI_LS("data", "{\"pw\":1}"),
	    TSI_LS("accessor", "acc-1"), TSI_LS("kid", "k1"));
}

static void
test_secrets_redacted(void **state)
{
	json_t *j;
	const char *red[] = { "jwt", "client_token", "X-Vault-Token",
		"private_key", "data" };
	size_t i;

	(void)state;
	tsi_log_init("test", TSI_LOG_DEBUG);
	j = capture(emit_secrets);
	for (i = 0; i < sizeof(red) / sizeof(red[0]); i++)
		assert_string_equal(json_string_value(
		                        json_object_get(j, red[i])),
		    "[redacted]");
	assert_string_equal(json_string_value(json_object_get(j, "accessor")),
	    "acc-1");
	assert_string_equal(json_string_value(json_object_get(j, "kid")), "k1");
	json_decref(j);
}

static void
emit_huge(void)
{
	static char big[20000];

	memset(big, 'a', sizeof(big) - 1);
	big[100] = '"';
	big[200] = ',';
	tsi_log(TSI_LOG_ERROR, "huge", TSI_LS("small", "ok"),
	    TSI_LS("big", big));
}

static void
test_oversized_line_stays_valid_json(void **state)
{
	json_t *j;

	(void)state;
	tsi_log_init("test", TSI_LOG_DEBUG);
	j = capture(emit_huge);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	assert_string_equal(json_string_value(json_object_get(j, "small")),
	    "ok");
	assert_null(json_object_get(j, "big"));
	json_decref(j);
}

static void
test_level_filter(void **state)
{
	int p[2];
	char buf[64];

	(void)state;
	tsi_log_init("test", TSI_LOG_WARN);
	assert_int_equal(pipe(p), 0);
	tsi_log_set_fd(p[1]);
	tsi_log(TSI_LOG_INFO, "hidden");
	tsi_log_set_fd(2);
	close(p[1]);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_is_json),
		cmocka_unit_test(test_secrets_redacted),
		cmocka_unit_test(test_oversized_line_stays_valid_json),
		cmocka_unit_test(test_level_filter),
	};
	unsetenv("TSI_LOG_LEVEL");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
