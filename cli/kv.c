/*
 * tsi kv: KV v2 secrets over tsi-vault's (or Vault's) HTTP API, like the
 * vault CLI: VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT from the environment.
 *
 * Every subcommand takes -mount=secret (the vault CLI's way of naming the
 * mount; PATH is then below it).
 *   tsi kv put [-format F] PATH [@FILE.json] [k=v] [k=@file]...
 *                                      new version of PATH
 *   tsi kv patch [-cas N] [-format F] PATH [@FILE.json] [k=v]...
 *                                      merge into the current version
 *   tsi kv get [-version N] [-field K] [-format F] PATH
 *                                      a version (latest by default)
 *   tsi kv list [-format F] [PATH]     keys under PATH
 *   tsi kv delete PATH                 soft-delete the latest version
 *   tsi kv undelete -versions=N[,N...] PATH
 *   tsi kv destroy -versions=N[,N...] PATH
 *                                      undelete or destroy versions
 *   tsi kv metadata get [-format F] PATH
 *   tsi kv metadata put [-max-versions N] [-cas-required[=BOOL]]
 *       [-delete-version-after D] [-custom-metadata K=V]... PATH
 *                                      the path's settings
 *   tsi kv metadata delete PATH        every version and the metadata
 *
 * Flags are spelled as the vault CLI (Go's flag package) takes them:
 * -name=value, -name value, --name=value, --name value, before PATH; a
 * flag this command does not know is named in the error (exit 2).
 * PATH may start with the mount ("secret/app/db") or not ("app/db").
 * Output is the server's JSON answer, pretty-printed (-format=json, the
 * default), or Vault's key/value tables (-format=table); -field prints one
 * value of the secret as it is. The token is sent in X-Vault-Token and
 * never printed.
 */
#include "cli.h"

#include "tsi/buf.h"
#include "tsi/curlmsg.h"
#include "tsi/err.h"
#include "tsi/file.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KV_MAX_RESPONSE (16u << 20)
#define KV_MAX_VALUE_FILE (1u << 20)
/* Vault's bound on custom_metadata keys. */
#define KV_CUSTOM_MAX 64

static void
kv_usage(void)
{
	fprintf(stderr,
	    "usage: tsi kv put [-format=json|table] PATH [@FILE.json] "
	    "[KEY=VALUE] [KEY=@FILE]...\n"
	    "       tsi kv patch [-cas=N] [-format=json|table] PATH "
	    "[@FILE.json] "
	    "[KEY=VALUE]...\n"
	    "       tsi kv get [-version=N] [-field=KEY] [-format=json|table] "
	    "PATH\n"
	    "       tsi kv list [-format=json|table] [PATH]\n"
	    "       tsi kv delete PATH\n"
	    "       tsi kv undelete -versions=N[,N...] PATH\n"
	    "       tsi kv destroy -versions=N[,N...] PATH\n"
	    "       tsi kv metadata get [-format=json|table] PATH\n"
	    "       tsi kv metadata put [-max-versions=N] "
	    "[-cas-required[=true|false]]\n"
	    "           [-delete-version-after=DURATION] "
	    "[-custom-metadata=KEY=VALUE]... PATH\n"
	    "       tsi kv metadata delete PATH\n\n"
	    "Flags as the vault CLI takes them: -name=value, -name value,\n"
	    "--name=value or --name value, before PATH. -mount=secret is\n"
	    "accepted by each (PATH is then below the mount).\n"
	    "Environment: VAULT_ADDR (default https://127.0.0.1:8200),\n"
	    "VAULT_TOKEN (required), VAULT_CACERT (CA file for TLS).\n"
	    "PATH is below the secret/ mount; a leading \"secret/\" is "
	    "accepted.\n");
}

/* What the flags asked for; strings borrowed from argv. */
struct kv_opts {
	const char *field;        /* print only data[field], raw */
	int table;                /* -format=table */
	const char *version;      /* -version N, checked digits */
	int mount;                /* -mount=secret: PATH is below the mount */
	const char *versions;     /* -versions N,N: checked digits and commas */
	const char *cas;          /* -cas N (patch), checked digits */
	const char *ctype;        /* Content-Type of the body; NULL: JSON */
	const char *max_versions; /* -max-versions N, checked digits */
	int cas_required;         /* -cas-required: -1 not given, 0, 1 */
	const char *delete_after; /* -delete-version-after D (the server
	                             * checks the duration) */
	const char *custom[KV_CUSTOM_MAX]; /* -custom-metadata K=V, each */
	size_t ncustom;
};

enum {
	KVF_FIELD = 1,
	KVF_FORMAT = 2,
	KVF_VERSION = 4,
	KVF_MOUNT = 8,
	KVF_VERSIONS = 16,
	KVF_CAS = 32,
	KVF_MAXV = 64,
	KVF_CASREQ = 128,
	KVF_DVA = 256,
	KVF_CUSTOM = 512
};

static const struct {
	const char *name;
	unsigned bit;
} kv_flags[] = {
	{ "field", KVF_FIELD },
	{ "format", KVF_FORMAT },
	{ "version", KVF_VERSION },
	{ "mount", KVF_MOUNT },
	{ "versions", KVF_VERSIONS },
	{ "cas", KVF_CAS },
	{ "max-versions", KVF_MAXV },
	{ "cas-required", KVF_CASREQ },
	{ "delete-version-after", KVF_DVA },
	{ "custom-metadata", KVF_CUSTOM },
};

/* Go's strconv.ParseBool, as the vault CLI reads a bool flag. */
static int
parse_gobool(const char *v, int *out)
{
	static const char *const t[] = { "1", "t", "T", "true", "TRUE",
		"True" };
	static const char *const f[] = { "0", "f", "F", "false", "FALSE",
		"False" };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(v, t[i]) == 0) {
			*out = 1;
			return TSI_OK;
		}
		if (strcmp(v, f[i]) == 0) {
			*out = 0;
			return TSI_OK;
		}
	}
	return TSI_ERR_PARSE;
}

static int
set_flag(const char *sub, unsigned bit, const char *val, struct kv_opts *o)
{
	const char *p;

	switch (bit) {
	case KVF_FIELD:
		if (*val == '\0') {
			tsi_cli_err("kv %s: -field needs a key name", sub);
			return TSI_ERR_INVALID_ARG;
		}
		o->field = val;
		return TSI_OK;
	case KVF_FORMAT:
		if (strcmp(val, "json") == 0)
			o->table = 0;
		else if (strcmp(val, "table") == 0)
			o->table = 1;
		else {
			tsi_cli_err("kv %s: -format must be json or table, not "
			            "'%s'",
			    sub, val);
			return TSI_ERR_INVALID_ARG;
		}
		return TSI_OK;
	case KVF_MOUNT:
		/* One KV mount exists; naming another is an error, not a
		 * silent read of secret/. */
		if (strcmp(val, "secret") != 0 && strcmp(val, "secret/") != 0) {
			tsi_cli_err("kv %s: -mount: only the secret/ mount "
			            "exists, not '%s'",
			    sub, val);
			return TSI_ERR_INVALID_ARG;
		}
		o->mount = 1;
		return TSI_OK;
	case KVF_VERSIONS:
		/* As the vault CLI: a comma-separated list of numbers. */
		if (*val == '\0' || strspn(val, "0123456789,") != strlen(val) ||
		    val[0] == ',' || val[strlen(val) - 1] == ',' ||
		    strstr(val, ",,") != NULL || strlen(val) > 4096) {
			tsi_cli_err("kv %s: -versions needs numbers separated "
			            "by "
			            "commas, not '%s'",
			    sub, val);
			return TSI_ERR_INVALID_ARG;
		}
		o->versions = val;
		return TSI_OK;
	case KVF_MAXV:
		if (*val == '\0' || strspn(val, "0123456789") != strlen(val) ||
		    strlen(val) > 7) {
			tsi_cli_err("kv %s: -max-versions needs a number, not "
			            "'%s'",
			    sub, val);
			return TSI_ERR_INVALID_ARG;
		}
		o->max_versions = val;
		return TSI_OK;
	case KVF_CASREQ:
		if (parse_gobool(val, &o->cas_required) != TSI_OK) {
			tsi_cli_err("kv %s: -cas-required must be true or "
			            "false, "
			            "not '%s'",
			    sub, val);
			return TSI_ERR_INVALID_ARG;
		}
		return TSI_OK;
	case KVF_DVA:
		if (*val == '\0') {
			tsi_cli_err("kv %s: -delete-version-after needs a "
			            "duration (e.g. 3h25m19s)",
			    sub);
			return TSI_ERR_INVALID_ARG;
		}
		o->delete_after = val;
		return TSI_OK;
	case KVF_CUSTOM:
		if ((p = strchr(val, '=')) == NULL || p == val) {
			tsi_cli_err("kv %s: -custom-metadata needs KEY=VALUE, "
			            "not '%s'",
			    sub, val);
			return TSI_ERR_INVALID_ARG;
		}
		if (o->ncustom == KV_CUSTOM_MAX) {
			tsi_cli_err("kv %s: at most %d -custom-metadata", sub,
			    KV_CUSTOM_MAX);
			return TSI_ERR_INVALID_ARG;
		}
		o->custom[o->ncustom++] = val;
		return TSI_OK;
	default:
		for (p = val; *p >= '0' && *p <= '9'; p++)
			;
		if (*val == '\0' || *p != '\0' ||
		    p - val > (bit == KVF_CAS ? 15 : 18)) {
			tsi_cli_err("kv %s: -%s needs a number", sub,
			    bit == KVF_CAS ? "cas" : "version");
			return TSI_ERR_INVALID_ARG;
		}
		if (bit == KVF_CAS)
			o->cas = val;
		else
			o->version = val;
		return TSI_OK;
	}
}

/*
 * Reads the flags at the start of argv[1..] (argv[0] is the subcommand),
 * as Go's flag package does: one or two dashes, the value after '=' or as
 * the next argument; "--" or the first argument without a dash ends them.
 * allowed: the KVF_ bits this subcommand takes. Returns the index of the
 * first operand, or -1 after printing the error (exit 2).
 */
static int
parse_flags(const char *sub, int argc, char **argv, unsigned allowed,
    struct kv_opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->cas_required = -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq, *val;
		size_t nlen, k;
		unsigned bit = 0;

		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		name = a + (a[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		for (k = 0; k < sizeof(kv_flags) / sizeof(kv_flags[0]); k++)
			if (strlen(kv_flags[k].name) == nlen &&
			    strncmp(kv_flags[k].name, name, nlen) == 0)
				bit = kv_flags[k].bit;
		if ((bit & allowed) == 0) {
			tsi_cli_err("kv %s: unknown flag -%.*s", sub, (int)nlen,
			    name);
			return -1;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (bit == KVF_CASREQ)
			val = "true"; /* a bool flag, as Go's: no operand */
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			tsi_cli_err("kv %s: flag needs an argument: -%.*s", sub,
			    (int)nlen, name);
			return -1;
		}
		if (set_flag(sub, bit, val, o) != TSI_OK)
			return -1;
	}
	return i;
}

static size_t
width_of(const json_t *obj, const char *first)
{
	const char *k;
	json_t *v;
	size_t w = strlen(first);

	json_object_foreach ((json_t *)obj, k, v)
		if (strlen(k) > w)
			w = strlen(k);
	return w;
}

/* A value as a table cell or a -field answer: strings as they are,
 * null as Vault's "<nil>", everything else as compact JSON. */
static void
print_value(const json_t *v)
{
	char *t;

	if (json_is_string(v)) {
		fputs(json_string_value(v), stdout);
		return;
	}
	if (json_is_null(v)) {
		fputs("<nil>", stdout);
		return;
	}
	if ((t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		fputs(t, stdout);
		tsi_strfree(t);
	}
}

/* Vault's "Key  Value" table of obj's members, sorted by key. */
static void
print_kv_table(const char *title, const json_t *obj)
{
	const char **keys;
	const char *k;
	json_t *v;
	size_t n = json_object_size(obj), i = 0, j, w = width_of(obj, "Key");

	if (title != NULL)
		printf("%s\n", title);
	printf("%-*s    Value\n%-*s    -----\n", (int)w, "Key", (int)w, "---");
	if (n == 0 || (keys = calloc(n, sizeof(*keys))) == NULL)
		return;
	json_object_foreach ((json_t *)obj, k, v)
		keys[i++] = k;
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			k = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = k;
		}
	for (i = 0; i < n; i++) {
		printf("%-*s    ", (int)w, keys[i]);
		print_value(json_object_get(obj, keys[i]));
		putchar('\n');
	}
	free(keys);
}

/* A successful answer, as the flags asked. Returns an exit code. */
static int
print_answer(const json_t *j, const char *kind, const char *path,
    const struct kv_opts *o)
{
	const json_t *data = json_object_get(j, "data"), *v;
	char *out;

	if (o != NULL && o->field != NULL) {
		v = json_object_get(json_object_get(data, "data"), o->field);
		if (v == NULL) {
			tsi_cli_err("kv get: field \"%s\" not present in "
			            "secret",
			    o->field);
			return TSI_EXIT_FAIL;
		}
		print_value(v);
		/* As the vault CLI: a newline only for a person reading. */
		if (isatty(STDOUT_FILENO))
			putchar('\n');
		return TSI_EXIT_OK;
	}
	if (o != NULL && o->table) {
		if (json_is_array(json_object_get(data, "keys"))) {
			size_t i;

			printf("Keys\n----\n");
			for (i = 0;
			     i < json_array_size(json_object_get(data, "keys"));
			     i++)
				printf("%s\n",
				    json_string_value(
				        json_array_get(json_object_get(data,
				                           "keys"),
				            i)));
			return TSI_EXIT_OK;
		}
		printf("== Secret Path ==\nsecret/%s/%s\n\n", kind,
		    path +
		        (!o->mount && strncmp(path, "secret/", 7) == 0 ? 7
		                                                       : 0));
		if (json_is_object(json_object_get(data, "metadata"))) {
			print_kv_table("======= Metadata =======",
			    json_object_get(data, "metadata"));
			putchar('\n');
			print_kv_table("====== Data ======",
			    json_object_get(data, "data"));
		} else if (json_is_object(data))
			print_kv_table(NULL, data);
		return TSI_EXIT_OK;
	}
	out = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (out != NULL) {
		puts(out);
		tsi_strfree(out);
	}
	return TSI_EXIT_OK;
}

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	return tsi_buf_put(arg, p, sz * n) == TSI_OK ? sz * n : 0;
}

/* "/v1/secret/<kind>/<escaped path>" into url. */
static int
build_url(CURL *c, const char *addr, const char *kind, const char *path,
    const char *query, int mounted, struct tsi_buf *url)
{
	const char *p = path, *slash;
	size_t alen = strlen(addr);
	int r;

	while (alen > 0 && addr[alen - 1] == '/')
		alen--;
	/* With -mount, PATH is below the mount already (as vault kv). */
	if (!mounted && strncmp(p, "secret/", 7) == 0)
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

/* One request; prints the answer as o asks (NULL: JSON). Returns an exit
 * code. */
static int
request(const char *method, const char *kind, const char *path,
    const char *query, const char *body, const struct kv_opts *o)
{
	const char *addr = getenv("VAULT_ADDR"), *token = getenv("VAULT_TOKEN");
	const char *ca = getenv("VAULT_CACERT");
	struct tsi_buf *url = tsi_buf_new(8192),
	               *resp = tsi_buf_new(KV_MAX_RESPONSE);
	struct tsi_buf *hdr = tsi_buf_new(1024);
	struct curl_slist *h = NULL;
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	json_t *j = NULL;
	json_error_t jerr;
	char errbuf[CURL_ERROR_SIZE], why[512];
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
	if (build_url(c, addr, kind, path, query, o != NULL && o->mount, url) !=
	    TSI_OK) {
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
		h = curl_slist_append(h,
		    o != NULL && o->ctype != NULL
		        ? o->ctype
		        : "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, tsi_buf_str(url));
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (ca != NULL && *ca != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		tsi_cli_err("kv: %s: %s", addr,
		    tsi_curl_explain((int)cc, errbuf, tsi_buf_str(url),
		        "VAULT_CACERT", why, sizeof(why)));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (tsi_buf_len(resp) > 0)
		j = json_loadb((const char *)tsi_buf_ptr(resp),
		    tsi_buf_len(resp), 0, &jerr);
	if (status >= 200 && status < 300) {
		code = j != NULL ? print_answer(j, kind, path, o) : TSI_EXIT_OK;
		goto out;
	}
	if (status == 404)
		tsi_cli_err("kv: no value found at secret/%s",
		    path + (strncmp(path, "secret/", 7) == 0 ? 7 : 0));
	else {
		json_t *errs = json_object_get(j, "errors");
		const char *e = json_string_value(json_array_get(errs, 0));
		tsi_cli_err("kv: HTTP %ld: %s", status,
		    e ? e : "request failed");
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

/* Merges the JSON object in file (the "@FILE.json" argument) into data. */
static int
put_file(const char *file, json_t *data)
{
	char *text = read_value_file(file);
	json_t *j;
	json_error_t jerr;
	int code = TSI_EXIT_USAGE;

	if (text == NULL)
		return TSI_EXIT_FAIL;
	j = json_loads(text, 0, &jerr);
	tsi_strfree(text);
	if (!json_is_object(j)) {
		tsi_cli_err("kv put: %s: not a JSON object%s%s", file,
		    j == NULL ? ": " : "", j == NULL ? jerr.text : "");
		goto out;
	}
	json_object_update(data, j);
	code = TSI_EXIT_OK;
out:
	json_decref(j);
	return code;
}

static int
cmd_put(int argc, char **argv)
{
	json_t *data = json_object(), *body = NULL;
	struct kv_opts o;
	char *text = NULL;
	int i, first, code = TSI_EXIT_USAGE;
	int patch = strcmp(argv[0], "patch") == 0;

	if ((first = parse_flags(argv[0], argc, argv,
	         KVF_FORMAT | KVF_MOUNT | (patch ? KVF_CAS : 0), &o)) < 0)
		goto out;
	if (argc - first < 2) {
		kv_usage();
		goto out;
	}
	for (i = first + 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		json_t *val;
		char key[256];

		if (argv[i][0] == '@') {
			if ((code = put_file(argv[i] + 1, data)) != TSI_EXIT_OK)
				goto out;
			code = TSI_EXIT_USAGE;
			continue;
		}
		if (eq == NULL || eq == argv[i] ||
		    (size_t)(eq - argv[i]) >= sizeof(key)) {
			tsi_cli_err("kv %s: expected KEY=VALUE or @FILE.json, "
			            "got '%s'",
			    argv[0], argv[i]);
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
			tsi_cli_err("kv put: value of '%s' is not UTF-8 text",
			    key);
			goto out;
		}
		json_object_set_new(data, key, val);
	}
	body = json_pack("{sO}", "data", data);
	if (body != NULL && o.cas != NULL &&
	    json_object_set_new(body, "options",
	        json_pack("{sI}", "cas",
	            (json_int_t)strtoll(o.cas, NULL, 10))) != 0) {
		code = TSI_EXIT_FAIL;
		goto out;
	}
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		code = TSI_EXIT_FAIL;
		goto out;
	}
	/* As vault kv patch's default method: the server merges (RFC 7396). */
	if (patch)
		o.ctype = "Content-Type: application/merge-patch+json";
	code = request(patch ? "PATCH" : "POST", "data", argv[first], NULL,
	    text, &o);
out:
	tsi_strfree(text);
	json_decref(body);
	json_decref(data);
	return code;
}

static int
cmd_get(int argc, char **argv)
{
	struct kv_opts o;
	char q[48];
	int first;

	first = parse_flags("get", argc, argv,
	    KVF_FIELD | KVF_FORMAT | KVF_VERSION | KVF_MOUNT, &o);
	if (first < 0)
		return TSI_EXIT_USAGE;
	if (argc - first != 1) {
		kv_usage();
		return TSI_EXIT_USAGE;
	}
	if (o.version == NULL)
		return request("GET", "data", argv[first], NULL, NULL, &o);
	snprintf(q, sizeof(q), "?version=%s", o.version);
	return request("GET", "data", argv[first], q, NULL, &o);
}

/* tsi kv undelete|destroy -versions=N,... PATH. */
static int
cmd_versions(const char *sub, int argc, char **argv)
{
	struct kv_opts o;
	json_t *arr = NULL, *wrap = NULL;
	const char *p;
	char *body = NULL;
	int first, code = TSI_EXIT_FAIL;

	if ((first = parse_flags(sub, argc, argv, KVF_VERSIONS | KVF_MOUNT,
	         &o)) < 0)
		return TSI_EXIT_USAGE;
	if (argc - first != 1 || o.versions == NULL) {
		if (o.versions == NULL)
			tsi_cli_err("kv %s: -versions is required", sub);
		kv_usage();
		return TSI_EXIT_USAGE;
	}
	if ((arr = json_array()) == NULL)
		goto out;
	/* set_flag checked the form: numbers separated by single commas. */
	for (p = o.versions; *p != '\0'; p += *p == ',') {
		unsigned long long v = 0;
		while (*p >= '0' && *p <= '9' && v <= (1ULL << 53))
			v = v * 10 + (unsigned)(*p++ - '0');
		if (v > (1ULL << 53)) {
			tsi_cli_err("kv %s: -versions: number too large", sub);
			code = TSI_EXIT_USAGE;
			goto out;
		}
		if (json_array_append_new(arr, json_integer((json_int_t)v)) !=
		    0)
			goto out;
	}
	if ((wrap = json_pack("{sO}", "versions", arr)) == NULL ||
	    (body = json_dumps(wrap, JSON_COMPACT)) == NULL)
		goto out;
	code = request("POST", sub, argv[first], NULL, body, &o);
	if (code == TSI_EXIT_OK)
		printf("Success! Data written to: secret/%s/%s\n", sub,
		    argv[first] +
		        (!o.mount && strncmp(argv[first], "secret/", 7) == 0
		                ? 7
		                : 0));
out:
	free(body);
	json_decref(wrap);
	json_decref(arr);
	return code;
}

/* tsi kv metadata put [flags] PATH: POST secret/metadata/PATH with the
 * settings given (the others keep their value, as the vault CLI). */
static int
cmd_metadata_put(int argc, char **argv)
{
	struct kv_opts o;
	json_t *req = NULL, *cm = NULL;
	char *body = NULL;
	size_t i;
	int first, code = TSI_EXIT_FAIL;

	if ((first = parse_flags("metadata put", argc, argv,
	         KVF_MOUNT | KVF_MAXV | KVF_CASREQ | KVF_DVA | KVF_CUSTOM,
	         &o)) < 0)
		return TSI_EXIT_USAGE;
	if (argc - first != 1) {
		kv_usage();
		return TSI_EXIT_USAGE;
	}
	if ((req = json_object()) == NULL)
		goto out;
	if (o.max_versions != NULL &&
	    json_object_set_new(req, "max_versions",
	        json_integer(strtoll(o.max_versions, NULL, 10))) != 0)
		goto out;
	if (o.cas_required >= 0 &&
	    json_object_set_new(req, "cas_required",
	        json_boolean(o.cas_required)) != 0)
		goto out;
	if (o.delete_after != NULL &&
	    json_object_set_new(req, "delete_version_after",
	        json_string(o.delete_after)) != 0)
		goto out;
	if (o.ncustom > 0) {
		if ((cm = json_object()) == NULL ||
		    json_object_set(req, "custom_metadata", cm) != 0)
			goto out;
		for (i = 0; i < o.ncustom; i++) {
			const char *eq = strchr(o.custom[i], '=');
			json_t *v = json_string(eq + 1);
			if (v == NULL ||
			    json_object_setn_new(cm, o.custom[i],
			        (size_t)(eq - o.custom[i]), v) != 0) {
				tsi_cli_err("kv metadata put: -custom-metadata "
				            "must be UTF-8: '%s'",
				    o.custom[i]);
				code = TSI_EXIT_USAGE;
				goto out;
			}
		}
	}
	if ((body = json_dumps(req, JSON_COMPACT)) == NULL)
		goto out;
	code = request("POST", "metadata", argv[first], NULL, body, &o);
	if (code == TSI_EXIT_OK)
		printf("Success! Data written to: secret/metadata/%s\n",
		    argv[first] +
		        (!o.mount && strncmp(argv[first], "secret/", 7) == 0
		                ? 7
		                : 0));
out:
	free(body);
	json_decref(cm);
	json_decref(req);
	return code;
}

/* tsi kv metadata get|put|delete PATH. */
static int
cmd_metadata(int argc, char **argv)
{
	struct kv_opts o;
	int first, code, del;

	if (argc >= 2 && strcmp(argv[1], "put") == 0)
		return cmd_metadata_put(argc - 1, argv + 1);
	if (argc < 2 ||
	    (strcmp(argv[1], "get") != 0 && strcmp(argv[1], "delete") != 0)) {
		tsi_cli_err("kv metadata: subcommand get, put or delete "
		            "expected");
		kv_usage();
		return TSI_EXIT_USAGE;
	}
	del = strcmp(argv[1], "delete") == 0;
	if ((first = parse_flags(del ? "metadata delete" : "metadata get",
	         argc - 1, argv + 1, del ? KVF_MOUNT : KVF_FORMAT | KVF_MOUNT,
	         &o)) < 0)
		return TSI_EXIT_USAGE;
	if (argc - 1 - first != 1) {
		kv_usage();
		return TSI_EXIT_USAGE;
	}
	code = request(del ? "DELETE" : "GET", "metadata", argv[1 + first],
	    NULL, NULL, &o);
	if (code == TSI_EXIT_OK && del)
		printf("Success! Data deleted (if it existed) at: "
		       "secret/metadata/%s\n",
		    argv[1 + first] +
		        (!o.mount && strncmp(argv[1 + first], "secret/", 7) == 0
		                ? 7
		                : 0));
	return code;
}

static int
kv_main(int argc, char **argv)
{
	const char *sub;
	struct kv_opts o;
	int first, code;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		kv_usage();
		return argc < 2 ? TSI_EXIT_USAGE : TSI_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "put") == 0 || strcmp(sub, "patch") == 0)
		return cmd_put(argc - 1, argv + 1);
	if (strcmp(sub, "get") == 0)
		return cmd_get(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0) {
		if ((first = parse_flags("list", argc - 1, argv + 1,
		         KVF_FORMAT | KVF_MOUNT, &o)) < 0)
			return TSI_EXIT_USAGE;
		if (argc - 1 - first > 1) {
			kv_usage();
			return TSI_EXIT_USAGE;
		}
		return request("LIST", "metadata",
		    argc - 1 == first ? "" : argv[1 + first], NULL, NULL, &o);
	}
	if (strcmp(sub, "delete") == 0) {
		if ((first = parse_flags("delete", argc - 1, argv + 1,
		         KVF_MOUNT, &o)) < 0)
			return TSI_EXIT_USAGE;
		if (argc - 1 - first != 1) {
			kv_usage();
			return TSI_EXIT_USAGE;
		}
		code =
		    request("DELETE", "data", argv[1 + first], NULL, NULL, &o);
		if (code == TSI_EXIT_OK)
			printf("Success! Data deleted (if it existed) at: "
			       "secret/%s\n",
			    argv[1 + first] +
			        (!o.mount &&
			                    strncmp(argv[1 + first], "secret/",
			                        7) == 0
			                ? 7
			                : 0));
		return code;
	}
	if (strcmp(sub, "undelete") == 0 || strcmp(sub, "destroy") == 0)
		return cmd_versions(sub, argc - 1, argv + 1);
	if (strcmp(sub, "metadata") == 0)
		return cmd_metadata(argc - 1, argv + 1);
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
