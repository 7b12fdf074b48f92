/*
 * tsi node: the tsi-attest inventory (docs/attestation.md).
 *
 *   tsi node register (--ek-cert PEM | --ek-sha256 HEX) --node N
 *       --cluster-name C --region R --datacenter D [--tag K=V]...
 *       [--pcr-policy NAME] [--ek-hash-trust]
 *   tsi node list [--format table|json|csv]
 *   tsi node show N
 *   tsi node revoke N --reason R
 *   tsi node trust N
 *   tsi node remove N
 *
 * TSI_ATTEST_ADDR (default https://127.0.0.1:8300), TSI_ATTEST_TOKEN (an
 * admin token, sent as a bearer token, never printed), TSI_ATTEST_CACERT
 * (CA file for TLS). The EK hash of --ek-cert is computed here as well, the
 * same way the server does, and the two must agree.
 */
#include "cli.h"

#include "tsi/attest.h"
#include "tsi/buf.h"
#include "tsi/err.h"
#include "tsi/file.h"
#include "tsi/x509.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_MAX_RESPONSE (16u << 20)
#define NODE_MAX_PEM (16u << 10)

static void
node_usage(void)
{
	fprintf(stderr,
	    "usage: tsi node register (--ek-cert PEM | --ek-sha256 HEX) --node "
	    "N\n"
	    "                 --cluster-name C --region R --datacenter D\n"
	    "                 [--tag K=V]... [--pcr-policy NAME] "
	    "[--ek-hash-trust]\n"
	    "       tsi node list [--format table|json|csv]\n"
	    "       tsi node show N\n"
	    "       tsi node revoke N --reason R\n"
	    "       tsi node trust N\n"
	    "       tsi node remove N\n\n"
	    "The inventory of tsi-attest: the location bound into a node's\n"
	    "certificate comes only from its entry, keyed by the SHA-256 of "
	    "its\n"
	    "EK public key. --ek-cert takes PEM or DER (as the TPM and\n"
	    "swtpm_setup --write-ek-cert-files hold it). --ek-hash-trust lets "
	    "a\n"
	    "TPM without an EK certificate (a vTPM) enroll on its EK hash "
	    "alone.\n\n"
	    "Environment: TSI_ATTEST_ADDR (default https://127.0.0.1:8300),\n"
	    "TSI_ATTEST_TOKEN (admin token, required), TSI_ATTEST_CACERT.\n");
}

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	return tsi_buf_put(arg, p, sz * n) == TSI_OK ? sz * n : 0;
}

/* One request to tsi-attest. *out: the JSON answer of a 2xx (caller
 * json_decref). Returns an exit code; errors are printed. */
static int
request(const char *method, const char *path, const json_t *body, json_t **out)
{
	const char *addr = getenv("TSI_ATTEST_ADDR");
	const char *token = getenv("TSI_ATTEST_TOKEN");
	const char *ca = getenv("TSI_ATTEST_CACERT");
	struct tsi_buf *url = tsi_buf_new(4096), *hdr = tsi_buf_new(512);
	struct tsi_buf *resp = tsi_buf_new(NODE_MAX_RESPONSE);
	struct curl_slist *h = NULL;
	char *text = NULL;
	CURL *c = NULL;
	CURLcode cc;
	long status = 0;
	json_t *j = NULL;
	size_t alen;
	int code = TSI_EXIT_FAIL;

	*out = NULL;
	if (url == NULL || hdr == NULL || resp == NULL)
		goto out;
	if (addr == NULL || *addr == '\0')
		addr = "https://127.0.0.1:8300";
	if (token == NULL || *token == '\0') {
		tsi_cli_err("node: TSI_ATTEST_TOKEN is not set");
		code = TSI_EXIT_USAGE;
		goto out;
	}
	alen = strlen(addr);
	while (alen > 0 && addr[alen - 1] == '/')
		alen--;
	if (tsi_buf_put(url, addr, alen) != TSI_OK ||
	    tsi_buf_puts(url, path) != TSI_OK ||
	    tsi_buf_putf(hdr, "Authorization: Bearer %s", token) != TSI_OK) {
		tsi_cli_err("node: address or token too long");
		code = TSI_EXIT_USAGE;
		goto out;
	}
	if ((c = curl_easy_init()) == NULL)
		goto out;
	h = curl_slist_append(h, tsi_buf_str(hdr));
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
		if ((text = json_dumps(body, JSON_COMPACT)) == NULL)
			goto out;
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		tsi_cli_err("node: %s: %s", addr, curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (tsi_buf_len(resp) > 0)
		j = json_loadb((const char *)tsi_buf_ptr(resp),
		    tsi_buf_len(resp), 0, NULL);
	if (status >= 200 && status < 300 && j != NULL) {
		*out = j;
		j = NULL;
		code = TSI_EXIT_OK;
		goto out;
	}
	{
		const char *e = json_string_value(
		    json_array_get(json_object_get(j, "errors"), 0));
		tsi_cli_err("node: HTTP %ld: %s", status,
		    e ? e : "request failed");
	}
out:
	json_decref(j);
	free(text);
	curl_slist_free_all(h);
	if (c != NULL)
		curl_easy_cleanup(c);
	tsi_buf_free(url);
	tsi_buf_free(hdr);
	tsi_buf_free(resp);
	return code;
}

/* The file's bytes, NUL-terminated, *len without the NUL. Caller frees. */
static char *
read_file(const char *path, size_t *len)
{
	char *out = NULL, err[512];

	if (tsi_file_read(path, NODE_MAX_PEM, 0, &out, len, err, sizeof(err)) !=
	    TSI_OK)
		tsi_cli_err("node: %s", err);
	return out;
}

/* An EK certificate file as PEM text (what POST /v1/nodes takes) and the
 * hash of its public key. TPMs keep EK certificates in DER (NV 0x01c00002)
 * and swtpm_setup --write-ek-cert-files writes DER, so DER is converted.
 * *pem: caller frees. TSI_ERR_PARSE when the file is neither. */
static int
ek_cert_load(const char *path, char **pem, char hash[65])
{
	STACK_OF(X509) *sk = NULL;
	X509 *der = NULL;
	BIO *mem = NULL;
	BUF_MEM *bm = NULL;
	const unsigned char *p;
	size_t len = 0;
	char *bytes = read_file(path, &len);
	int r = TSI_ERR_IO;

	*pem = NULL;
	if (bytes == NULL)
		goto out;
	r = TSI_ERR_PARSE;
	if (tsi_x509_load_chain_pem(bytes, len, &sk) == TSI_OK) {
		if (tsi_attest_key_sha256(X509_get0_pubkey(
		                              sk_X509_value(sk, 0)),
		        hash) != TSI_OK)
			goto out;
		*pem = bytes;
		bytes = NULL;
		r = TSI_OK;
		goto out;
	}
	p = (const unsigned char *)bytes;
	if (len > LONG_MAX || (der = d2i_X509(NULL, &p, (long)len)) == NULL ||
	    p != (const unsigned char *)bytes + len ||
	    tsi_attest_key_sha256(X509_get0_pubkey(der), hash) != TSI_OK)
		goto out;
	r = TSI_ERR_CRYPTO;
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(mem, der) != 1 ||
	    BIO_get_mem_ptr(mem, &bm) != 1 ||
	    (*pem = malloc(bm->length + 1)) == NULL)
		goto out;
	memcpy(*pem, bm->data, bm->length);
	(*pem)[bm->length] = '\0';
	r = TSI_OK;
out:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	X509_free(der);
	BIO_free(mem);
	free(bytes);
	return r;
}

static int
cmd_register(int argc, char **argv)
{
	static const struct option opts[] = { { "ek-cert", required_argument,
		                                  NULL, 'c' },
		{ "ek-sha256", required_argument, NULL, 'h' },
		{ "node", required_argument, NULL, 'n' },
		{ "cluster-name", required_argument, NULL, 'C' },
		{ "region", required_argument, NULL, 'r' },
		{ "datacenter", required_argument, NULL, 'd' },
		{ "tag", required_argument, NULL, 't' },
		{ "pcr-policy", required_argument, NULL, 'p' },
		{ "ek-hash-trust", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 } };
	const char *ekcert = NULL, *ekhash = NULL, *node = NULL, *cl = NULL;
	const char *region = NULL, *dc = NULL, *pol = NULL;
	json_t *body = NULL, *tags = json_object(), *ans = NULL;
	char *pem = NULL, local[65] = "";
	int o, trust = 0, code = TSI_EXIT_USAGE;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c': ekcert = optarg; break;
		case 'h': ekhash = optarg; break;
		case 'n': node = optarg; break;
		case 'C': cl = optarg; break;
		case 'r': region = optarg; break;
		case 'd': dc = optarg; break;
		case 'p': pol = optarg; break;
		case 'T': trust = 1; break;
		case 't': {
			const char *eq = strchr(optarg, '=');
			char k[TSI_LOCATION_MAX + 1];
			size_t kl = eq ? (size_t)(eq - optarg) : 0;

			if (eq == NULL || kl == 0 || kl > TSI_LOCATION_MAX) {
				tsi_cli_err("node register: --tag K=V");
				goto out;
			}
			memcpy(k, optarg, kl);
			k[kl] = '\0';
			if (!tsi_location_value_ok(k) ||
			    !tsi_location_value_ok(eq + 1)) {
				tsi_cli_err("node register: --tag %s: keys and "
				            "values are [A-Za-z0-9._-]",
				    optarg);
				goto out;
			}
			json_object_set_new(tags, k, json_string(eq + 1));
			break;
		}
		default: node_usage(); goto out;
		}
	}
	if (optind != argc || (ekcert == NULL) == (ekhash == NULL) ||
	    node == NULL || cl == NULL || region == NULL || dc == NULL) {
		tsi_cli_err(
		    "node register: one of --ek-cert and --ek-sha256, and "
		    "--node, --cluster-name, --region, --datacenter are "
		    "required");
		goto out;
	}
	if (!tsi_location_value_ok(node) || !tsi_location_value_ok(cl) ||
	    !tsi_location_value_ok(region) || !tsi_location_value_ok(dc)) {
		tsi_cli_err(
		    "node register: node, cluster-name, region and "
		    "datacenter are 1-128 characters of [A-Za-z0-9._-]");
		goto out;
	}
	if (ekhash != NULL &&
	    (strlen(ekhash) != 64 ||
	        strspn(ekhash, "0123456789abcdef") != 64)) {
		tsi_cli_err(
		    "node register: --ek-sha256: 64 lower-case hex digits");
		goto out;
	}
	body = json_pack("{sssssssssOsb}", "node", node, "cluster-name", cl,
	    "region", region, "datacenter", dc, "tags", tags, "ek_hash_trust",
	    trust);
	if (body == NULL) {
		code = TSI_EXIT_FAIL;
		goto out;
	}
	if (pol != NULL)
		json_object_set_new(body, "pcr_policy", json_string(pol));
	if (ekcert != NULL) {
		int er = ek_cert_load(ekcert, &pem, local);

		if (er == TSI_ERR_PARSE)
			tsi_cli_err("node register: %s: not a PEM or DER "
			            "certificate with a public key",
			    ekcert);
		if (er != TSI_OK) {
			code = TSI_EXIT_FAIL;
			goto out;
		}
		json_object_set_new(body, "ek_cert", json_string(pem));
	} else
		json_object_set_new(body, "ek_sha256", json_string(ekhash));
	if ((code = request("POST", "/v1/nodes", body, &ans)) != TSI_EXIT_OK)
		goto out;
	{
		const char *h = json_string_value(
		    json_object_get(json_object_get(ans, "data"), "ek_sha256"));
		if (h == NULL || (local[0] != '\0' && strcmp(h, local) != 0)) {
			tsi_cli_err("node register: the server's EK hash %s is "
			            "not "
			            "ours %s",
			    h ? h : "(none)", local);
			code = TSI_EXIT_FAIL;
			goto out;
		}
		printf("registered node %s (ek_sha256 %s)\n", node, h);
	}
out:
	free(pem);
	json_decref(body);
	json_decref(tags);
	json_decref(ans);
	return code;
}

static const char *
str_or(const json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : def;
}

static void
csv_field(const char *s, int last)
{
	const char *p;

	if (strpbrk(s, ",\"\n\r") == NULL)
		fputs(s, stdout);
	else {
		putchar('"');
		for (p = s; *p; p++) {
			if (*p == '"')
				putchar('"');
			putchar(*p);
		}
		putchar('"');
	}
	putchar(last ? '\n' : ',');
}

static void
tags_text(const json_t *tags, char *out, size_t len)
{
	const char *k;
	json_t *v;
	size_t off = 0;

	out[0] = '\0';
	json_object_foreach ((json_t *)tags, k, v) {
		int n =
		    snprintf(out + off, len - off, "%s%s=%s", off ? ";" : "", k,
		        json_string_value(v) ? json_string_value(v) : "");
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
}

static int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 }
	};
	const char *fmt = "table";
	json_t *ans = NULL, *n;
	size_t i;
	int o, code;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'f') {
			node_usage();
			return TSI_EXIT_USAGE;
		}
		fmt = optarg;
	}
	if (optind != argc ||
	    (strcmp(fmt, "table") != 0 && strcmp(fmt, "json") != 0 &&
	        strcmp(fmt, "csv") != 0)) {
		tsi_cli_err("node list: --format table|json|csv");
		return TSI_EXIT_USAGE;
	}
	if ((code = request("GET", "/v1/nodes", NULL, &ans)) != TSI_EXIT_OK)
		return code;
	if (strcmp(fmt, "json") == 0) {
		char *s = json_dumps(ans, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s != NULL)
			puts(s);
		free(s);
		json_decref(ans);
		return TSI_EXIT_OK;
	}
	if (strcmp(fmt, "csv") == 0)
		puts("node,cluster-name,region,datacenter,tags,state,reason,"
		     "last_quote,ek_sha256");
	else
		printf("%-16s %-14s %-10s %-10s %-9s %-16s %s\n", "NODE",
		    "CLUSTER", "REGION", "DC", "STATE", "EK", "REASON");
	json_array_foreach (json_object_get(json_object_get(ans, "data"),
	                        "nodes"),
	    i, n) {
		char tags[512], lq[32];
		const json_t *q = json_object_get(n, "last_quote");

		tags_text(json_object_get(n, "tags"), tags, sizeof(tags));
		if (json_is_integer(q))
			snprintf(lq, sizeof(lq), "%lld",
			    (long long)json_integer_value(q));
		else
			lq[0] = '\0';
		if (strcmp(fmt, "csv") == 0) {
			csv_field(str_or(n, "node", ""), 0);
			csv_field(str_or(n, "cluster-name", ""), 0);
			csv_field(str_or(n, "region", ""), 0);
			csv_field(str_or(n, "datacenter", ""), 0);
			csv_field(tags, 0);
			csv_field(str_or(n, "state", ""), 0);
			csv_field(str_or(n, "reason", ""), 0);
			csv_field(lq, 0);
			csv_field(str_or(n, "ek_sha256", ""), 1);
		} else
			printf("%-16s %-14s %-10s %-10s %-9s %.16s %s\n",
			    str_or(n, "node", "-"),
			    str_or(n, "cluster-name", "-"),
			    str_or(n, "region", "-"),
			    str_or(n, "datacenter", "-"),
			    str_or(n, "state", "-"),
			    str_or(n, "ek_sha256", "-"),
			    str_or(n, "reason", ""));
	}
	json_decref(ans);
	return TSI_EXIT_OK;
}

static int
node_path(const char *node, const char *suffix, char *out, size_t len)
{
	int n;

	if (!tsi_location_value_ok(node)) {
		tsi_cli_err("node: '%s' is not a node name", node);
		return TSI_EXIT_USAGE;
	}
	n = snprintf(out, len, "/v1/nodes/%s%s", node, suffix);
	return n < 0 || (size_t)n >= len ? TSI_EXIT_USAGE : TSI_EXIT_OK;
}

static int
cmd_show(int argc, char **argv)
{
	static const char *const keys[] = { "node", "cluster-name", "region",
		"datacenter", "state", "reason", "ek_sha256", "ek_hash_trust",
		"pcr_policy", "ak_name", "cert_serial", "cert_expires_at",
		"enrolled_at", "last_quote", "registered_at" };
	char path[256], tags[512];
	json_t *ans = NULL, *d, *quoted, *exp, *set;
	size_t i;
	int code, p, shown = 0;

	if (argc != 2) {
		node_usage();
		return TSI_EXIT_USAGE;
	}
	if ((code = node_path(argv[1], "", path, sizeof(path))) !=
	        TSI_EXIT_OK ||
	    (code = request("GET", path, NULL, &ans)) != TSI_EXIT_OK)
		return code;
	d = json_object_get(ans, "data");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(d, keys[i]);
		if (json_is_string(v))
			printf("%-16s %s\n", keys[i], json_string_value(v));
		else if (json_is_integer(v))
			printf("%-16s %lld\n", keys[i],
			    (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			printf("%-16s %s\n", keys[i],
			    json_is_true(v) ? "yes" : "no");
	}
	tags_text(json_object_get(d, "tags"), tags, sizeof(tags));
	printf("%-16s %s\n", "tags", tags);
	/* The quoted value next to the expected one, for each PCR a policy
	 * set names and the last quote did not match. */
	quoted = json_object_get(d, "quoted_pcrs");
	exp = json_object_get(d, "expected_pcrs");
	json_array_foreach (exp, i, set) {
		for (p = 0; p < 8; p++) {
			char idx[4];
			const char *want, *got;

			snprintf(idx, sizeof(idx), "%d", p);
			want = str_or(set, idx, NULL);
			got = str_or(quoted, idx, NULL);
			if (want == NULL || got == NULL ||
			    strcmp(want, got) == 0)
				continue;
			if (!shown++)
				printf("PCRs that differ from policy %s:\n",
				    str_or(d, "pcr_policy", "?"));
			printf("  pcr%d (set %zu)\n    quoted   %s\n    "
			       "expected %s\n",
			    p, i, got, want);
		}
	}
	if (quoted != NULL && !shown && json_array_size(exp) > 0)
		printf("PCRs: quoted values match policy %s\n",
		    str_or(d, "pcr_policy", "?"));
	json_decref(ans);
	return TSI_EXIT_OK;
}

static int
cmd_simple(const char *method, const char *suffix, int argc, char **argv,
    const char *verb)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' }, { NULL, 0, NULL, 0 }
	};
	const char *reason = NULL;
	char path[256];
	json_t *ans = NULL, *body = NULL;
	int o, code;

	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'r' || strcmp(verb, "revoked") != 0) {
			node_usage();
			return TSI_EXIT_USAGE;
		}
		reason = optarg;
	}
	if (optind != argc - 1 ||
	    (strcmp(verb, "revoked") == 0 &&
	        (reason == NULL || *reason == '\0'))) {
		tsi_cli_err(strcmp(verb, "revoked") == 0
		        ? "node revoke N --reason R"
		        : "node: a node name is required");
		return TSI_EXIT_USAGE;
	}
	if ((code = node_path(argv[optind], suffix, path, sizeof(path))) !=
	    TSI_EXIT_OK)
		return code;
	if (reason != NULL)
		body = json_pack("{ss}", "reason", reason);
	else if (strcmp(method, "POST") == 0)
		body = json_object();
	code = request(method, path, body, &ans);
	if (code == TSI_EXIT_OK)
		printf("node %s %s (state %s)\n", argv[optind], verb,
		    str_or(json_object_get(ans, "data"), "state", "?"));
	json_decref(body);
	json_decref(ans);
	return code;
}

static int
node_main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;
	int code;

	if (cmd == NULL || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		node_usage();
		return cmd == NULL ? TSI_EXIT_USAGE : TSI_EXIT_OK;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(cmd, "register") == 0)
		code = cmd_register(argc - 1, argv + 1);
	else if (strcmp(cmd, "list") == 0)
		code = cmd_list(argc - 1, argv + 1);
	else if (strcmp(cmd, "show") == 0)
		code = cmd_show(argc - 1, argv + 1);
	else if (strcmp(cmd, "revoke") == 0)
		code = cmd_simple("POST", "/revoke", argc - 1, argv + 1,
		    "revoked");
	else if (strcmp(cmd, "trust") == 0)
		code =
		    cmd_simple("POST", "/trust", argc - 1, argv + 1, "trusted");
	else if (strcmp(cmd, "remove") == 0)
		code = cmd_simple("DELETE", "", argc - 1, argv + 1, "removed");
	else {
		tsi_cli_err("node: unknown command '%s'", cmd);
		node_usage();
		code = TSI_EXIT_USAGE;
	}
	curl_global_cleanup();
	return code;
}

static const struct tsi_cli_group node_group = {
	"node",
	"the tsi-attest node inventory (register, list, show, revoke, "
	"trust, remove)",
	node_main,
	node_usage,
};
TSI_CLI_GROUP(node_group)
