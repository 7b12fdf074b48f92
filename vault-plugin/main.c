/*
 * tsi-vault: the secret server. Arguments, the config file, start-up, and
 * the signal loop (SIGHUP reloads policies, trusted CAs, the revocation
 * list and the TLS certificate; SIGINT/SIGTERM stop after in-flight
 * requests).
 */
#include "vault.h"
#include "settings.h"
#include "crypto.h"
#include "login_limit.h"
#include "metrics.h"
#include "policies.h"
#include "server.h"
#include "routes.h"
#include "tokens.h"
#include "store.h"
#include "mounts.h"
#include "sinks.h"

#include "tsi/audit.h"
#include "tsi/buf.h"
#include "tsi/config.h"
#include "tsi/err.h"
#include "tsi/file.h"
#include "tsi/log.h"
#include "tsi/net.h"
#include "tsi/tls.h"
#include "tsi/wipe.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define ERRLEN 512

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tsi-vault --config FILE\n"
	    "       tsi-vault --dev [--dev-root-token-id T] [--dev-listen "
	    "ADDR]\n"
	    "                 [--policy-dir D] [--trust-ca PEM]...\n"
	    "       tsi-vault --help | --version\n\n"
	    "The Vault-compatible secret server of tsi: location policies, KV "
	    "v2,\n"
	    "audit log. See docs/vault.md for every setting.\n\n"
	    "  --config FILE           libconfig file (listen, tls_cert, "
	    "tls_key, ...)\n"
	    "  --dev                   plain HTTP on loopback, temporary data, "
	    "root token printed\n"
	    "  --dev-root-token-id T   the root token in dev mode (default: "
	    "random)\n"
	    "  --dev-listen ADDR       loopback address:port (default "
	    "127.0.0.1:8200)\n"
	    "  --policy-dir D          policy directory (overrides "
	    "policy_dir)\n"
	    "  --trust-ca PEM          trusted CA file, repeatable (overrides "
	    "trust_ca)\n"
	    "  --threads N             HTTP threads (overrides threads)\n"
	    "  --workers N             request workers (overrides workers)\n"
	    "\nSignals: SIGHUP reloads policies, CAs, the revocation list and\n"
	    "the TLS certificate and key;\n"
	    "SIGTERM/SIGINT stop. Exit: 0 ok, 1 runtime failure, 2 bad "
	    "usage/config.\n");
}

static char *
xstrdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL) {
		fputs("tsi-vault: out of memory\n", stderr);
		exit(1);
	}
	return d;
}

void
vault_settings_clear(struct vault_settings *s)
{
	size_t i;

	free(s->listen);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->data_dir);
	free(s->policy_dir);
	for (i = 0; i < s->n_trust_ca; i++)
		free(s->trust_ca[i]);
	free(s->trust_ca);
	free(s->audience);
	free(s->kv_key_file);
	free(s->kv_url);
	free(s->root_token_file);
	tsi_strfree(s->dev_root_token);
	free(s->revocation_file);
	free(s->cluster_name);
	free(s->audit_head_key);
	vault_sinks_cfg_free(s->audit_sinks);
	memset(s, 0, sizeof(*s));
}

static void
defaults(struct vault_settings *s)
{
	s->max_body = 1024 * 1024;
	s->threads = 4;
	s->workers = 64;
	s->conn_limit = 1024;
	s->per_ip_limit = 64;
	s->conn_timeout = 30;
	s->request_timeout = 10;
	s->max_tokens = 1000000;
	s->kv_map_size = (size_t)1 << 30;
	s->kv_max_versions = 10;
	s->audit_map_size = (size_t)1 << 30;
	s->audit_commit_timeout_ms = 2000;
	s->audit_batch_max = 256;
	s->audit_commit_delay_us = 200;
	s->login_fail_limit = 50;
	s->login_fail_window = 10;
	s->audit_reserve_bytes = -1;
	s->audit_keep_allow_s = 86400;
}

static const char *const config_keys[] = { "listen", "tls_cert", "tls_key",
	"data_dir", "policy_dir", "trust_ca", "audience", "kv_key_file",
	"root_token_file", "revocation_file", "cluster_name", "max_body",
	"threads", "workers", "connection_limit", "per_ip_connection_limit",
	"connection_timeout", "request_timeout", "max_tokens", "kv_url",
	"kv_map_size", "kv_max_versions", "audit_map_size", "audit_map_max",
	"audit_commit_timeout_ms", "audit_batch_max", "audit_commit_delay_us",
	"audit_retention_seconds", "audit_retention_bytes", "audit_head_key",
	"audit_head_interval", "login_failure_limit", "login_failure_window",
	"audit_reserve_bytes", "audit_release_min_age", "audit_sinks", NULL };

/* A readable file named by a setting, or "file:line: key: reason". */
static int
check_file(const struct tsi_config *c, const char *key, const char *path,
    char *err, size_t errlen)
{
	if (path == NULL || access(path, R_OK) == 0)
		return TSI_OK;
	snprintf(err, errlen, "%s:%d: %s: cannot read '%s': %s",
	    tsi_config_file(c), tsi_config_line(c, key), key, path,
	    strerror(errno));
	return TSI_ERR_CONFIG;
}

#define STR(key, field, def) \
	do { \
		if ((r = tsi_config_str(c, key, def, &str, err, errlen)) != \
		    TSI_OK) \
			return r; \
		free(s->field); \
		s->field = xstrdup(str); \
	} while (0)
#define INT(key, field, min, max) \
	do { \
		if ((r = tsi_config_int(c, key, (long long)s->field, min, max, \
		         &n, err, errlen)) != TSI_OK) \
			return r; \
		s->field = n; \
	} while (0)

static int
read_strings(const struct tsi_config *c, struct vault_settings *s, char *err,
    size_t errlen)
{
	const char *str;
	int r;

	STR("listen", listen, "127.0.0.1:8200");
	STR("tls_cert", tls_cert, NULL);
	STR("tls_key", tls_key, NULL);
	STR("data_dir", data_dir, NULL);
	STR("policy_dir", policy_dir, NULL);
	STR("audience", audience, TSI_JWT_DEFAULT_AUD);
	STR("kv_key_file", kv_key_file, NULL);
	STR("kv_url", kv_url, NULL);
	STR("root_token_file", root_token_file, NULL);
	STR("revocation_file", revocation_file, NULL);
	STR("cluster_name", cluster_name, "tsi-vault");
	STR("audit_head_key", audit_head_key, NULL);
	return TSI_OK;
}

static int
read_numbers(const struct tsi_config *c, struct vault_settings *s, char *err,
    size_t errlen)
{
	long long n;
	int r;

	INT("max_body", max_body, 1024, 64LL << 20);
	INT("threads", threads, 1, 256);
	INT("workers", workers, 1, 1024);
	INT("connection_limit", conn_limit, 1, 65536);
	INT("per_ip_connection_limit", per_ip_limit, 1, 65536);
	INT("connection_timeout", conn_timeout, 1, 3600);
	INT("request_timeout", request_timeout, 1, 3600);
	INT("max_tokens", max_tokens, 16, 100000000);
	INT("kv_map_size", kv_map_size, 1LL << 20, 1LL << 40);
	INT("kv_max_versions", kv_max_versions, 1, 1000);
	INT("audit_map_size", audit_map_size, 1LL << 16, 1LL << 40);
	INT("audit_map_max", audit_map_max, 0, 1LL << 40);
	INT("audit_commit_timeout_ms", audit_commit_timeout_ms, 10, 60000);
	INT("audit_batch_max", audit_batch_max, 1, 65536);
	INT("audit_commit_delay_us", audit_commit_delay_us, 0, 100000);
	INT("audit_retention_seconds", audit_retain_seconds, 0, 1LL << 40);
	INT("audit_retention_bytes", audit_retain_bytes, 0, 1LL << 40);
	INT("audit_head_interval", audit_head_interval, 0, 86400);
	INT("login_failure_limit", login_fail_limit, 0, 1000000);
	INT("login_failure_window", login_fail_window, 1, 86400);
	INT("audit_reserve_bytes", audit_reserve_bytes, -1, 1LL << 40);
	INT("audit_release_min_age", audit_keep_allow_s, 0, 1LL << 40);
	return TSI_OK;
}
#undef STR
#undef INT

static int
read_trust_ca(const struct tsi_config *c, struct vault_settings *s, char *err,
    size_t errlen)
{
	const char **list = NULL;
	size_t i, nl;
	int r;

	if ((r = tsi_config_strlist(c, "trust_ca", &list, &nl, err, errlen)) !=
	    TSI_OK)
		return r;
	if (nl > 0) {
		if ((s->trust_ca = calloc(nl, sizeof(char *))) == NULL) {
			free(list);
			return TSI_ERR_ALLOC;
		}
		for (i = 0; i < nl; i++)
			s->trust_ca[i] = xstrdup(list[i]);
		s->n_trust_ca = nl;
	}
	free(list);
	return TSI_OK;
}

/* What the settings need together: TLS and the data directory outside
 * --dev, every named file readable, an address that parses. */
static int
check_settings(const struct tsi_config *c, const struct vault_settings *s,
    char *err, size_t errlen)
{
	size_t i;

	if (s->tls_cert == NULL || s->tls_key == NULL) {
		snprintf(err, errlen,
		    "%s:%d: tls_cert and tls_key are required "
		    "(TLS is always on outside --dev)",
		    tsi_config_file(c),
		    tsi_config_line(c, s->tls_cert ? "tls_cert" : "tls_key"));
		return TSI_ERR_CONFIG;
	}
	if (s->data_dir == NULL || s->kv_key_file == NULL) {
		snprintf(err, errlen,
		    "%s:%d: data_dir and kv_key_file are required",
		    tsi_config_file(c),
		    tsi_config_line(c,
		        s->data_dir ? "data_dir" : "kv_key_file"));
		return TSI_ERR_CONFIG;
	}
	if (s->kv_url != NULL && !kv_store_url_ok(s->kv_url)) {
		snprintf(err, errlen, "%s:%d: kv_url: expected lmdb:///DIR",
		    tsi_config_file(c), tsi_config_line(c, "kv_url"));
		return TSI_ERR_CONFIG;
	}
	if (check_file(c, "tls_cert", s->tls_cert, err, errlen) != TSI_OK ||
	    check_file(c, "tls_key", s->tls_key, err, errlen) != TSI_OK ||
	    check_file(c, "kv_key_file", s->kv_key_file, err, errlen) !=
	        TSI_OK ||
	    check_file(c, "revocation_file", s->revocation_file, err, errlen) !=
	        TSI_OK ||
	    check_file(c, "audit_head_key", s->audit_head_key, err, errlen) !=
	        TSI_OK)
		return TSI_ERR_CONFIG;
	for (i = 0; i < s->n_trust_ca; i++)
		if (check_file(c, "trust_ca", s->trust_ca[i], err, errlen) !=
		    TSI_OK)
			return TSI_ERR_CONFIG;
	if (tsi_net_listen_is_loopback(s->listen) < 0) {
		snprintf(err, errlen,
		    "%s:%d: listen: expected ADDRESS:PORT "
		    "(IPv4, or [IPv6]:PORT)",
		    tsi_config_file(c), tsi_config_line(c, "listen"));
		return TSI_ERR_CONFIG;
	}
	return TSI_OK;
}

static int
load_config(const char *path, struct vault_settings *s, char *err,
    size_t errlen)
{
	struct tsi_config *c = NULL;
	int r;

	if ((r = tsi_config_load(path, &c, err, errlen)) != TSI_OK)
		return TSI_ERR_CONFIG;
	if ((r = tsi_config_check_keys(c, config_keys, err, errlen)) !=
	        TSI_OK ||
	    (r = read_strings(c, s, err, errlen)) != TSI_OK ||
	    (r = read_numbers(c, s, err, errlen)) != TSI_OK ||
	    (r = read_trust_ca(c, s, err, errlen)) != TSI_OK)
		goto out;
	vault_sinks_cfg_free(s->audit_sinks);
	s->audit_sinks = NULL;
	if ((r = vault_sinks_parse(c, &s->audit_sinks, err, errlen)) != TSI_OK)
		goto out;
	r = check_settings(c, s, err, errlen);
out:
	tsi_config_free(c);
	return r;
}

/* The revocation list: one serial or fingerprint a line, '#' comments. */
static int
read_revocations(struct tsi_trust *t, const char *path, char *err,
    size_t errlen)
{
	char line[256];
	int lineno = 0, r = TSI_OK;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return TSI_ERR_IO;
	}
	while (r == TSI_OK && fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *e;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path,
			    lineno);
			r = TSI_ERR_CONFIG;
			break;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strcspn(p, "#\r\n");
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*e = '\0';
		if (*p != '\0' && (r = tsi_trust_revoke(t, p)) != TSI_OK)
			snprintf(err, errlen,
			    "%s:%d: not a serial or "
			    "fingerprint: %s",
			    path, lineno, tsi_strerror(r));
	}
	fclose(f);
	return r;
}

/* Builds a trust store from the CA files and the revocation list. */
static int
trust_build(const struct vault_settings *s, struct vault_trust **out, char *err,
    size_t errlen)
{
	struct vault_trust *vt = NULL;
	size_t i;
	int r;

	*out = NULL;
	if (s->n_trust_ca == 0)
		return TSI_OK;
	if ((vt = calloc(1, sizeof(*vt))) == NULL)
		return TSI_ERR_ALLOC;
	vt->refs = 1;
	if ((r = tsi_trust_new(&vt->trust)) != TSI_OK)
		goto out;
	for (i = 0; i < s->n_trust_ca; i++)
		if ((r = tsi_trust_add_ca_file(vt->trust, s->trust_ca[i])) !=
		    TSI_OK) {
			snprintf(err, errlen, "trust_ca: %s: %s",
			    s->trust_ca[i], tsi_strerror(r));
			goto out;
		}
	if (s->revocation_file != NULL &&
	    (r = read_revocations(vt->trust, s->revocation_file, err,
	         errlen)) != TSI_OK)
		goto out;
	*out = vt;
	vt = NULL;
	r = TSI_OK;
out:
	if (vt != NULL) {
		tsi_trust_free(vt->trust);
		free(vt);
	}
	return r;
}

/* SIGHUP: build the new sets first; swap only what loaded cleanly. */
static void
reload(struct vault *v)
{
	struct tsi_policy_set *np = NULL, *op = NULL;
	struct vault_trust *nt = NULL, *ot = NULL;
	char err[ERRLEN] = "";
	size_t ended = 0;
	int ok = 1;

	if (!vault_policy_prepare(v, &np))
		ok = 0;
	if (trust_build(v->set, &nt, err, sizeof(err)) != TSI_OK) {
		tsi_log(TSI_LOG_ERROR, "reload.trust_failed",
		    TSI_LS("error", err),
		    TSI_LS("kept", "previous CAs and revocations"));
		nt = NULL;
		ok = 0;
	} else if (nt == NULL)
		ok = ok && v->set->n_trust_ca == 0;
	pthread_mutex_lock(&v->mu);
	if (np != NULL) {
		op = v->policy;
		v->policy = np;
	}
	if (nt != NULL) {
		ot = v->trust;
		v->trust = nt;
	}
	pthread_mutex_unlock(&v->mu);
	tsi_policy_unref(op);
	if (np != NULL)
		vault_policy_keep(v, 1);
	vault_trust_put(v, ot);
	/* Live client tokens end with the trust they came through, at once,
	 * not when their JWT would have expired (tokens.c). */
	if (nt != NULL)
		ended = vault_tokens_end_untrusted(v->tokens, nt->trust);
	if (ok)
		__atomic_fetch_add(&v->metrics.reloads_ok, 1, __ATOMIC_RELAXED);
	else
		__atomic_fetch_add(&v->metrics.reloads_failed, 1,
		    __ATOMIC_RELAXED);
	tsi_log(ok ? TSI_LOG_INFO : TSI_LOG_WARN, "reload.done",
	    TSI_LS("result", ok ? "ok" : "partial"),
	    TSI_LS("policy_dir", v->set->policy_dir),
	    TSI_LI("tokens_ended", (long long)ended));
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
mkdir_p(const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return TSI_ERR_IO;
	return TSI_OK;
}

static char *
path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p == NULL) {
		fputs("tsi-vault: out of memory\n", stderr);
		exit(1);
	}
	snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* The root token of a configured server: read from root_token_file, or
 * made and written there (0600) on first start. */
static int
root_token_load(const char *path, char **out, char *err, size_t errlen)
{
	char buf[VAULT_TOKEN_MAX + 2], rnd[64], *text = NULL;
	size_t n = 0;
	int fd, r;

	r = tsi_file_read(path, VAULT_TOKEN_MAX,
	    TSI_FILE_NOFOLLOW | TSI_FILE_PRIVATE | TSI_FILE_NONEMPTY, &text, &n,
	    err, errlen);
	if (r == TSI_OK) {
		text[strcspn(text, "\r\n")] = '\0';
		if (strlen(text) >= 16)
			*out = xstrdup(text);
		else
			r = TSI_ERR_TOO_LARGE; /* too short: the same message */
		tsi_freezero(text, n + 1);
		if (r == TSI_OK)
			return TSI_OK;
	}
	if (r != TSI_ERR_NOT_FOUND) {
		if (r == TSI_ERR_DENIED)
			snprintf(err, errlen,
			    "%s: root token file must be a "
			    "regular file of mode 0600",
			    path);
		else if (r == TSI_ERR_PARSE)
			snprintf(err, errlen, "%s: empty root token file",
			    path);
		else if (r == TSI_ERR_TOO_LARGE)
			snprintf(err, errlen,
			    "%s: root token must be 16 to %d "
			    "characters",
			    path, VAULT_TOKEN_MAX);
		return r == TSI_ERR_IO ? TSI_ERR_IO : TSI_ERR_CONFIG;
	}
	r = TSI_ERR_CONFIG;
	if (vault_random_b64(32, rnd, sizeof(rnd)) != TSI_OK)
		return TSI_ERR_CRYPTO;
	snprintf(buf, sizeof(buf), "hvs.%s\n", rnd);
	explicit_bzero(rnd, sizeof(rnd));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	        0 ||
	    write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) ||
	    fsync(fd) != 0) {
		snprintf(err, errlen, "%s: cannot write root token: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		r = TSI_ERR_IO;
		goto out;
	}
	close(fd);
	buf[strcspn(buf, "\n")] = '\0';
	*out = xstrdup(buf);
	tsi_log(TSI_LOG_WARN, "root_token.created", TSI_LS("file", path));
	r = TSI_OK;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/* The key that signs the audit chain head: a P-256 private key (PEM),
 * mode 0600. *out: tsi_signer_free. */
static int
head_key_load(const char *path, struct tsi_signer **out, char *err,
    size_t errlen)
{
	EVP_PKEY *k = NULL;
	struct stat st;
	FILE *f;
	int r;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "audit_head_key %s: %s", path,
		    strerror(errno));
		return TSI_ERR_CONFIG;
	}
	if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "audit_head_key %s: must be mode 0600",
		    path);
		fclose(f);
		return TSI_ERR_CONFIG;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || (r = tsi_signer_new_soft(k, out)) != TSI_OK) {
		snprintf(err, errlen,
		    "audit_head_key %s: not a P-256 private key "
		    "(PEM)",
		    path);
		EVP_PKEY_free(k);
		return TSI_ERR_CONFIG;
	}
	EVP_PKEY_free(k); /* the signer holds its own reference */
	return TSI_OK;
}

static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int
fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("tsi-vault: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* What the command line gives besides the settings it sets itself. */
struct args {
	const char *config;
	char **ca; /* --trust-ca values, borrowed from argv */
	size_t n_ca;
	const char *policy;
	long threads, workers;
};

/* The value of a flag that takes one: whether a is one. */
static int
takes_value(const char *a)
{
	static const char *const flags[] = { "--config", "--dev-root-token-id",
		"--dev-listen", "--policy-dir", "--trust-ca", "--threads",
		"--workers" };
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcmp(a, flags[i]) == 0)
			return 1;
	return 0;
}

/* One flag and its value into set or ar; 0, or the exit code. */
static int
take_flag(const char *a, const char *val, struct vault_settings *set,
    struct args *ar)
{
	if (strcmp(a, "--config") == 0)
		ar->config = val;
	else if (strcmp(a, "--dev-root-token-id") == 0) {
		tsi_strfree(set->dev_root_token);
		set->dev_root_token = xstrdup(val);
	} else if (strcmp(a, "--dev-listen") == 0) {
		free(set->listen);
		set->listen = xstrdup(val);
	} else if (strcmp(a, "--policy-dir") == 0)
		ar->policy = val;
	else if (strcmp(a, "--threads") == 0 || strcmp(a, "--workers") == 0) {
		char *end;
		long n;

		errno = 0;
		n = strtol(val, &end, 10);
		if (errno || *end || n < 1 || n > 1024)
			return fail(EXIT_USAGE, "%s: 1 to 1024", a);
		if (a[2] == 't')
			ar->threads = n;
		else
			ar->workers = n;
	} else
		ar->ca[ar->n_ca++] = (char *)val;
	return 0;
}

/* The command line: 0 to go on (*stop set after --help or --version),
 * or the exit code. ar->ca must hold argc entries. */
static int
parse_args(int argc, char **argv, struct vault_settings *set, struct args *ar,
    int *stop)
{
	size_t i;
	int code;

	for (i = 1; i < (size_t)argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < (size_t)argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			*stop = 1;
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("tsi-vault %s\n", TSI_VERSION);
			*stop = 1;
			return 0;
		}
		if (strcmp(a, "--dev") == 0 || strcmp(a, "-dev") == 0) {
			set->dev = 1;
			continue;
		}
		if (!takes_value(a)) {
			usage(stderr);
			return fail(EXIT_USAGE, "unknown argument '%s'", a);
		}
		if (val == NULL)
			return fail(EXIT_USAGE, "%s needs a value", a);
		i++;
		if ((code = take_flag(a, val, set, ar)) != 0)
			return code;
	}
	return 0;
}

/* --dev without a config file: loopback only, no TLS. */
static int
dev_settings(struct vault_settings *set)
{
	if (set->listen == NULL)
		set->listen = xstrdup("127.0.0.1:8200");
	if (tsi_net_listen_is_loopback(set->listen) != 1)
		return fail(EXIT_USAGE,
		    "--dev-listen must be a loopback "
		    "ADDRESS:PORT (dev mode has no TLS), got '%s'",
		    set->listen);
	set->audience = xstrdup(TSI_JWT_DEFAULT_AUD);
	set->cluster_name = xstrdup("tsi-vault-dev");
	set->conn_timeout = 30;
	set->request_timeout = 10;
	return 0;
}

/* The flags that override the config file. 0, or the exit code. */
static int
apply_overrides(struct vault_settings *set, const struct args *ar)
{
	size_t i;

	if (ar->threads > 0)
		set->threads = ar->threads;
	if (ar->workers > 0)
		set->workers = ar->workers;
	if (ar->policy != NULL) {
		free(set->policy_dir);
		set->policy_dir = xstrdup(ar->policy);
	}
	if (ar->n_ca == 0)
		return 0;
	for (i = 0; i < set->n_trust_ca; i++)
		free(set->trust_ca[i]);
	free(set->trust_ca);
	set->n_trust_ca = 0;
	if ((set->trust_ca = calloc(ar->n_ca, sizeof(char *))) == NULL)
		return 1;
	for (i = 0; i < ar->n_ca; i++)
		set->trust_ca[i] = xstrdup(ar->ca[i]);
	set->n_trust_ca = ar->n_ca;
	for (i = 0; i < ar->n_ca; i++)
		if (access(ar->ca[i], R_OK) != 0)
			return fail(EXIT_USAGE, "--trust-ca %s: %s", ar->ca[i],
			    strerror(errno));
	return 0;
}

/* The settings from the config file or --dev, then the flags. 0, or the
 * exit code. */
static int
settings_finish(struct vault_settings *set, const struct args *ar)
{
	char err[ERRLEN] = "";
	int code;

	if (!set->dev && ar->config == NULL) {
		usage(stderr);
		return fail(EXIT_USAGE, "--config FILE or --dev is required");
	}
	if (!set->dev && (set->listen != NULL || set->dev_root_token != NULL))
		return fail(EXIT_USAGE,
		    "--dev-listen and --dev-root-token-id "
		    "need --dev");
	if (ar->config != NULL) {
		if (set->dev)
			return fail(EXIT_USAGE,
			    "--dev and --config exclude each "
			    "other");
		if (load_config(ar->config, set, err, sizeof(err)) != TSI_OK)
			return fail(EXIT_USAGE, "%s", err);
	} else if ((code = dev_settings(set)) != 0)
		return code;
	return apply_overrides(set, ar);
}

/* Everything that can be wrong with the configuration, checked before
 * anything is created: policies, trusted CAs, the TLS pair. */
static int
open_checked(struct vault *v)
{
	const struct vault_settings *set = v->set;
	char err[ERRLEN] = "";

	if (vault_policy_start(v, err, sizeof(err)) != TSI_OK)
		return fail(EXIT_USAGE, "%s", err);
	if (trust_build(set, &v->trust, err, sizeof(err)) != TSI_OK)
		return fail(EXIT_USAGE, "%s", err);
	if (!set->dev &&
	    tsi_tls_creds_load(set->tls_cert, set->tls_key, &v->tls, err,
	        sizeof(err)) != TSI_OK)
		return fail(EXIT_USAGE, "TLS: %s", err);
	return 0;
}

/* The KV key and data_dir (in dev mode a random key and a temporary
 * directory, removed by vault_close). */
static int
open_data_dir(struct vault *v)
{
	struct vault_settings *set = v->set;
	char err[ERRLEN] = "";

	if (set->dev) {
		if (vault_key_random(&v->key) != TSI_OK)
			return fail(1, "no randomness");
		v->dev_dir = xstrdup("/tmp/tsi-vault-dev.XXXXXX");
		if (mkdtemp(v->dev_dir) == NULL) {
			free(v->dev_dir);
			v->dev_dir = NULL;
			return fail(1, "mkdtemp: %s", strerror(errno));
		}
		set->data_dir = xstrdup(v->dev_dir);
	} else {
		if (vault_key_load(set->kv_key_file, &v->key, err,
		        sizeof(err)) != TSI_OK)
			return fail(EXIT_USAGE, "%s", err);
		if (mkdir_p(set->data_dir) != TSI_OK)
			return fail(1, "data_dir %s: %s", set->data_dir,
			    strerror(errno));
	}
	vault_policy_keep(v, 0);
	if (set->policy_dir == NULL)
		tsi_log(TSI_LOG_WARN, "config.no_policy",
		    TSI_LS("effect", "every login is refused"));
	if (set->n_trust_ca == 0)
		tsi_log(TSI_LOG_WARN, "config.no_trust_ca",
		    TSI_LS("effect", "every login is refused"));
	return 0;
}

/* The token table, the KV store and the per-source login limits. */
static int
open_kv(struct vault *v)
{
	const struct vault_settings *set = v->set;
	struct kv_store_opts ko;
	char *kvurl = NULL;
	int code = 0;

	if (vault_tokens_new((size_t)set->max_tokens, &v->tokens) != TSI_OK)
		return 1;
	if (set->kv_url != NULL)
		kvurl = xstrdup(set->kv_url);
	else if (kv_store_default_url(set->data_dir, &kvurl) != TSI_OK)
		return fail(1, "out of memory");
	memset(&ko, 0, sizeof(ko));
	ko.map_size = set->kv_map_size;
	ko.max_versions = (unsigned)set->kv_max_versions;
	ko.max_readers = (unsigned)(set->threads + set->workers + 16);
	if (kv_store_open(kvurl, &ko, &v->store) != TSI_OK)
		code = fail(1, "cannot open the KV store %s", kvurl);
	free(kvurl);
	if (code == 0 &&
	    vault_limiter_new((unsigned)set->login_fail_limit,
	        (unsigned)set->login_fail_window, 4096,
	        &v->login_limit) != TSI_OK)
		code = fail(1, "out of memory");
	return code;
}

/* The audit log, with its chain head signed when audit_head_key is set. */
static int
open_audit(struct vault *v)
{
	const struct vault_settings *set = v->set;
	struct tsi_audit_opts ao;
	char err[ERRLEN] = "";

	v->audit_dir = path_join(set->data_dir, "audit");
	memset(&ao, 0, sizeof(ao));
	ao.map_size = set->audit_map_size;
	ao.map_max = set->audit_map_max;
	ao.commit_timeout_ms = (int)set->audit_commit_timeout_ms;
	ao.batch_max = (size_t)set->audit_batch_max;
	ao.commit_delay_us = (int)set->audit_commit_delay_us;
	ao.retain_seconds = set->audit_retain_seconds;
	ao.retain_bytes = set->audit_retain_bytes;
	/* Room only authenticated callers' records may use: by default an
	 * eighth of the largest map the log may have. */
	ao.reserve_bytes = set->audit_reserve_bytes >= 0
	    ? (size_t)set->audit_reserve_bytes
	    : (set->audit_map_max > set->audit_map_size ? set->audit_map_max
	                                                : set->audit_map_size) /
	        8;
	ao.keep_allow_s = set->audit_keep_allow_s;
	if (set->audit_head_key != NULL) {
		if (head_key_load(set->audit_head_key, &v->head_signer, err,
		        sizeof(err)) != TSI_OK)
			return fail(EXIT_USAGE, "%s", err);
		ao.head_signer = v->head_signer;
		ao.head_sign_interval_s = (int)set->audit_head_interval;
	}
	if (tsi_audit_open(v->audit_dir, &ao, &v->audit) != TSI_OK)
		return fail(1, "cannot open the audit log in %s", v->audit_dir);
	if (vault_sinks_start(v) != TSI_OK)
		return fail(1,
		    "cannot start the audit sinks (state in %s/"
		    "audit-sinks)",
		    set->data_dir);
	return 0;
}

/* The root token: dev mode's (given or random), or root_token_file's.
 * *tok: the token made (dev mode, to print), caller tsi_strfree. */
static int
open_root_token(struct vault *v, char **tok)
{
	const struct vault_settings *set = v->set;
	char accessor[VAULT_ACCESSOR_LEN + 1];
	char err[ERRLEN] = "", *root = NULL;
	int code = 0;

	if (set->dev)
		root =
		    set->dev_root_token ? xstrdup(set->dev_root_token) : NULL;
	else if (set->root_token_file != NULL &&
	    root_token_load(set->root_token_file, &root, err, sizeof(err)) !=
	        TSI_OK)
		return fail(EXIT_USAGE, "%s", err);
	if ((set->dev || root != NULL) &&
	    vault_tokens_create(v->tokens, root, "root", NULL, NULL, 0, 1, tok,
	        accessor) != TSI_OK)
		code = fail(EXIT_USAGE, "bad root token");
	tsi_strfree(root);
	return code;
}

/*
 * Makes v from set (borrowed for v's life): every store, table and key,
 * in an order where a failure leaves nothing half made that vault_close
 * cannot undo. 0, or the exit code (the reason printed); call vault_close
 * either way. *tok as open_root_token.
 */
static int
vault_open(struct vault *v, struct vault_settings *set, char **tok)
{
	const char *labels[VAULT_METRIC_ROUTES];
	int code;

	v->set = set;
	vault_metrics_labels(&v->metrics, labels,
	    vault_route_metrics(labels, VAULT_METRIC_ROUTES));
	pthread_mutex_init(&v->mu, NULL);
	pthread_mutex_init(&v->reader_mu, NULL);
	v->started = time(NULL);
	vault_uuid(v->cluster_id);
	if ((code = open_checked(v)) != 0 || (code = open_data_dir(v)) != 0 ||
	    (code = open_kv(v)) != 0 || (code = open_audit(v)) != 0)
		return code;
	return open_root_token(v, tok);
}

/* Stops the server (requests in flight finish) and frees all of v, in
 * the reverse order of vault_open; accepts a v it made only in part. */
static void
vault_close(struct vault *v)
{
	vault_server_stop(v);
	vault_sinks_stop(v);
	if (v->audit_reader != NULL)
		tsi_audit_reader_close(v->audit_reader);
	if (v->audit != NULL)
		tsi_audit_close(v->audit);
	tsi_signer_free(v->head_signer);
	if (v->store != NULL)
		v->store->ops->close(v->store);
	vault_tokens_free(v->tokens);
	vault_limiter_free(v->login_limit);
	tsi_policy_unref(v->policy);
	if (v->trust != NULL) {
		tsi_trust_free(v->trust->trust);
		free(v->trust);
	}
	vault_key_wipe(&v->key);
	tsi_tls_creds_free(v->tls);
	if (v->dev_dir != NULL)
		nftw(v->dev_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(v->dev_dir);
	free(v->audit_dir);
	memset(v, 0, sizeof(*v));
}

static void
dev_banner(const struct vault_settings *set, const char *tok)
{
	printf("==> tsi-vault server started in dev mode\n\n"
	       "WARNING! dev mode is enabled! In this mode, tsi-vault runs\n"
	       "without TLS, keeps its data in a temporary directory that is\n"
	       "removed on exit, and starts with a root token.\n\n"
	       "You may need to set the following environment variables:\n\n"
	       "    $ export VAULT_ADDR='http://%s'\n\n"
	       "The root token is displayed below:\n\n"
	       "Root Token: %s\n\n"
	       "Development mode should NOT be used in production "
	       "installations!\n",
	    set->listen, tok);
	fflush(stdout);
}

/* Starts the server and takes signals until SIGINT or SIGTERM (SIGHUP
 * reloads). tok: the dev root token to print (wiped and freed here). */
static int
serve(struct vault *v, char *tok)
{
	const struct vault_settings *set = v->set;
	char err[ERRLEN] = "";
	sigset_t sigs;
	int sig;

	/* Signals are taken by sigwait below; server threads inherit the
	 * blocked mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (vault_server_start(v, err, sizeof(err)) != TSI_OK) {
		tsi_strfree(tok);
		return fail(1, "%s", err);
	}
	tsi_log(TSI_LOG_INFO, "server.started", TSI_LS("listen", set->listen),
	    TSI_LS("tls", set->dev ? "off" : "on"),
	    TSI_LS("mode", set->dev ? "dev" : "config"),
	    TSI_LI("threads", set->threads), TSI_LI("workers", set->workers),
	    TSI_LS("data_dir", set->data_dir), TSI_LS("version", TSI_VERSION));
	if (set->dev)
		dev_banner(set, tok);
	tsi_strfree(tok);
	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		tsi_log(TSI_LOG_INFO, "reload.start");
		reload(v);
		(void)vault_server_tls_reload(v);
		vault_sinks_reopen(v);
	}
	tsi_log(TSI_LOG_INFO, "server.stopping", TSI_LI("signal", sig));
	return 0;
}

int
main(int argc, char **argv)
{
	struct vault_settings set;
	struct vault v;
	struct args ar;
	char *tok = NULL;
	int code, stop = 0;

	tsi_log_init("tsi-vault", TSI_LOG_INFO);
	/* KV write bodies and KV values decoded by jansson are secrets: wiped
	 * when freed (before any thread starts). */
	tsi_wipe_install(TSI_WIPE_JSON);
	json_object_seed(0);
	/* Policies speak of the route table's mounts (mounts.c). */
	vault_policy_mounts_register();
	memset(&set, 0, sizeof(set));
	memset(&v, 0, sizeof(v));
	memset(&ar, 0, sizeof(ar));
	defaults(&set);
	if ((ar.ca = calloc((size_t)argc, sizeof(char *))) == NULL)
		return 1;
	code = parse_args(argc, argv, &set, &ar, &stop);
	if (code == 0 && !stop)
		code = settings_finish(&set, &ar);
	if (code == 0 && !stop) {
		if ((code = vault_open(&v, &set, &tok)) == 0) {
			code = serve(&v, tok);
			tok = NULL;
		}
		vault_close(&v);
	}
	tsi_strfree(tok);
	free(ar.ca);
	vault_settings_clear(&set);
	return code;
}
