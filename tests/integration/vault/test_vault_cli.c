/*
 * `tsi kv` as a vault CLI user types it, and what `tsi` and tsi-sidecar
 * say when TLS goes wrong, against real servers on loopback: a TLS
 * tsi-vault and a plain-HTTP one (--dev).
 *   - -field=K / --field K print that value alone, raw; -format=json|table;
 *     -mount=secret; put @file.json (with KEY=VALUE and KEY=@file beside
 *     it); a misspelt flag is named (exit 2).
 *   - A certificate that does not verify names VAULT_CACERT; http:// to
 *     the TLS server says "HTTP request to an HTTPS server", https:// to
 *     the plain server "HTTPS request to an HTTP server"; libcurl's "SSL
 *     peer certificate or SSH remote key was not OK" never shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "sidecar/sidecar.h"
#include "tsi/buf.h"
#include "tsi/err.h"

struct st {
	struct vfx tls;   /* TLS, the fixture's CA */
	struct vfx plain; /* --dev: plain HTTP */
};

static int
setup(void **state)
{
	struct st *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(vfx_init(&s->tls, NULL, NULL), 0);
	assert_int_equal(vfx_start(&s->tls), 0);
	assert_int_equal(vfx_init(&s->plain, NULL, NULL), 0);
	s->plain.dev = 1;
	assert_int_equal(vfx_start(&s->plain), 0);
	*state = s;
	return 0;
}

static int
teardown(void **state)
{
	struct st *s = *state;

	assert_int_equal(vfx_stop(&s->tls), 0);
	assert_int_equal(vfx_stop(&s->plain), 0);
	vfx_cleanup(&s->tls);
	vfx_cleanup(&s->plain);
	free(s);
	return 0;
}

/*
 * Runs `tsi kv ARGS...` (NULL-terminated) with VAULT_ADDR addr, VAULT_CACERT
 * ca (NULL: unset), VAULT_TOKEN token. stdout into out, stderr into err.
 * Returns the exit code (-1: did not exit).
 */
static int
tsi_kv(const char *addr, const char *ca, const char *token, char *out,
    size_t outlen, char *err, size_t errlen, ...)
{
	char exe[512], o_t[] = "/tmp/tsi-kv-o.XXXXXX",
	               e_t[] = "/tmp/tsi-kv-e.XXXXXX";
	const char *bin = getenv("TSI_BIN_DIR");
	const char *argv[16];
	int ofd = mkstemp(o_t), efd = mkstemp(e_t), st, n = 0;
	va_list ap;
	pid_t pid;
	ssize_t got;

	assert_true(ofd >= 0 && efd >= 0);
	snprintf(exe, sizeof(exe), "%s/tsi", bin ? bin : "build/bin");
	argv[n++] = exe;
	argv[n++] = "kv";
	va_start(ap, errlen);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		setenv("VAULT_ADDR", addr, 1);
		if (ca != NULL)
			setenv("VAULT_CACERT", ca, 1);
		else
			unsetenv("VAULT_CACERT");
		/* The system store must not know the test CA either. */
		setenv("SSL_CERT_FILE", "/dev/null", 1);
		setenv("VAULT_TOKEN", token, 1);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	lseek(ofd, 0, SEEK_SET);
	got = read(ofd, out, outlen - 1);
	out[got > 0 ? got : 0] = '\0';
	lseek(efd, 0, SEEK_SET);
	got = read(efd, err, errlen - 1);
	err[got > 0 ? got : 0] = '\0';
	close(ofd);
	close(efd);
	unlink(o_t);
	unlink(e_t);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define KV(s, ...) \
	tsi_kv((s)->tls.addr, (s)->tls.tls_ca, (s)->tls.root, out, \
	    sizeof(out), err, sizeof(err), __VA_ARGS__, (const char *)NULL)

static void
test_field_format_file(void **state)
{
	struct st *s = *state;
	char out[8192], err[2048], file[400], pem[400], arg[450], parg[450];
	json_t *j;
	FILE *fp;

	snprintf(file, sizeof(file), "%s/secret.json", s->tls.dir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("{\"user\":\"alice\",\"pass\":\"s3 cr\\u00e9t\",\"port\":5432}",
	    fp);
	fclose(fp);
	snprintf(pem, sizeof(pem), "%s/v.pem", s->tls.dir);
	fp = fopen(pem, "w");
	assert_non_null(fp);
	fputs("line1\nline2", fp);
	fclose(fp);
	snprintf(arg, sizeof(arg), "@%s", file);
	snprintf(parg, sizeof(parg), "pem=@%s", pem);
	assert_int_equal(KV(s, "put", "secret/app/db", arg, "user=bob", parg),
	    0);

	/* -field: the value alone, raw (no quotes, no newline off a tty). */
	assert_int_equal(KV(s, "get", "-field=pass", "app/db"), 0);
	assert_string_equal(out, "s3 cr\xc3\xa9t");
	assert_int_equal(KV(s, "get", "--field", "user", "app/db"), 0);
	assert_string_equal(out, "bob");
	assert_int_equal(KV(s, "get", "-field", "pem", "secret/app/db"), 0);
	assert_string_equal(out, "line1\nline2");
	assert_int_equal(KV(s, "get", "--field=port", "app/db"), 0);
	assert_string_equal(out, "5432");
	assert_int_equal(KV(s, "get", "-field=nope", "app/db"), 1);
	assert_string_equal(out, "");
	assert_non_null(strstr(err, "\"nope\" not present"));

	/* -format=json is the default's JSON; table is Vault's tables. */
	assert_int_equal(KV(s, "get", "-format=json", "app/db"), 0);
	assert_non_null(j = json_loads(out, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(j, "data"),
	                            "data"),
	                        "user")),
	    "bob");
	json_decref(j);
	assert_int_equal(KV(s, "get", "-format", "table", "app/db"), 0);
	assert_null(json_loads(out, 0, NULL));
	assert_non_null(strstr(out, "== Data =="));
	assert_non_null(strstr(out, "Key     Value\n"));
	assert_non_null(strstr(out, "\nuser    bob\n"));
	assert_non_null(strstr(out, "\nversion"));
	assert_int_equal(KV(s, "list", "-format=table", "app"), 0);
	assert_string_equal(out, "Keys\n----\ndb\n");
	assert_int_equal(KV(s, "get", "-version=1", "-field=user", "app/db"),
	    0);
	assert_string_equal(out, "bob");

	/* vault kv's -mount: PATH below it, and only secret/ exists. */
	assert_int_equal(KV(s, "get", "-mount=secret", "-field=user", "app/db"),
	    0);
	assert_string_equal(out, "bob");
	assert_int_equal(KV(s, "get", "-mount", "secret", "-field=user",
	                     "secret/app/db"),
	    1);
	assert_int_equal(KV(s, "get", "-mount=kv", "app/db"), 2);
	assert_non_null(strstr(err, "only the secret/ mount"));

	/* Misspelt or misused flags are named; nothing is sent. */
	assert_int_equal(KV(s, "get", "-fiel=user", "app/db"), 2);
	assert_non_null(strstr(err, "unknown flag -fiel"));
	assert_int_equal(KV(s, "get", "--fiel", "user", "app/db"), 2);
	assert_non_null(strstr(err, "unknown flag -fiel"));
	assert_int_equal(KV(s, "put", "-field=x", "app/db", "a=b"), 2);
	assert_non_null(strstr(err, "unknown flag -field"));
	assert_int_equal(KV(s, "get", "-format=yaml", "app/db"), 2);
	assert_non_null(strstr(err, "json or table"));
	assert_int_equal(KV(s, "get", "app/db", "-field"), 2);
	assert_int_equal(KV(s, "get", "-field"), 2);
	assert_non_null(strstr(err, "flag needs an argument: -field"));
	/* A file that is not a JSON object. */
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("[1,2]", fp);
	fclose(fp);
	assert_int_equal(KV(s, "put", "app/db", arg), 2);
	assert_non_null(strstr(err, "not a JSON object"));
}

static void
no_curl_words(const char *msg)
{
	assert_null(strstr(msg, "SSL peer certificate or SSH remote key"));
}

/* tsi kv undelete, destroy, metadata get|put|delete against the server. */
static void
test_versions_metadata(void **state)
{
	struct st *s = *state;
	char out[16384], err[4096];
	json_t *j;
	json_error_t jerr;

	assert_int_equal(KV(s, "put", "cli/p", "a=1", "b=2"), 0);
	assert_int_equal(KV(s, "patch", "-cas=1", "cli/p", "b=3", "c=4"), 0);
	assert_int_equal(KV(s, "get", "-field=a", "cli/p"), 0);
	assert_string_equal(out, "1");
	assert_int_equal(KV(s, "get", "-field=b", "cli/p"), 0);
	assert_string_equal(out, "3");
	assert_int_equal(KV(s, "patch", "-cas=1", "cli/p", "b=5"), 1);
	assert_non_null(strstr(err, "check-and-set"));
	assert_int_equal(KV(s, "patch", "cli/none", "b=5"), 1);
	assert_int_equal(KV(s, "put", "cli/v", "k=one"), 0);
	assert_int_equal(KV(s, "put", "cli/v", "k=two"), 0);
	assert_int_equal(KV(s, "delete", "cli/v"), 0);
	assert_int_equal(KV(s, "undelete", "-versions=2", "cli/v"), 0);
	assert_non_null(strstr(out, "Success!"));
	assert_int_equal(KV(s, "get", "-field=k", "cli/v"), 0);
	assert_string_equal(out, "two");
	assert_int_equal(KV(s, "destroy", "-versions", "1,2", "secret/cli/v"),
	    0);
	assert_int_equal(KV(s, "metadata", "get", "cli/v"), 0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_true(
	    json_object_get(json_object_get(json_object_get(json_object_get(j,
	                                                        "data"),
	                                        "versions"),
	                        "1"),
	        "destroyed")));
	json_decref(j);
	/* metadata put: the settings given, custom_metadata, as the vault
	 * CLI; a bool flag alone means true. */
	assert_int_equal(KV(s, "metadata", "put", "-max-versions=4",
	                     "-cas-required", "-delete-version-after", "2h",
	                     "-custom-metadata=owner=team a",
	                     "-custom-metadata", "tier=x=y", "cli/v"),
	    0);
	assert_non_null(strstr(out,
	    "Success! Data written to: "
	    "secret/metadata/cli/v"));
	assert_int_equal(KV(s, "metadata", "get", "cli/v"), 0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(j, "data"),
	                         "max_versions")),
	    4);
	assert_true(json_is_true(
	    json_object_get(json_object_get(j, "data"), "cas_required")));
	assert_string_equal(json_string_value(
	                        json_object_get(json_object_get(j, "data"),
	                            "delete_version_after")),
	    "2h0m0s");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(j, "data"),
	                            "custom_metadata"),
	                        "owner")),
	    "team a");
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(json_object_get(j, "data"),
	                            "custom_metadata"),
	                        "tier")),
	    "x=y");
	json_decref(j);
	assert_int_equal(KV(s, "metadata", "put", "-cas-required=false",
	                     "cli/v"),
	    0);
	assert_int_equal(KV(s, "metadata", "get", "cli/v"), 0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_false(
	    json_object_get(json_object_get(j, "data"), "cas_required")));
	assert_int_equal(json_integer_value(
	                     json_object_get(json_object_get(j, "data"),
	                         "max_versions")),
	    4);
	json_decref(j);
	assert_int_equal(KV(s, "metadata", "put", "-max-versions=x", "cli/v"),
	    2);
	assert_non_null(strstr(err, "-max-versions needs a number"));
	assert_int_equal(KV(s, "metadata", "put", "-custom-metadata=novalue",
	                     "cli/v"),
	    2);
	assert_non_null(strstr(err, "KEY=VALUE"));
	assert_int_equal(KV(s, "metadata", "put", "-delete-version-after=1y",
	                     "cli/v"),
	    1);
	assert_non_null(strstr(err, "delete_version_after"));
	assert_int_equal(KV(s, "metadata", "delete", "cli/v"), 0);
	assert_int_equal(KV(s, "metadata", "get", "cli/v"), 1);
	/* Flags named wrongly or missing are named. */
	assert_int_equal(KV(s, "destroy", "cli/v"), 2);
	assert_non_null(strstr(err, "-versions is required"));
	assert_int_equal(KV(s, "undelete", "-versions=1,,2", "cli/v"), 2);
	assert_non_null(strstr(err, "-versions"));
	assert_int_equal(KV(s, "destroy", "-version=1", "cli/v"), 2);
	assert_non_null(strstr(err, "unknown flag -version"));
}

static void
test_cli_tls_errors(void **state)
{
	struct st *s = *state;
	char out[4096], err[2048], http_to_tls[96], tls_to_http[96];

	/* No CA: the certificate cannot be verified. */
	assert_int_equal(tsi_kv(s->tls.addr, NULL, s->tls.root, out,
	                     sizeof(out), err, sizeof(err), "get", "x",
	                     (const char *)NULL),
	    1);
	assert_non_null(strstr(err, "set VAULT_CACERT to the file of the CA"));
	no_curl_words(err);
	/* A CA file that is not there. */
	assert_int_equal(tsi_kv(s->tls.addr, "/nonexistent/ca.pem", s->tls.root,
	                     out, sizeof(out), err, sizeof(err), "get", "x",
	                     (const char *)NULL),
	    1);
	assert_non_null(strstr(err, "VAULT_CACERT"));
	/* Plain HTTP to the TLS server. */
	snprintf(http_to_tls, sizeof(http_to_tls), "http://127.0.0.1:%d",
	    s->tls.port);
	assert_int_equal(tsi_kv(http_to_tls, s->tls.tls_ca, s->tls.root, out,
	                     sizeof(out), err, sizeof(err), "get", "x",
	                     (const char *)NULL),
	    1);
	assert_non_null(strstr(err, "HTTP request to an HTTPS server"));
	/* TLS to the plain server. */
	snprintf(tls_to_http, sizeof(tls_to_http), "https://127.0.0.1:%d",
	    s->plain.port);
	assert_int_equal(tsi_kv(tls_to_http, s->tls.tls_ca, s->plain.root, out,
	                     sizeof(out), err, sizeof(err), "get", "x",
	                     (const char *)NULL),
	    1);
	print_message("https:// to the plain server: %s\n", err);
	assert_non_null(strstr(err, "HTTPS request to an HTTP server"));
}

/* The sidecar's login, the first request it makes to tsi-vault. */
static int
sidecar_login(const char *addr, const char *ca, char *err, size_t errlen)
{
	struct tsi_sidecar_settings st;
	struct tsi_sidecar_http *h = NULL;
	volatile sig_atomic_t stop = 0;
	char *tok = NULL;
	long long lease = 0;
	int r;

	memset(&st, 0, sizeof(st));
	st.vault_addr = addr;
	st.cacert = ca;
	st.role = "demo";
	st.audience = "tsi-vault";
	st.issuer_socket = "/nonexistent/issuer.sock";
	st.http_timeout_ms = 20000;
	assert_int_equal(tsi_sidecar_http_new(&st, &stop, &h), TSI_OK);
	r = tsi_sidecar_login(h, "e30.e30.sig", &tok, &lease, err, errlen);
	tsi_strfree(tok);
	tsi_sidecar_http_free(h);
	return r;
}

static void
test_sidecar_tls_errors(void **state)
{
	struct st *s = *state;
	char err[1024], addr[96];

	setenv("SSL_CERT_FILE", "/dev/null", 1);
	assert_int_not_equal(sidecar_login(s->tls.addr, NULL, err, sizeof(err)),
	    TSI_OK);
	assert_non_null(strstr(err,
	    "set VAULT_CACERT (vault_cacert) to the "
	    "file of the CA"));
	no_curl_words(err);
	snprintf(addr, sizeof(addr), "http://127.0.0.1:%d", s->tls.port);
	assert_int_not_equal(sidecar_login(addr, s->tls.tls_ca, err,
	                         sizeof(err)),
	    TSI_OK);
	assert_non_null(strstr(err, "HTTP request to an HTTPS server"));
	snprintf(addr, sizeof(addr), "https://127.0.0.1:%d", s->plain.port);
	assert_int_not_equal(sidecar_login(addr, s->tls.tls_ca, err,
	                         sizeof(err)),
	    TSI_OK);
	assert_non_null(strstr(err, "HTTPS request to an HTTP server"));
	/* With the right CA the same login reaches the server (refused: the
	 * JWT is garbage), which is what the words above told to do. */
	assert_int_equal(sidecar_login(s->tls.addr, s->tls.tls_ca, err,
	                     sizeof(err)),
	    TSI_ERR_DENIED);
	unsetenv("SSL_CERT_FILE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_format_file),
		cmocka_unit_test(test_versions_metadata),
		cmocka_unit_test(test_cli_tls_errors),
		cmocka_unit_test(test_sidecar_tls_errors),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
