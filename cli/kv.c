/*
 * tsi kv: KV v2 secrets over tsi-vault's (or Vault's) HTTP API, like the
 * vault CLI: VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT from the environment.
 *
 *   tsi kv put PATH k=v [k=@file]...   new version of PATH
 *   tsi kv get [-version N] PATH       a version (latest by default)
 *   tsi kv list [PATH]                 keys under PATH
 *   tsi kv delete PATH                 soft-delete the latest version
 *
 * PATH may start with the mount ("secret/app/db") or not ("app/db").
 * Output is the server's JSON answer, pretty-printed. The token is sent in
 * X-Vault-Token and never printed.
 */
#include "cli.h"

#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAX_RESPONSE (16u << 20)
#define KV_MAX_VALUE_FILE (1u << 20)

static void
kv_usage(void)
{
	fprintf(stderr,
	    "usage: tsi kv put PATH KEY=VALUE [KEY=@FILE]...\n"
	    "       tsi kv get [-version N] PATH\n"
	    "       tsi kv list [PATH]\n"
	    "       tsi kv delete PATH\n\n"
	    "Environment: VAULT_ADDR (default https://127.0.0.1:8200),\n"
	    "VAULT_TOKEN (required), VAULT_CACERT (CA file for TLS).\n"
	    "PATH is below the secret/ mount; a leading \"secret/\" is accepted.\n");
}

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	return tsi_buf_put(arg, p, sz * n) == TSI_OK ? sz * n : 0;
}

/* "/v1/secret/<kind>/<escaped path>" into url. */
static int
build_url(CURL *c, const char *addr, const char *kind, const char *path,
    const char *query, struct tsi_buf *url)
{
	const char *p = path, *slash;
	size_t alen = strlen(addr);
	int r;

	while (alen > 0 && addr[alen - 1] == '/')
		alen--;
	if (strncmp(p, "secret/", 7) == 0)
		p += 7;
	if ((r = tsi_buf_put(url, addr, alen)) != TSI_OK ||
	    (r = tsi_buf_putf(url, "/v1/secret/%s/", kind)) != TSI_OK)
		return r;
	while (*p != '\0') {
		char *esc;
		size_t n;

		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if ((esc = curl_easy_escape(c, p, (int)n)) == NULL)
			return TSI_ERR_ALLOC;
		r = tsi_buf_puts(url, esc);
		curl_free(esc);
		if (r != TSI_OK)
			return r;
		if (slash && (r = tsi_buf_puts(url, "/")) != TSI_OK)
			return r;
		p = slash ? slash + 1 : p + n;
	}
	return query ? tsi_buf_puts(url, query) : TSI_OK;
}

/* One request; prints the JSON answer. Returns an exit code. */
static int
request(const char *method, const char *kind, const char *path,
    const char *query, const char *body)
{
	const char *addr = getenv("VAULT_ADDR"), *token = getenv("VAULT_TOKEN");
	const char *ca = getenv("VAULT_CACERT");
	struct tsi_buf *url = tsi_buf_new(8192), *resp = tsi_buf_new(KV_MAX_RESPONSE);
	struct tsi_buf *hdr = tsi_buf_new(1024);
	struct curl_slist *h = NULL;
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	json_t *j = NULL;
	json_error_t jerr;
	int code = TSI_EXIT_FAIL;

	if (url == NULL || resp == NULL || hdr == NULL)
		goto out;
	if (addr == NULL || *addr == '\0')
		addr = "https://127.0.0.1:8200";
	if (token == NULL || *token == '\0') {
		tsi_cli_err("kv: VAULT_TOKEN is not set");
		code = TSI_EXIT_USAGE;
		goto out;
	}
	if ((c = curl_easy_init()) == NULL)
		goto out;
	if (build_url(c, addr, kind, path, query, url) != TSI_OK) {
		tsi_cli_err("kv: path too long");
		code = TSI_EXIT_USAGE;
		goto out;
	}
	if (tsi_buf_putf(hdr, "X-Vault-Token: %s", token) != TSI_OK) {
		tsi_cli_err("kv: VAULT_TOKEN too long");
		code = TSI_EXIT_USAGE;
		goto out;
	}
	h = curl_slist_append(h, tsi_buf_str(hdr));
	if (body != NULL)
		h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, tsi_buf_str(url));
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (ca != NULL && *ca != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		tsi_cli_err("kv: %s: %s", addr, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (tsi_buf_len(resp) > 0)
		j = json_loadb((const char *)tsi_buf_ptr(resp), tsi_buf_len(resp), 0,
		    &jerr);
	if (status >= 200 && status < 300) {
		if (j != NULL) {
			char *out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			if (out != NULL) {
				puts(out);
				tsi_strfree(out);
			}
		}
		code = TSI_EXIT_OK;
		goto out;
	}
	if (status == 404)
		tsi_cli_err("kv: no value found at secret/%s", path +
		    (strncmp(path, "secret/", 7) == 0 ? 7 : 0));
	else {
		json_t *errs = json_object_get(j, "errors");
		const char *e = json_string_value(json_array_get(errs, 0));
		tsi_cli_err("kv: HTTP %ld: %s", status, e ? e : "request failed");
	}
	if (j != NULL && status == 404 && json_object_get(j, "data") != NULL) {
		/* A deleted version: Vault's answer still carries metadata. */
		char *out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (out != NULL) {
			puts(out);
			tsi_strfree(out);
		}
	}
out:
	json_decref(j);
	curl_slist_free_all(h);
	if (c != NULL)
		curl_easy_cleanup(c);
	tsi_buf_free(url);
	tsi_buf_free(resp);
	tsi_buf_free(hdr);
	return code;
}

static char *
read_value_file(const char *path)
{
	char *out = NULL, err[512];

	if (tsi_file_read(path, KV_MAX_VALUE_FILE, 0, &out, NULL, err,
	    sizeof(err)) != TSI_OK)
		tsi_cli_err("kv: %s", err);
	return out;
}

static int
cmd_put(int argc, char **argv)
{
	json_t *data = json_object(), *body = NULL;
	char *text = NULL;
	int i, code = TSI_EXIT_USAGE;

	if (argc < 3) {
		kv_usage();
		goto out;
	}
	for (i = 2; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		json_t *val;
		char key[256];

		if (eq == NULL || eq == argv[i] ||
		    (size_t)(eq - argv[i]) >= sizeof(key)) {
			tsi_cli_err("kv put: expected KEY=VALUE, got '%s'", argv[i]);
			goto out;
		}
		memcpy(key, argv[i], (size_t)(eq - argv[i]));
		key[eq - argv[i]] = '\0';
		if (eq[1] == '@') {
			char *v = read_value_file(eq + 2);
			if (v == NULL) {
				code = TSI_EXIT_FAIL;
				goto out;
			}
			val = json_string(v);
			tsi_strfree(v);
		} else
			val = json_string(eq + 1);
		if (val == NULL) {
			tsi_cli_err("kv put: value of '%s' is not UTF-8 text", key);
			goto out;
		}
		json_object_set_new(data, key, val);
	}
	body = json_pack("{sO}", "data", data);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		code = TSI_EXIT_FAIL;
		goto out;
	}
	code = request("POST", "data", argv[1], NULL, text);
out:
	tsi_strfree(text);
	json_decref(body);
	json_decref(data);
	return code;
}

static int
kv_main(int argc, char **argv)
{
	const char *sub;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		kv_usage();
		return argc < 2 ? TSI_EXIT_USAGE : TSI_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "put") == 0)
		return cmd_put(argc - 1, argv + 1);
	if (strcmp(sub, "get") == 0) {
		char q[48];
		const char *path;
		if (argc == 3)
			return request("GET", "data", argv[2], NULL, NULL);
		if (argc == 5 && (strcmp(argv[2], "-version") == 0 ||
		    strcmp(argv[2], "--version") == 0)) {
			char *end;
			unsigned long long v;
			errno = 0;
			v = strtoull(argv[3], &end, 10);
			if (errno || *end || argv[3][0] == '\0' || argv[3][0] == '-') {
				tsi_cli_err("kv get: -version needs a number");
				return TSI_EXIT_USAGE;
			}
			snprintf(q, sizeof(q), "?version=%llu", v);
			path = argv[4];
			return request("GET", "data", path, q, NULL);
		}
		kv_usage();
		return TSI_EXIT_USAGE;
	}
	if (strcmp(sub, "list") == 0) {
		if (argc > 3) {
			kv_usage();
			return TSI_EXIT_USAGE;
		}
		return request("LIST", "metadata", argc == 3 ? argv[2] : "", NULL,
		    NULL);
	}
	if (strcmp(sub, "delete") == 0) {
		int code;
		if (argc != 3) {
			kv_usage();
			return TSI_EXIT_USAGE;
		}
		code = request("DELETE", "data", argv[2], NULL, NULL);
		if (code == TSI_EXIT_OK)
			printf("Success! Data deleted (if it existed) at: secret/%s\n",
			    argv[2] + (strncmp(argv[2], "secret/", 7) == 0 ? 7 : 0));
		return code;
	}
	tsi_cli_err("kv: unknown subcommand '%s'", sub);
	kv_usage();
	return TSI_EXIT_USAGE;
}

static const struct tsi_cli_group kv_group = {
	.name = "kv",
	.summary = "read and write KV v2 secrets (VAULT_ADDR, VAULT_TOKEN)",
	.main = kv_main,
	.usage = kv_usage,
};
TSI_CLI_GROUP(kv_group)
