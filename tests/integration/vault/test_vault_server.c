/*
 * tsi-vault as a server: TLS with a CA-verified certificate, KV v2 with the
 * root token (versions, CAS, soft delete, list, metadata), Vault's shapes,
 * limits (413, 405, bad paths), keep-alive, health, metrics, dev mode, and
 * the command line (exit codes, config errors with file:line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static const char *
jstr(json_t *j, const char *path)
{
	/* "a.b.c" */
	char key[64];
	const char *p = path, *dot;
	json_t *cur = j;

	while (cur != NULL && *p != '\0') {
		size_t n;
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		cur = json_object_get(cur, key);
		p = dot ? dot + 1 : p + n;
	}
	return json_string_value(cur);
}

static json_int_t
jint(json_t *j, const char *a, const char *b, const char *c)
{
	json_t *cur = json_object_get(j, a);
	if (b)
		cur = json_object_get(cur, b);
	if (c)
		cur = json_object_get(cur, c);
	return json_integer_value(cur);
}

static int
setup(void **state)
{
	struct vfx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(vfx_init(f, NULL, NULL), 0);
	assert_int_equal(vfx_start(f), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct vfx *f = *state;

	assert_int_equal(vfx_stop(f), 0); /* clean exit on SIGTERM */
	vfx_cleanup(f);
	free(f);
	return 0;
}

static void
put(struct vfx *f, const char *path, const char *body, long want)
{
	assert_int_equal(vfx_kv_put(f, f->root, path, body), want);
}

static void
test_kv_versions(void **state)
{
	struct vfx *f = *state;
	struct vresp r;

	put(f, "medical/r1", "{\"data\":{\"user\":\"bob\",\"pw\":\"v1\"}}",
	    200);
	put(f, "medical/r1", "{\"data\":{\"user\":\"bob\",\"pw\":\"v2\"}}",
	    200);
	/* Latest version, Vault's read shape. */
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/data/medical/r1",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "data.data.pw"), "v2");
	assert_int_equal(jint(r.json, "data", "metadata", "version"), 2);
	assert_string_equal(jstr(r.json, "data.metadata.deletion_time"), "");
	assert_non_null(jstr(r.json, "data.metadata.created_time"));
	assert_non_null(jstr(r.json, "request_id"));
	assert_string_equal(jstr(r.json, "lease_id"), "");
	assert_true(json_is_false(json_object_get(r.json, "renewable")));
	assert_true(json_is_null(json_object_get(r.json, "wrap_info")));
	vresp_clear(&r);
	/* An older version. */
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/secret/data/medical/r1?version=1", f->root,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "data.data.pw"), "v1");
	vresp_clear(&r);
	/* A version that does not exist, a bad version. */
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/secret/data/medical/r1?version=9", f->root,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "{\"errors\":[]}");
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/secret/data/medical/r1?version=-1", f->root,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	/* CAS: 1 is stale, 2 is current, 0 only for new paths. */
	put(f, "medical/r1",
	    "{\"data\":{\"pw\":\"x\"},\"options\":{\"cas\":1}}", 400);
	put(f, "medical/r1",
	    "{\"data\":{\"pw\":\"v3\"},\"options\":{\"cas\":2}}", 200);
	put(f, "medical/r1",
	    "{\"data\":{\"pw\":\"x\"},\"options\":{\"cas\":0}}", 400);
	put(f, "medical/new",
	    "{\"data\":{\"pw\":\"n\"},\"options\":{\"cas\":0}}", 200);
	/* Bad bodies. */
	put(f, "medical/r1", "{\"data\":\"notanobject\"}", 400);
	put(f, "medical/r1", "not json", 400);
	put(f, "medical/r1", "{\"data\":{\"a\":1,\"a\":2}}", 400);
}

static void
test_kv_soft_delete(void **state)
{
	struct vfx *f = *state;
	struct vresp r;

	put(f, "app/db", "{\"data\":{\"password\":\"one\"}}", 200);
	put(f, "app/db", "{\"data\":{\"password\":\"two\"}}", 200);
	assert_int_equal(vfx_http(f, NULL, "DELETE", "/v1/secret/data/app/db",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 204);
	vresp_clear(&r);
	/* Latest is deleted: 404 with Vault's shape, data null. */
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/data/app/db",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 404);
	assert_true(json_is_null(
	    json_object_get(json_object_get(r.json, "data"), "data")));
	assert_int_equal(jint(r.json, "data", "metadata", "version"), 2);
	assert_true(strlen(jstr(r.json, "data.metadata.deletion_time")) > 10);
	assert_null(strstr(r.body, "two"));
	vresp_clear(&r);
	/* Version 1 is still there. */
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/secret/data/app/db?version=1", f->root, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "data.data.password"), "one");
	vresp_clear(&r);
	/* A new write makes version 3, readable again. */
	put(f, "app/db", "{\"data\":{\"password\":\"three\"}}", 200);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/data/app/db",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(r.json, "data", "metadata", "version"), 3);
	vresp_clear(&r);
}

static void
test_kv_list_and_metadata(void **state)
{
	struct vfx *f = *state;
	struct vresp r;
	json_t *keys;

	put(f, "list/a", "{\"data\":{\"k\":1}}", 200);
	put(f, "list/b/c", "{\"data\":{\"k\":1}}", 200);
	put(f, "list/b/d", "{\"data\":{\"k\":1}}", 200);
	put(f, "listx", "{\"data\":{\"k\":1}}", 200);
	assert_int_equal(vfx_http(f, NULL, "LIST", "/v1/secret/metadata/list",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	keys = json_object_get(json_object_get(r.json, "data"), "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 0)), "a");
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "b/");
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/secret/metadata/list/b/?list=true", f->root,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	keys = json_object_get(json_object_get(r.json, "data"), "keys");
	assert_int_equal(json_array_size(keys), 2);
	assert_string_equal(json_string_value(json_array_get(keys, 1)), "d");
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "LIST",
	                     "/v1/secret/metadata/nothing", f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 404);
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/metadata/list/a",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(jint(r.json, "data", "current_version", NULL), 1);
	assert_non_null(
	    json_object_get(json_object_get(json_object_get(r.json, "data"),
	                        "versions"),
	        "1"));
	vresp_clear(&r);
}

static void
test_bad_requests(void **state)
{
	struct vfx *f = *state;
	static const char *const bad[] = {
		"/v1/secret/data/a//b",
		"/v1/secret/data/a/%2e%2e/b",
		"/v1/secret/data/a/%2E",
		"/v1/secret/data/a%00b",
		"/v1/secret/data/a%0ab",
		"/v1/secret/data/a%zz",
		"/v1/secret/data/",
		"/v1/secret/data/a/",
		"/v1/secret/data/%ff%fe",
	};
	struct vresp r;
	char *longp;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vfx_http(f, NULL, "GET", bad[i], f->root, NULL,
		                     &r),
		    0);
		if (r.status != 400)
			fprintf(stderr, "%s -> %ld\n", bad[i], r.status);
		assert_int_equal(r.status, 400);
		assert_non_null(json_object_get(r.json, "errors"));
		vresp_clear(&r);
	}
	/* Decoded once: %252e stays "%2e", a plain name. */
	put(f, "pct/%252e", "{\"data\":{\"k\":1}}", 200);
	assert_int_equal(vfx_http(f, NULL, "LIST", "/v1/secret/metadata/pct",
	                     f->root, NULL, &r),
	    0);
	assert_string_equal(json_string_value(json_array_get(
	                        json_object_get(json_object_get(r.json, "data"),
	                            "keys"),
	                        0)),
	    "%2e");
	vresp_clear(&r);
	/* Over-long path. */
	longp = malloc(1200);
	memcpy(longp, "/v1/secret/data/", 16);
	memset(longp + 16, 'a', 1100);
	longp[1116] = '\0';
	assert_int_equal(vfx_http(f, NULL, "GET", longp, f->root, NULL, &r), 0);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
	free(longp);
	/* Methods. */
	assert_int_equal(vfx_http(f, NULL, "OPTIONS", "/v1/secret/data/x",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 405);
	vresp_clear(&r);
	/* PATCH is a merge patch only (Vault's 415 for plain JSON). */
	assert_int_equal(vfx_http(f, NULL, "PATCH", "/v1/secret/data/x",
	                     f->root, "{}", &r),
	    0);
	assert_int_equal(r.status, 415);
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "DELETE", "/v1/sys/health", NULL,
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 405);
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/no/such", f->root, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 404);
	vresp_clear(&r);
	/* No token, a wrong token: the same 403. */
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/data/medical/r1",
	                     NULL, NULL, &r),
	    0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "{\"errors\":[\"permission denied\"]}");
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/secret/data/medical/r1",
	                     "hvs.wrong", NULL, &r),
	    0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.body, "{\"errors\":[\"permission denied\"]}");
	vresp_clear(&r);
}

static void
test_body_limit(void **state)
{
	struct vfx *f = *state;
	struct vresp r;
	size_t n = 1100 * 1024;
	char *big = malloc(n + 64);

	/* A 1.1 MB value: over the 1 MiB KV limit. */
	memcpy(big, "{\"data\":{\"v\":\"", 14);
	memset(big + 14, 'x', n);
	memcpy(big + 14 + n, "\"}}", 4);
	assert_int_equal(vfx_http(f, NULL, "POST", "/v1/secret/data/big",
	                     f->root, big, &r),
	    0);
	assert_int_equal(r.status, 413);
	vresp_clear(&r);
	/* Login is capped lower (64 KiB). */
	big[100 * 1024] = '\0';
	assert_int_equal(vfx_http(f, NULL, "POST",
	                     "/v1/auth/trusted-identity/login", NULL, big, &r),
	    0);
	assert_int_equal(r.status, 413);
	vresp_clear(&r);
	/* Without a valid token, KV bodies get the small limit too. */
	assert_int_equal(vfx_http(f, NULL, "POST", "/v1/secret/data/big",
	                     "hvs.nope", big, &r),
	    0);
	assert_int_equal(r.status, 413);
	vresp_clear(&r);
	/* Under the limit it is stored. */
	big[100 * 1024] = 'x';
	memcpy(big + 14 + 200 * 1024, "\"}}", 4);
	assert_int_equal(vfx_http(f, NULL, "POST", "/v1/secret/data/big",
	                     f->root, big, &r),
	    0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	free(big);
}

static void
test_keep_alive(void **state)
{
	struct vfx *f = *state;
	struct vresp r;
	CURL *c = curl_easy_init();

	assert_int_equal(vfx_http(f, c, "GET", "/v1/sys/health", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.connects, 1);
	vresp_clear(&r);
	/* Same handle: the TLS connection is reused (no new connect). */
	assert_int_equal(vfx_http(f, c, "GET", "/v1/secret/data/medical/r1",
	                     f->root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.connects, 0);
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, c, "POST", "/v1/secret/data/ka", f->root,
	                     "{\"data\":{\"a\":\"b\"}}", &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.connects, 0);
	vresp_clear(&r);
	/* A 403 keeps the connection too. */
	assert_int_equal(vfx_http(f, c, "GET", "/v1/secret/data/ka", "hvs.bad",
	                     NULL, &r),
	    0);
	assert_int_equal(r.status, 403);
	assert_int_equal(r.connects, 0);
	vresp_clear(&r);
	curl_easy_cleanup(c);
}

static void
test_health_metrics(void **state)
{
	struct vfx *f = *state;
	struct vresp r;

	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/sys/health", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.json, "initialized")));
	assert_true(json_is_false(json_object_get(r.json, "sealed")));
	assert_true(json_is_false(json_object_get(r.json, "standby")));
	assert_true(
	    json_is_integer(json_object_get(r.json, "server_time_utc")));
	assert_non_null(jstr(r.json, "version"));
	assert_non_null(jstr(r.json, "cluster_name"));
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET",
	                     "/v1/sys/metrics?format=prometheus", NULL, NULL,
	                     &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body,
	    "tsi_vault_requests_total{route=\"health\","
	    "status=\"200\"}"));
	assert_non_null(
	    strstr(r.body, "tsi_vault_read_duration_seconds_bucket"));
	assert_non_null(
	    strstr(r.body, "tsi_vault_login_duration_seconds_count"));
	assert_non_null(strstr(r.body, "tsi_vault_audit_queue_depth"));
	assert_non_null(strstr(r.body, "tsi_vault_audit_failures_total 0"));
	vresp_clear(&r);
	assert_int_equal(vfx_http(f, NULL, "GET", "/v1/sys/metrics?format=xml",
	                     NULL, NULL, &r),
	    0);
	assert_int_equal(r.status, 400);
	vresp_clear(&r);
}

static void
test_encrypted_at_rest(void **state)
{
	struct vfx *f = *state;
	char path[600], buf[65536];
	FILE *fp;
	size_t n;
	int found = 0;

	put(f, "rest/check",
	    "{\"data\":{\"marker\":\"PLAINTEXT-MARKER-4711\"}}", 200);
	snprintf(path, sizeof(path), "%s/kv/data.mdb", f->data_dir);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		if (memmem(buf, n, "PLAINTEXT-MARKER", 16) != NULL)
			found = 1;
	fclose(fp);
	assert_false(found);
}

/* Runs tsi-vault with args; returns its exit code, stderr in err. */
static int
run(char *err, size_t errlen, const char *a1, const char *a2, const char *a3,
    const char *a4)
{
	char exe[512], tmpl[] = "/tmp/tsi-vault-err.XXXXXX";
	const char *bin = getenv("TSI_BIN_DIR");
	int fd = mkstemp(tmpl), st;
	pid_t pid;
	ssize_t n;

	snprintf(exe, sizeof(exe), "%s/tsi-vault", bin ? bin : "build/bin");
	pid = fork();
	if (pid == 0) {
		dup2(fd, 2);
		dup2(fd, 1);
		execl(exe, exe, a1, a2, a3, a4, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, err, errlen - 1);
	err[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_command_line(void **state)
{
	struct vfx *f = *state;
	char out[4096], conf[600], txt[2048];
	FILE *fp;

	assert_int_equal(run(out, sizeof(out), "--help", NULL, NULL, NULL), 0);
	assert_non_null(strstr(out, "--dev-root-token-id"));
	assert_int_equal(run(out, sizeof(out), "--version", NULL, NULL, NULL),
	    0);
	assert_non_null(strstr(out, "tsi-vault"));
	assert_int_equal(run(out, sizeof(out), "--bogus", NULL, NULL, NULL), 2);
	assert_int_equal(run(out, sizeof(out), NULL, NULL, NULL, NULL), 2);
	assert_int_equal(run(out, sizeof(out), "--config",
	                     "/nonexistent/x.conf", NULL, NULL),
	    2);
	assert_int_equal(run(out, sizeof(out), "--dev", "--dev-listen",
	                     "0.0.0.0:8200", NULL),
	    2);
	assert_non_null(strstr(out, "loopback"));

	/* Unknown setting: file:line: reason. */
	snprintf(conf, sizeof(conf), "%s/bad.conf", f->dir);
	fp = fopen(conf, "w");
	fprintf(fp, "listen = \"127.0.0.1:1\";\n\nlisten_typo = 3;\n");
	fclose(fp);
	assert_int_equal(run(out, sizeof(out), "--config", conf, NULL, NULL),
	    2);
	snprintf(txt, sizeof(txt), "%s:3:", conf);
	assert_non_null(strstr(out, txt));
	/* Syntax error. */
	fp = fopen(conf, "w");
	fprintf(fp, "listen = \"127.0.0.1:1\"\nthreads = ;\n");
	fclose(fp);
	assert_int_equal(run(out, sizeof(out), "--config", conf, NULL, NULL),
	    2);
	assert_non_null(strstr(out, conf));
	/* Key file readable by others: refused. */
	chmod(f->key_file, 0644);
	assert_int_equal(run(out, sizeof(out), "--config", f->conf, NULL, NULL),
	    2);
	assert_non_null(strstr(out, "0600"));
	chmod(f->key_file, 0600);
	/* A kv_url no backend takes names its line. */
	fp = fopen(conf, "w");
	fprintf(fp,
	    "tls_cert = \"%s\";\ntls_key = \"%s\";\ndata_dir = \"%s/d2\";\n"
	    "kv_key_file = \"%s\";\nkv_url = \"nosuch:///x\";\n",
	    f->tls_cert, f->tls_key, f->dir, f->key_file);
	fclose(fp);
	assert_int_equal(run(out, sizeof(out), "--config", conf, NULL, NULL),
	    2);
	snprintf(txt, sizeof(txt), "%s:5: kv_url", conf);
	assert_non_null(strstr(out, txt));
	/* Out-of-range value names its line. */
	fp = fopen(conf, "w");
	fprintf(fp,
	    "tls_cert = \"%s\";\ntls_key = \"%s\";\ndata_dir = \"%s/d2\";\n"
	    "kv_key_file = \"%s\";\nthreads = 100000;\n",
	    f->tls_cert, f->tls_key, f->dir, f->key_file);
	fclose(fp);
	assert_int_equal(run(out, sizeof(out), "--config", conf, NULL, NULL),
	    2);
	snprintf(txt, sizeof(txt), "%s:5:", conf);
	assert_non_null(strstr(out, txt));
}

/* Runs `tsi kv ...` with the vault environment; stdout+stderr in out. */
static int
tsi_kv(struct vfx *f, const char *token, char *out, size_t outlen,
    const char *a1, const char *a2, const char *a3, const char *a4,
    const char *a5)
{
	char exe[512], tmpl[] = "/tmp/tsi-kv-out.XXXXXX";
	const char *bin = getenv("TSI_BIN_DIR");
	int fd = mkstemp(tmpl), st;
	pid_t pid;
	ssize_t n;

	snprintf(exe, sizeof(exe), "%s/tsi", bin ? bin : "build/bin");
	pid = fork();
	if (pid == 0) {
		dup2(fd, 2);
		dup2(fd, 1);
		setenv("VAULT_ADDR", f->addr, 1);
		setenv("VAULT_CACERT", f->tls_ca, 1);
		if (token)
			setenv("VAULT_TOKEN", token, 1);
		else
			unsetenv("VAULT_TOKEN");
		execl(exe, exe, "kv", a1, a2, a3, a4, a5, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, out, outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_cli_kv(void **state)
{
	struct vfx *f = *state;
	char out[8192], file[400];
	FILE *fp;
	json_t *j;
	json_error_t jerr;

	snprintf(file, sizeof(file), "%s/value.txt", f->dir);
	fp = fopen(file, "w");
	fputs("line1\nline2", fp);
	fclose(fp);
	{
		char arg[450];
		snprintf(arg, sizeof(arg), "pem=@%s", file);
		assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "put",
		                     "secret/cli/app", "user=alice",
		                     "pass=s p a c e", arg),
		    0);
	}
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(jint(j, "data", "version", NULL), 1);
	json_decref(j);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "put", "cli/app",
	                     "user=bob", NULL, NULL),
	    0);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "get", "cli/app",
	                     NULL, NULL, NULL),
	    0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(jstr(j, "data.data.user"), "bob");
	json_decref(j);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "get", "-version",
	                     "1", "secret/cli/app", NULL),
	    0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(jstr(j, "data.data.pass"), "s p a c e");
	assert_string_equal(jstr(j, "data.data.pem"), "line1\nline2");
	json_decref(j);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "list", "cli",
	                     NULL, NULL, NULL),
	    0);
	assert_non_null(strstr(out, "\"app\""));
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "delete",
	                     "cli/app", NULL, NULL, NULL),
	    0);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "get", "cli/app",
	                     NULL, NULL, NULL),
	    1);
	assert_non_null(strstr(out, "no value found"));
	/* Errors: no token, a bad token, bad usage. */
	assert_int_equal(tsi_kv(f, NULL, out, sizeof(out), "get", "cli/app",
	                     NULL, NULL, NULL),
	    2);
	assert_int_equal(tsi_kv(f, "hvs.bad", out, sizeof(out), "get",
	                     "cli/app", NULL, NULL, NULL),
	    1);
	assert_non_null(strstr(out, "permission denied"));
	assert_null(strstr(out, "hvs.bad"));
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "put", "cli/app",
	                     "novalue", NULL, NULL),
	    2);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "get", "-version",
	                     "x", "cli/app", NULL),
	    2);
	assert_int_equal(tsi_kv(f, f->root, out, sizeof(out), "frobnicate",
	                     NULL, NULL, NULL, NULL),
	    2);
}

static void
test_dev_mode(void **state)
{
	struct vfx d;
	struct vresp r;
	char out[600], buf[4096];
	FILE *fp;
	size_t n;
	int i;

	assert_int_equal(vfx_init(&d, NULL, NULL), 0);
	d.dev = 1;
	assert_int_equal(vfx_start(&d), 0);
	/* The banner is printed right after the listener opens. */
	snprintf(out, sizeof(out), "%s/server.out", d.dir);
	for (i = 0; i < 100; i++) {
		fp = fopen(out, "r");
		assert_non_null(fp);
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		buf[n] = '\0';
		fclose(fp);
		if (strstr(buf, "Development mode") != NULL)
			break;
		usleep(20 * 1000);
	}
	assert_non_null(strstr(buf, "Root Token: dev-root-token-0123456789"));
	assert_non_null(strstr(buf, "VAULT_ADDR='http://127.0.0.1:"));
	/* Plain HTTP, KV works with the root token. */
	assert_int_equal(vfx_http(&d, NULL, "POST", "/v1/secret/data/dev/x",
	                     d.root, "{\"data\":{\"k\":\"v\"}}", &r),
	    0);
	assert_int_equal(r.status, 200);
	vresp_clear(&r);
	assert_int_equal(vfx_http(&d, NULL, "GET", "/v1/secret/data/dev/x",
	                     d.root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_string_equal(jstr(r.json, "data.data.k"), "v");
	vresp_clear(&r);
	/* The root token may query the audit log. */
	assert_int_equal(vfx_http(&d, NULL, "GET",
	                     "/v1/sys/audit/releases?path=secret/data/dev",
	                     d.root, NULL, &r),
	    0);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(json_object_get(r.json,
	    "data"), "records")), 3 /* the write's decision and outcome,
	    the read */);
	vresp_clear(&r);
	assert_int_equal(vfx_stop(&d), 0);
	vfx_cleanup(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_versions),
		cmocka_unit_test(test_kv_soft_delete),
		cmocka_unit_test(test_kv_list_and_metadata),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_keep_alive),
		cmocka_unit_test(test_health_metrics),
		cmocka_unit_test(test_encrypted_at_rest),
		cmocka_unit_test(test_command_line),
		cmocka_unit_test(test_cli_kv),
		cmocka_unit_test(test_dev_mode),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
