/*
 * config.c - reads and checks the tsi-issuer configuration. Every refusal
 * names the file and line; unknown settings are errors.
 */
#include "issuer/config.h"
#include "issuer/api_mhd.h"

#include "tsi/config.h"
#include "tsi/err.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const allowed_keys[] = {
	"tcti",
	"state_dir",
	"node_cert",
	"socket",
	"socket_mode",
	"socket_group",
	"signing",
	"resolver",
	"trust_domain",
	"token_ttl",
	"session_ttl",
	"proc_root",
	"kubelet_url",
	"kubelet_token_file",
	"kubelet_ca_file",
	"kubelet_cache_ms",
	"sidecar_images",
	"node_name",
	"max_clients",
	"log_level",
	"max_exe_size",
	"attest_url",
	"attest_ca",
	"node_ca",
	"renew_percent",
	"privsep",
	"front_user",
	"front_seccomp",
	NULL,
};

/* "file:line: " prefix for a setting (line 0 when absent). */
#define AT(c, k) tsi_config_file(c), tsi_config_line(c, k)

int
tsi_issuer_is_digest(const char *s)
{
	size_t i;

	if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71)
		return 0;
	for (i = 7; i < 71; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		        (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* The host of an http(s) URL, into host (hostlen bytes): [v6] brackets
 * removed. 0 when there is none. */
static int
url_host(const char *url, char *host, size_t hostlen)
{
	const char *p = strstr(url, "://"), *end;
	size_t n;

	if (p == NULL)
		return 0;
	p += 3;
	if (memchr(p, '@', strcspn(p, "/?#")) != NULL)
		return 0; /* no credentials in the URL */
	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return 0;
		p++;
	} else
		end = p + strcspn(p, ":/?#");
	n = (size_t)(end - p);
	if (n == 0 || n >= hostlen)
		return 0;
	memcpy(host, p, n);
	host[n] = '\0';
	return 1;
}

int
tsi_issuer_attest_url_ok(const char *url)
{
	struct in_addr a4;
	struct in6_addr a6;
	char host[256];

	if (url == NULL || !url_host(url, host, sizeof(host)))
		return 0;
	if (strncmp(url, "https://", 8) == 0)
		return 1;
	if (strncmp(url, "http://", 7) != 0)
		return 0;
	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

static int
dup_str(const struct tsi_config *c, const char *key, const char *def,
    int required, char **out, char *err, size_t errlen)
{
	const char *v;
	int r;

	if ((r = tsi_config_str(c, key, def, &v, err, errlen)) != TSI_OK)
		return r;
	if (v == NULL) {
		if (required) {
			tsi_errf(err, errlen, "%s: '%s' is required",
			    tsi_config_file(c), key);
			return TSI_ERR_CONFIG;
		}
		*out = NULL;
		return TSI_OK;
	}
	if (v[0] == '\0') {
		tsi_errf(err, errlen, "%s:%d: '%s' must not be empty",
		    AT(c, key), key);
		return TSI_ERR_CONFIG;
	}
	if ((*out = strdup(v)) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

static int
get_int(const struct tsi_config *c, const char *key, long long def,
    long long min, long long max, int *out, char *err, size_t errlen)
{
	long long v;
	int r;

	if ((r = tsi_config_int(c, key, def, min, max, &v, err, errlen)) !=
	    TSI_OK)
		return r;
	*out = (int)v;
	return TSI_OK;
}

/* SPIFFE trust domain: lower-case letters, digits, '.', '-', '_'. */
static int
valid_trust_domain(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		        ch == '.' || ch == '-' || ch == '_'))
			return 0;
	}
	return 1;
}

/* "root", uid 0 or gid 0 written as numbers ("0", "00", "1000:0"). */
static int
names_root(const char *s)
{
	const char *colon = strchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);

	if (strcmp(s, "root") == 0)
		return 1;
	if (n > 0 && strspn(s, "0") >= n)
		return 1;
	return colon != NULL && colon[1] != '\0' &&
	    strspn(colon + 1, "0") == strlen(colon + 1);
}

/* The front end's user is looked up when it starts (the node's password
 * database, not this file's); what can be refused here is refused here. */
static int
check_front(struct tsi_config *c, struct tsi_issuer_config *ic, char *err,
    size_t errlen)
{
	const char *s;
	int r;

	if ((r = dup_str(c, "front_user", "nobody", 0, &ic->front_user, err,
	         errlen)) != TSI_OK)
		return r;
	if (names_root(ic->front_user)) {
		tsi_errf(err, errlen,
		    "%s:%d: 'front_user' must not be root: the "
		    "front end parses what workloads send",
		    AT(c, "front_user"));
		return TSI_ERR_CONFIG;
	}
	if ((r = tsi_config_str(c, "front_seccomp", "kill", &s, err, errlen)) !=
	    TSI_OK)
		return r;
	if (strcmp(s, "kill") == 0)
		ic->front_seccomp_log = 0;
	else if (strcmp(s, "log") == 0)
		ic->front_seccomp_log = 1;
	else {
		tsi_errf(err, errlen,
		    "%s:%d: 'front_seccomp' must be \"kill\" or "
		    "\"log\"",
		    AT(c, "front_seccomp"));
		return TSI_ERR_CONFIG;
	}
	return TSI_OK;
}

static int
check(struct tsi_config *c, struct tsi_issuer_config *ic, char *err,
    size_t errlen)
{
	const char *s, **list = NULL;
	char *end;
	size_t i, n = 0;
	unsigned long mode;
	int r;

	if ((r = tsi_config_check_keys(c, allowed_keys, err, errlen)) != TSI_OK)
		return r;
	if ((r = dup_str(c, "tcti", "device:/dev/tpmrm0", 0, &ic->tcti, err,
	         errlen)) != TSI_OK ||
	    (r = dup_str(c, "state_dir", "/var/lib/tsi-issuer", 0,
	         &ic->state_dir, err, errlen)) != TSI_OK ||
	    (r = dup_str(c, "socket", "/run/tsi/issuer.sock", 0, &ic->socket,
	         err, errlen)) != TSI_OK ||
	    (r = dup_str(c, "socket_group", NULL, 0, &ic->socket_group, err,
	         errlen)) != TSI_OK ||
	    (r = dup_str(c, "trust_domain", NULL, 1, &ic->trust_domain, err,
	         errlen)) != TSI_OK ||
	    (r = dup_str(c, "proc_root", "/proc", 0, &ic->proc_root, err,
	         errlen)) != TSI_OK ||
	    (r = dup_str(c, "kubelet_url", "https://127.0.0.1:10250", 0,
	         &ic->kubelet_url, err, errlen)) != TSI_OK ||
	    (r = dup_str(c, "kubelet_token_file",
	         "/var/run/secrets/kubernetes.io/serviceaccount/token", 0,
	         &ic->kubelet_token_file, err, errlen)) != TSI_OK ||
	    (r = dup_str(c, "kubelet_ca_file",
	         "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", 0,
	         &ic->kubelet_ca_file, err, errlen)) != TSI_OK ||
	    (r = dup_str(c, "node_name", NULL, 0, &ic->node_name, err,
	         errlen)) != TSI_OK ||
	    (r = dup_str(c, "log_level", NULL, 0, &ic->log_level, err,
	         errlen)) != TSI_OK)
		return r;
	if (tsi_config_line(c, "node_cert") == 0) {
		size_t len = strlen(ic->state_dir) + sizeof("/node.pem");
		if ((ic->node_cert = malloc(len)) == NULL)
			return TSI_ERR_ALLOC;
		(void)snprintf(ic->node_cert, len, "%s/node.pem",
		    ic->state_dir);
	} else if ((r = dup_str(c, "node_cert", NULL, 1, &ic->node_cert, err,
	                errlen)) != TSI_OK)
		return r;
	if ((r = dup_str(c, "attest_url", NULL, 0, &ic->attest_url, err,
	         errlen)) != TSI_OK ||
	    (r = dup_str(c, "attest_ca", NULL, 0, &ic->attest_ca, err,
	         errlen)) != TSI_OK)
		return r;
	if (ic->attest_url != NULL &&
	    !tsi_issuer_attest_url_ok(ic->attest_url)) {
		tsi_errf(err, errlen,
		    "%s:%d: 'attest_url' must be https://HOST[:PORT] "
		    "(plain http only to a loopback address)",
		    AT(c, "attest_url"));
		return TSI_ERR_CONFIG;
	}
	if (ic->attest_url != NULL && ic->attest_ca == NULL &&
	    strncmp(ic->attest_url, "https://", 8) == 0) {
		tsi_errf(err, errlen,
		    "%s:%d: 'attest_ca' is required with an "
		    "https 'attest_url' (the CA that verifies tsi-attest)",
		    AT(c, "attest_url"));
		return TSI_ERR_CONFIG;
	}
	if (tsi_config_line(c, "node_ca") == 0) {
		/* Next to the node certificate. */
		const char *slash = strrchr(ic->node_cert, '/');
		size_t dir =
		    slash != NULL ? (size_t)(slash - ic->node_cert) + 1 : 0;
		size_t len = dir + sizeof("node-ca.pem");
		if ((ic->node_ca = malloc(len)) == NULL)
			return TSI_ERR_ALLOC;
		(void)snprintf(ic->node_ca, len, "%.*snode-ca.pem", (int)dir,
		    ic->node_cert);
	} else if ((r = dup_str(c, "node_ca", NULL, 1, &ic->node_ca, err,
	                errlen)) != TSI_OK)
		return r;
	if (strcmp(ic->node_ca, ic->node_cert) == 0) {
		tsi_errf(err, errlen,
		    "%s:%d: 'node_ca' must not be the node_cert "
		    "file",
		    AT(c, "node_ca"));
		return TSI_ERR_CONFIG;
	}
	if ((r = get_int(c, "renew_percent", 20, 1, 90, &ic->renew_percent, err,
	         errlen)) != TSI_OK)
		return r;
	if ((r = check_front(c, ic, err, errlen)) != TSI_OK)
		return r;
	if (!valid_trust_domain(ic->trust_domain)) {
		tsi_errf(err, errlen,
		    "%s:%d: 'trust_domain' must be lower-case "
		    "letters, digits, '.', '-' or '_'",
		    AT(c, "trust_domain"));
		return TSI_ERR_CONFIG;
	}
	if (ic->log_level != NULL && strcmp(ic->log_level, "debug") != 0 &&
	    strcmp(ic->log_level, "info") != 0 &&
	    strcmp(ic->log_level, "warn") != 0 &&
	    strcmp(ic->log_level, "error") != 0) {
		tsi_errf(err, errlen,
		    "%s:%d: 'log_level' must be debug, info, "
		    "warn or error",
		    AT(c, "log_level"));
		return TSI_ERR_CONFIG;
	}
	if (strncmp(ic->kubelet_url, "https://", 8) != 0) {
		tsi_errf(err, errlen,
		    "%s:%d: 'kubelet_url' must start with "
		    "https://",
		    AT(c, "kubelet_url"));
		return TSI_ERR_CONFIG;
	}

	if ((r = tsi_config_str(c, "signing", "delegated", &s, err, errlen)) !=
	    TSI_OK)
		return r;
	if (strcmp(s, "delegated") == 0)
		ic->signing = TSI_SIGNING_DELEGATED;
	else if (strcmp(s, "tpm") == 0)
		ic->signing = TSI_SIGNING_TPM;
	else {
		tsi_errf(err, errlen,
		    "%s:%d: 'signing' must be \"delegated\" or "
		    "\"tpm\"",
		    AT(c, "signing"));
		return TSI_ERR_CONFIG;
	}
	if ((r = tsi_config_str(c, "resolver", "kubelet", &s, err, errlen)) !=
	    TSI_OK)
		return r;
	if (strcmp(s, "kubelet") == 0)
		ic->resolver = TSI_RESOLVER_KUBELET;
	else if (strcmp(s, "unix") == 0)
		ic->resolver = TSI_RESOLVER_UNIX;
	else {
		tsi_errf(err, errlen,
		    "%s:%d: 'resolver' must be \"kubelet\" or "
		    "\"unix\"",
		    AT(c, "resolver"));
		return TSI_ERR_CONFIG;
	}

	/* socket_mode is a string so that it can be written in octal. */
	if ((r = tsi_config_str(c, "socket_mode", "0666", &s, err, errlen)) !=
	    TSI_OK)
		return r;
	mode = strtoul(s, &end, 8);
	if (s[0] == '\0' || *end != '\0' || mode > 0777) {
		tsi_errf(err, errlen,
		    "%s:%d: 'socket_mode' must be octal such as "
		    "\"0660\"",
		    AT(c, "socket_mode"));
		return TSI_ERR_CONFIG;
	}
	ic->socket_mode = (mode_t)mode;

	if ((r = get_int(c, "token_ttl", 300, 1, TSI_TOKEN_TTL_MAX,
	         &ic->token_ttl, err, errlen)) != TSI_OK ||
	    (r = get_int(c, "session_ttl", 3600, 120, 7 * 24 * 3600,
	         &ic->session_ttl, err, errlen)) != TSI_OK ||
	    (r = get_int(c, "kubelet_cache_ms", 2000, 0, 600000,
	         &ic->kubelet_cache_ms, err, errlen)) != TSI_OK ||
	    (r = get_int(c, "max_clients", TSI_ISSUER_MAX_CLIENTS_DEFAULT, 1,
	         10000, &ic->max_clients, err, errlen)) != TSI_OK ||
	    (r = tsi_config_int(c, "max_exe_size",
	         TSI_ISSUER_MAX_EXE_SIZE_DEFAULT, 1024LL * 1024,
	         64LL * 1024 * 1024 * 1024, &ic->max_exe_size, err, errlen)) !=
	        TSI_OK ||
	    (r = tsi_config_bool(c, "privsep", 1, &ic->privsep, err, errlen)) !=
	        TSI_OK)
		return r;
	/* A session certificate is replaced at half life and a token must
	 * not outlive the certificate that signed it. */
	if (ic->signing == TSI_SIGNING_DELEGATED &&
	    ic->session_ttl < 2 * ic->token_ttl + 120) {
		tsi_errf(err, errlen,
		    "%s:%d: 'session_ttl' must be at least "
		    "2 * token_ttl + 120 (%d)",
		    AT(c, "session_ttl"), 2 * ic->token_ttl + 120);
		return TSI_ERR_CONFIG;
	}

	if ((r = tsi_config_strlist(c, "sidecar_images", &list, &n, err,
	         errlen)) != TSI_OK)
		return r;
	if (n > TSI_ISSUER_SIDECARS_MAX) {
		tsi_errf(err, errlen,
		    "%s:%d: 'sidecar_images' has more than %d "
		    "entries",
		    AT(c, "sidecar_images"), TSI_ISSUER_SIDECARS_MAX);
		r = TSI_ERR_CONFIG;
		goto out;
	}
	if (n > 0 && (ic->sidecar_images = calloc(n, sizeof(char *))) == NULL) {
		r = TSI_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!tsi_issuer_is_digest(list[i])) {
			tsi_errf(err, errlen,
			    "%s:%d: 'sidecar_images' entries must "
			    "be sha256:<64 lower-case hex>, not '%s'",
			    AT(c, "sidecar_images"), list[i]);
			r = TSI_ERR_CONFIG;
			goto out;
		}
		if ((ic->sidecar_images[i] = strdup(list[i])) == NULL) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		ic->n_sidecar_images = i + 1;
	}
	r = TSI_OK;
out:
	free(list);
	return r;
}

static int
finish(struct tsi_config *c, int r, struct tsi_issuer_config **out, char *err,
    size_t errlen)
{
	struct tsi_issuer_config *ic = NULL;

	if (r != TSI_OK)
		return r;
	if ((ic = calloc(1, sizeof(*ic))) == NULL) {
		tsi_config_free(c);
		return TSI_ERR_ALLOC;
	}
	r = check(c, ic, err, errlen);
	tsi_config_free(c);
	if (r != TSI_OK) {
		tsi_issuer_config_free(ic);
		return r;
	}
	*out = ic;
	return TSI_OK;
}

int
tsi_issuer_config_load(const char *path, struct tsi_issuer_config **out,
    char *err, size_t errlen)
{
	struct tsi_config *c = NULL;
	int r;

	if ((r = tsi_config_load(path, &c, err, errlen)) != TSI_OK)
		return r;
	return finish(c, TSI_OK, out, err, errlen);
}

int
tsi_issuer_config_load_string(const char *name, const char *text,
    struct tsi_issuer_config **out, char *err, size_t errlen)
{
	struct tsi_config *c = NULL;
	int r;

	if ((r = tsi_config_load_string(name, text, &c, err, errlen)) != TSI_OK)
		return r;
	return finish(c, TSI_OK, out, err, errlen);
}

void
tsi_issuer_config_free(struct tsi_issuer_config *ic)
{
	size_t i;

	if (ic == NULL)
		return;
	free(ic->tcti);
	free(ic->state_dir);
	free(ic->node_cert);
	free(ic->socket);
	free(ic->socket_group);
	free(ic->trust_domain);
	free(ic->proc_root);
	free(ic->kubelet_url);
	free(ic->kubelet_token_file);
	free(ic->kubelet_ca_file);
	for (i = 0; i < ic->n_sidecar_images; i++)
		free(ic->sidecar_images[i]);
	free(ic->sidecar_images);
	free(ic->node_name);
	free(ic->log_level);
	free(ic->attest_url);
	free(ic->attest_ca);
	free(ic->node_ca);
	free(ic->front_user);
	free(ic);
}
