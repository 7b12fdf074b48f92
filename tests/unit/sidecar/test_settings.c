/* Settings: precedence of flags, environment and config; clear errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sidecar/sidecar.h"
#include "tsi/err.h"

static const char *const vars[] = { "TSI_ISSUER_SOCKET", "VAULT_ADDR",
	"TSI_ROLE", "TSI_SECRETS", "VAULT_CACERT", "TSI_AUDIENCE",
	"TSI_SECRETS_DIR", "TSI_ONCE", "TSI_REFRESH_INTERVAL", "TSI_RETRY_MAX",
	"TSI_RETRY_BASE_MS", "TSI_RETRY_MAX_MS", "TSI_HTTP_TIMEOUT_MS",
	"TSI_ALLOW_HTTP" };

static int
clean_env(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	return 0;
}

static char cfgpath[64];

static void
write_config(const char *text)
{
	FILE *f;
	int fd;

	snprintf(cfgpath, sizeof(cfgpath), "/tmp/tsi-sc-cfg-XXXXXX");
	fd = mkstemp(cfgpath);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
load(int argc, const char **argv, struct tsi_sidecar_settings *st, char *err,
    size_t errlen)
{
	return tsi_sidecar_settings_load(argc, (char **)argv, st, err, errlen);
}

static void
test_env_defaults(void **state)
{
	struct tsi_sidecar_settings st;
	const char *argv[] = { "tsi-sidecar", "--once" };
	char err[512];

	(void)state;
	setenv("TSI_ROLE", "demo", 1);
	setenv("TSI_SECRETS",
	    "[{\"name\":\"a\",\"path\":\"p\",\"dest\":\"a\"}]", 1);
	assert_int_equal(load(2, argv, &st, err, sizeof(err)), TSI_OK);
	assert_true(st.once);
	assert_string_equal(st.role, "demo");
	assert_string_equal(st.audience, "tsi-vault");
	assert_string_equal(st.issuer_socket, "/run/tsi/issuer.sock");
	assert_null(st.cacert);
	assert_int_equal(st.retry_max, 6);
	assert_int_equal(st.spec->n, 1);
	tsi_sidecar_settings_clear(&st);
}

static void
test_precedence(void **state)
{
	struct tsi_sidecar_settings st;
	const char *argv[] = { "tsi-sidecar", "--config", cfgpath, "--dest-dir",
		"/flag/dir" };
	char err[512];

	(void)state;
	write_config(
	    "role = \"from-config\";\n"
	    "vault_addr = \"https://vault.example:8200\";\n"
	    "audience = \"aud-config\";\n"
	    "dest_dir = \"/config/dir\";\n"
	    "retry_max = 3;\n"
	    "once = true;\n"
	    "secrets = ( { name = \"rec\"; path = \"medical/record\"; dest = "
	    "\"rec.json\"; },\n"
	    "            { name = \"pw\"; path = \"db\"; dest = "
	    "\"/flag/dir/pw\"; field = \"password\"; format = \"raw\"; } );\n");
	setenv("TSI_AUDIENCE", "aud-env", 1);
	assert_int_equal(load(5, argv, &st, err, sizeof(err)), TSI_OK);
	assert_string_equal(st.role, "from-config");
	assert_string_equal(st.vault_addr, "https://vault.example:8200");
	assert_string_equal(st.audience, "aud-env");   /* env over config */
	assert_string_equal(st.dest_dir, "/flag/dir"); /* flag over config */
	assert_int_equal(st.retry_max, 3);
	assert_true(st.once);
	assert_int_equal(st.spec->n, 2);
	assert_string_equal(st.spec->v[1].dest, "pw");
	assert_int_equal(st.spec->v[1].format, TSI_SIDECAR_FMT_RAW);
	tsi_sidecar_settings_clear(&st);
	unlink(cfgpath);
}

static void
test_errors(void **state)
{
	struct tsi_sidecar_settings st;
	const char *argv1[] = { "tsi-sidecar" };
	const char *argv2[] = { "tsi-sidecar", "--config", cfgpath };
	const char *argv3[] = { "tsi-sidecar", "--nope" };
	char err[512];

	(void)state;
	/* No role. */
	setenv("TSI_SECRETS",
	    "[{\"name\":\"a\",\"path\":\"p\",\"dest\":\"a\"}]", 1);
	assert_int_equal(load(1, argv1, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "TSI_ROLE"));
	tsi_sidecar_settings_clear(&st);
	/* Bad integer in the environment. */
	setenv("TSI_ROLE", "demo", 1);
	setenv("TSI_RETRY_MAX", "0", 1);
	assert_int_equal(load(1, argv1, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "TSI_RETRY_MAX"));
	tsi_sidecar_settings_clear(&st);
	unsetenv("TSI_RETRY_MAX");
	/* Bad VAULT_ADDR scheme. */
	setenv("VAULT_ADDR", "ftp://x", 1);
	assert_int_equal(load(1, argv1, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "https://"));
	tsi_sidecar_settings_clear(&st);
	unsetenv("VAULT_ADDR");
	/* Bad TSI_SECRETS. */
	setenv("TSI_SECRETS",
	    "[{\"name\":\"a\",\"path\":\"p\",\"dest\":\"/etc/x\"}]", 1);
	assert_int_equal(load(1, argv1, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "TSI_SECRETS[0].dest"));
	tsi_sidecar_settings_clear(&st);
	unsetenv("TSI_SECRETS");
	/* Config: unknown key and bad secret name the file and line. */
	write_config("role = \"r\";\nbogus = 1;\n");
	assert_int_equal(load(3, argv2, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, ":2:"));
	assert_non_null(strstr(err, "bogus"));
	tsi_sidecar_settings_clear(&st);
	unlink(cfgpath);
	write_config("role = \"r\";\n\nsecrets = ( { name = \"a\"; path = "
	             "\"p\"; dest = \"../x\"; } );\n");
	assert_int_equal(load(3, argv2, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, ":3: secrets[0].dest"));
	tsi_sidecar_settings_clear(&st);
	unlink(cfgpath);
	/* No secrets at all. */
	assert_int_equal(load(1, argv1, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "no secrets requested"));
	tsi_sidecar_settings_clear(&st);
	/* Unknown flag. */
	assert_int_equal(load(2, argv3, &st, err, sizeof(err)),
	    TSI_ERR_INVALID_ARG);
	assert_non_null(strstr(err, "--nope"));
	tsi_sidecar_settings_clear(&st);
}

/* http:// sends the JWT, the token and the secrets in clear: refused
 * unless TSI_ALLOW_HTTP=1 (or allow_http = true) asks for it. */
static void
test_http_needs_explicit_allow(void **state)
{
	struct tsi_sidecar_settings st;
	const char *argv[] = { "tsi-sidecar", "--once" };
	const char *argvc[] = { "tsi-sidecar", "--once", "--config", cfgpath };
	char err[512];

	(void)state;
	setenv("TSI_ROLE", "demo", 1);
	setenv("TSI_SECRETS",
	    "[{\"name\":\"a\",\"path\":\"p\",\"dest\":\"a\"}]", 1);
	setenv("VAULT_ADDR", "http://127.0.0.1:8200", 1);
	assert_int_equal(load(2, argv, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	assert_non_null(strstr(err, "TSI_ALLOW_HTTP"));
	tsi_sidecar_settings_clear(&st);
	setenv("TSI_ALLOW_HTTP", "0", 1);
	assert_int_equal(load(2, argv, &st, err, sizeof(err)), TSI_ERR_CONFIG);
	tsi_sidecar_settings_clear(&st);
	setenv("TSI_ALLOW_HTTP", "1", 1);
	assert_int_equal(load(2, argv, &st, err, sizeof(err)), TSI_OK);
	assert_string_equal(st.vault_addr, "http://127.0.0.1:8200");
	tsi_sidecar_settings_clear(&st);
	unsetenv("TSI_ALLOW_HTTP");
	/* The config file's allow_http, when the environment says nothing. */
	write_config("allow_http = true;\n");
	assert_int_equal(load(4, argvc, &st, err, sizeof(err)), TSI_OK);
	tsi_sidecar_settings_clear(&st);
	unlink(cfgpath);
	/* https:// needs nothing. */
	setenv("VAULT_ADDR", "https://127.0.0.1:8200", 1);
	assert_int_equal(load(2, argv, &st, err, sizeof(err)), TSI_OK);
	tsi_sidecar_settings_clear(&st);
	unsetenv("VAULT_ADDR");
	unsetenv("TSI_ROLE");
	unsetenv("TSI_SECRETS");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_env_defaults, clean_env),
		cmocka_unit_test_setup(test_precedence, clean_env),
		cmocka_unit_test_setup(test_errors, clean_env),
		cmocka_unit_test_setup(test_http_needs_explicit_allow,
		    clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
