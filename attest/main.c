/*
 * tsi-attest: the registrar and verifier of nodes. Arguments, the config
 * file, start-up, and the signal loop (SIGHUP reloads the PCR policy file;
 * SIGINT/SIGTERM stop).
 */
#include "attest.h"

#include "tsi/buf.h"
#include "tsi/config.h"
#include "tsi/err.h"
#include "tsi/hex.h"
#include "tsi/file.h"
#include "tsi/log.h"
#include "tsi/net.h"
#include "tsi/x509.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/rand.h>
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
	    "usage: tsi-attest --config FILE [--ek-ca PEM]...\n"
	    "       tsi-attest --dev [--dev-listen ADDR] [--dev-root-token-id "
	    "T]\n"
	    "                  [--ek-ca PEM]... [--pcr-policy FILE]\n"
	    "       tsi-attest --help | --version\n\n"
	    "Registrar and verifier of nodes: TPM-attested enrollment, the "
	    "node\n"
	    "inventory and the online node CA. See docs/attestation.md.\n\n"
	    "  --config FILE           libconfig file (listen, tls_cert, "
	    "tls_key, data_dir,\n"
	    "                          admin_token_file, ek_ca, node_ca_cert, "
	    "node_ca_key,\n"
	    "                          pcr_policy_file, cert_days, ...)\n"
	    "  --dev                   plain HTTP on loopback, temporary data, "
	    "a fresh node CA,\n"
	    "                          admin (root) token printed\n"
	    "  --dev-listen ADDR       loopback address:port (default "
	    "127.0.0.1:8300)\n"
	    "  --dev-root-token-id T   the admin token in dev mode (default: "
	    "random)\n"
	    "  --ek-ca PEM             manufacturer CA file, repeatable "
	    "(overrides ek_ca)\n"
	    "  --pcr-policy FILE       PCR policy file (overrides "
	    "pcr_policy_file)\n"
	    "\nSignals: SIGHUP reloads the PCR policy file; SIGTERM/SIGINT "
	    "stop.\n"
	    "Exit: 0 ok, 1 runtime failure, 2 bad usage/config.\n");
}

static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int
fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("tsi-attest: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static char *
xstrdup(const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL) {
		fputs("tsi-attest: out of memory\n", stderr);
		exit(1);
	}
	return d;
}

static void
settings_clear(struct attest_settings *s)
{
	size_t i;

	free(s->listen);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->data_dir);
	for (i = 0; i < s->n_admin_tokens; i++)
		tsi_strfree(s->admin_tokens[i]);
	free(s->admin_tokens);
	for (i = 0; i < s->n_ek_ca; i++)
		free(s->ek_ca[i]);
	free(s->ek_ca);
	free(s->node_ca_cert);
	free(s->node_ca_key);
	free(s->pcr_policy_file);
	memset(s, 0, sizeof(*s));
}

static int
add_token(struct attest_settings *s, const char *tok)
{
	char **n =
	    realloc(s->admin_tokens, (s->n_admin_tokens + 1) * sizeof(char *));

	if (n == NULL)
		return TSI_ERR_ALLOC;
	s->admin_tokens = n;
	s->admin_tokens[s->n_admin_tokens++] = xstrdup(tok);
	return TSI_OK;
}

/* One admin token a line, 16-256 characters; the file must be 0600. */
static int
load_tokens(const char *path, struct attest_settings *s, char *err,
    size_t errlen)
{
	char line[ATTEST_TOKEN_MAX + 4];
	struct stat st;
	FILE *f;
	int lineno = 0, r = TSI_ERR_CONFIG;

	if ((f = fopen(path, "re")) == NULL) {
		tsi_errf(err, errlen, "admin_token_file %s: %s", path,
		    strerror(errno));
		return TSI_ERR_CONFIG;
	}
	if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
		tsi_errf(err, errlen, "admin_token_file %s: must be mode 0600",
		    path);
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		n = strlen(line);
		if (n == 0 || line[0] == '#')
			continue;
		if (n < 16 || n > ATTEST_TOKEN_MAX) {
			tsi_errf(err, errlen,
			    "%s:%d: a token must be 16 to %d "
			    "characters",
			    path, lineno, ATTEST_TOKEN_MAX);
			goto out;
		}
		if (add_token(s, line) != TSI_OK)
			goto out;
	}
	r = TSI_OK;
out:
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return r;
}

static const char *const config_keys[] = { "listen", "tls_cert", "tls_key",
	"data_dir", "admin_token_file", "ek_ca", "node_ca_cert", "node_ca_key",
	"pcr_policy_file", "cert_days", "map_size", "session_ttl", "threads",
	NULL };

static int
check_file(const struct tsi_config *c, const char *key, const char *path,
    char *err, size_t errlen)
{
	if (path == NULL || access(path, R_OK) == 0)
		return TSI_OK;
	tsi_errf(err, errlen, "%s:%d: %s: cannot read '%s': %s",
	    tsi_config_file(c), tsi_config_line(c, key), key, path,
	    strerror(errno));
	return TSI_ERR_CONFIG;
}

static int
load_config(const char *path, struct attest_settings *s, char *err,
    size_t errlen)
{
	struct tsi_config *c = NULL;
	const char *str, **list = NULL, *tokfile = NULL;
	long long n;
	size_t i, nl = 0;
	int r;

	if ((r = tsi_config_load(path, &c, err, errlen)) != TSI_OK)
		return TSI_ERR_CONFIG;
	if ((r = tsi_config_check_keys(c, config_keys, err, errlen)) != TSI_OK)
		goto out;
#define STR(key, field, def) \
	do { \
		if ((r = tsi_config_str(c, key, def, &str, err, errlen)) != \
		    TSI_OK) \
			goto out; \
		free(s->field); \
		s->field = xstrdup(str); \
	} while (0)
#define INT(key, field, min, max) \
	do { \
		if ((r = tsi_config_int(c, key, s->field, min, max, &n, err, \
		         errlen)) != TSI_OK) \
			goto out; \
		s->field = n; \
	} while (0)
	STR("listen", listen, "127.0.0.1:8300");
	STR("tls_cert", tls_cert, NULL);
	STR("tls_key", tls_key, NULL);
	STR("data_dir", data_dir, NULL);
	STR("node_ca_cert", node_ca_cert, NULL);
	STR("node_ca_key", node_ca_key, NULL);
	STR("pcr_policy_file", pcr_policy_file, NULL);
	INT("cert_days", cert_days, 1, 3650);
	INT("map_size", map_size, 1LL << 20, 1LL << 40);
	INT("session_ttl", session_ttl, 5, 300);
	INT("threads", threads, 1, 64);
#undef STR
#undef INT
	if ((r = tsi_config_str(c, "admin_token_file", NULL, &tokfile, err,
	         errlen)) != TSI_OK)
		goto out;
	if ((r = tsi_config_strlist(c, "ek_ca", &list, &nl, err, errlen)) !=
	    TSI_OK)
		goto out;
	if (nl > 0) {
		if ((s->ek_ca = calloc(nl, sizeof(char *))) == NULL) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		for (i = 0; i < nl; i++)
			s->ek_ca[i] = xstrdup(list[i]);
		s->n_ek_ca = nl;
	}
	r = TSI_ERR_CONFIG;
	if (s->tls_cert == NULL || s->tls_key == NULL) {
		tsi_errf(err, errlen,
		    "%s:%d: tls_cert and tls_key are required "
		    "(TLS is always on outside --dev)",
		    tsi_config_file(c),
		    tsi_config_line(c, s->tls_cert ? "tls_cert" : "tls_key"));
		goto out;
	}
	if (s->data_dir == NULL || s->node_ca_cert == NULL ||
	    s->node_ca_key == NULL) {
		tsi_errf(err, errlen,
		    "%s:%d: data_dir, node_ca_cert and "
		    "node_ca_key are required",
		    tsi_config_file(c), 1);
		goto out;
	}
	if (check_file(c, "tls_cert", s->tls_cert, err, errlen) != TSI_OK ||
	    check_file(c, "tls_key", s->tls_key, err, errlen) != TSI_OK ||
	    check_file(c, "node_ca_cert", s->node_ca_cert, err, errlen) !=
	        TSI_OK ||
	    check_file(c, "node_ca_key", s->node_ca_key, err, errlen) !=
	        TSI_OK ||
	    check_file(c, "pcr_policy_file", s->pcr_policy_file, err, errlen) !=
	        TSI_OK)
		goto out;
	for (i = 0; i < s->n_ek_ca; i++)
		if (check_file(c, "ek_ca", s->ek_ca[i], err, errlen) != TSI_OK)
			goto out;
	if (tsi_net_listen_is_loopback(s->listen) < 0) {
		tsi_errf(err, errlen, "%s:%d: listen: expected ADDRESS:PORT",
		    tsi_config_file(c), tsi_config_line(c, "listen"));
		goto out;
	}
	if (tokfile != NULL && load_tokens(tokfile, s, err, errlen) != TSI_OK)
		goto out;
	r = TSI_OK;
out:
	free(list);
	tsi_config_free(c);
	return r;
}

static int
load_ek_ca(const struct attest_settings *s, STACK_OF(X509) **out, char *err,
    size_t errlen)
{
	STACK_OF(X509) *all, *one = NULL;
	size_t i;

	if ((all = sk_X509_new_null()) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < s->n_ek_ca; i++) {
		if (tsi_x509_load_chain_file(s->ek_ca[i], &one) != TSI_OK) {
			tsi_errf(err, errlen, "ek_ca %s: no PEM certificate",
			    s->ek_ca[i]);
			sk_X509_pop_free(all, X509_free);
			return TSI_ERR_CONFIG;
		}
		while (sk_X509_num(one) > 0)
			if (sk_X509_push(all, sk_X509_shift(one)) <= 0) {
				sk_X509_pop_free(one, X509_free);
				sk_X509_pop_free(all, X509_free);
				return TSI_ERR_ALLOC;
			}
		sk_X509_free(one);
		one = NULL;
	}
	*out = all;
	return TSI_OK;
}

static char *
slurp(const char *path)
{
	char *buf = NULL;

	(void)tsi_file_read(path, (1 << 20) - 1, TSI_FILE_NONEMPTY, &buf, NULL,
	    NULL, 0);
	return buf;
}

static int
rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *
path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p == NULL) {
		fputs("tsi-attest: out of memory\n", stderr);
		exit(1);
	}
	snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* "lmdb:///abs/data_dir/audit": the audit log named by URL, so that the
 * backend is a setting of the core, not of this program. NULL when
 * data_dir cannot be resolved. */
static char *
audit_url(const char *data_dir)
{
	char abs[PATH_MAX], *url;
	size_t n;

	if (realpath(data_dir, abs) == NULL)
		return NULL;
	n = strlen(abs) + sizeof("lmdb:///audit");
	if ((url = malloc(n)) == NULL) {
		fputs("tsi-attest: out of memory\n", stderr);
		exit(1);
	}
	if (snprintf(url, n, "lmdb://%s/audit", abs) >= (int)n) {
		free(url);
		return NULL;
	}
	return url;
}

static void
reload(struct attest *a)
{
	struct attest_pcr_policies *np = NULL, *op;
	char err[ERRLEN] = "";

	if (a->set->pcr_policy_file == NULL) {
		tsi_log(TSI_LOG_INFO, "reload.done",
		    TSI_LS("result",
		        "nothing to "
		        "reload"));
		return;
	}
	if (attest_pcr_load(a->set->pcr_policy_file, &np, err, sizeof(err)) !=
	    TSI_OK) {
		__atomic_fetch_add(&a->metrics.reloads_failed, 1,
		    __ATOMIC_RELAXED);
		tsi_log(TSI_LOG_ERROR, "reload.pcr_policy_failed",
		    TSI_LS("error", err),
		    TSI_LS("kept", "previous PCR policies"));
		return;
	}
	pthread_mutex_lock(&a->mu);
	op = a->pcr;
	a->pcr = np;
	pthread_mutex_unlock(&a->mu);
	attest_pcr_free(op);
	__atomic_fetch_add(&a->metrics.reloads_ok, 1, __ATOMIC_RELAXED);
	tsi_log(TSI_LOG_INFO, "reload.done", TSI_LS("result", "ok"),
	    TSI_LI("pcr_policies", (long long)np->n));
}

int
main(int argc, char **argv)
{
	struct attest_settings set;
	struct attest a;
	struct tsi_audit_opts ao;
	const char *config = NULL, *cli_pcr = NULL;
	char **cli_ca = NULL, *dev_token = NULL, *audit_dir = NULL,
	     *db_dir = NULL;
	size_t n_cli_ca = 0, i;
	char err[ERRLEN] = "";
	char dev_dir[] = "/tmp/tsi-attest-dev.XXXXXX";
	sigset_t sigs;
	int sig, code = 1, dev_dir_made = 0;

	tsi_log_init("tsi-attest", TSI_LOG_INFO);
	memset(&set, 0, sizeof(set));
	memset(&a, 0, sizeof(a));
	set.cert_days = 30;
	set.map_size = 256LL << 20;
	set.session_ttl = ATTEST_SESSION_TTL;
	set.threads = 4;
	pthread_mutex_init(&a.mu, NULL);
	if ((cli_ca = calloc((size_t)argc, sizeof(char *))) == NULL)
		return 1;
	for (i = 1; i < (size_t)argc; i++) {
		const char *arg = argv[i];
		const char *val = i + 1 < (size_t)argc ? argv[i + 1] : NULL;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			code = 0;
			goto done;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("tsi-attest %s\n", TSI_VERSION);
			code = 0;
			goto done;
		}
		if (strcmp(arg, "--dev") == 0) {
			set.dev = 1;
			continue;
		}
		if (strcmp(arg, "--config") != 0 &&
		    strcmp(arg, "--dev-listen") != 0 &&
		    strcmp(arg, "--dev-root-token-id") != 0 &&
		    strcmp(arg, "--ek-ca") != 0 &&
		    strcmp(arg, "--pcr-policy") != 0) {
			usage(stderr);
			code = fail(EXIT_USAGE, "unknown argument '%s'", arg);
			goto done;
		}
		if (val == NULL) {
			code = fail(EXIT_USAGE, "%s needs a value", arg);
			goto done;
		}
		i++;
		if (strcmp(arg, "--config") == 0)
			config = val;
		else if (strcmp(arg, "--dev-listen") == 0) {
			free(set.listen);
			set.listen = xstrdup(val);
		} else if (strcmp(arg, "--dev-root-token-id") == 0) {
			tsi_strfree(dev_token);
			dev_token = xstrdup(val);
		} else if (strcmp(arg, "--pcr-policy") == 0)
			cli_pcr = val;
		else
			cli_ca[n_cli_ca++] = (char *)val;
	}
	if (!set.dev && config == NULL) {
		usage(stderr);
		code = fail(EXIT_USAGE, "--config FILE or --dev is required");
		goto done;
	}
	if (set.dev && config != NULL) {
		code =
		    fail(EXIT_USAGE, "--dev and --config exclude each other");
		goto done;
	}
	if (!set.dev && (set.listen != NULL || dev_token != NULL)) {
		code = fail(EXIT_USAGE,
		    "--dev-listen and --dev-root-token-id need "
		    "--dev");
		goto done;
	}
	if (config != NULL) {
		if (load_config(config, &set, err, sizeof(err)) != TSI_OK) {
			code = fail(EXIT_USAGE, "%s", err);
			goto done;
		}
	} else {
		if (set.listen == NULL)
			set.listen = xstrdup("127.0.0.1:8300");
		if (tsi_net_listen_is_loopback(set.listen) != 1) {
			code = fail(EXIT_USAGE,
			    "--dev-listen must be a loopback "
			    "ADDRESS:PORT (dev mode has no TLS), got '%s'",
			    set.listen);
			goto done;
		}
		if (dev_token != NULL &&
		    (strlen(dev_token) < 1 ||
		        strlen(dev_token) > ATTEST_TOKEN_MAX)) {
			code = fail(EXIT_USAGE,
			    "--dev-root-token-id: 1 to %d "
			    "characters",
			    ATTEST_TOKEN_MAX);
			goto done;
		}
	}
	if (n_cli_ca > 0) {
		for (i = 0; i < set.n_ek_ca; i++)
			free(set.ek_ca[i]);
		free(set.ek_ca);
		if ((set.ek_ca = calloc(n_cli_ca, sizeof(char *))) == NULL)
			goto done;
		for (i = 0; i < n_cli_ca; i++)
			set.ek_ca[i] = xstrdup(cli_ca[i]);
		set.n_ek_ca = n_cli_ca;
	}
	if (cli_pcr != NULL) {
		free(set.pcr_policy_file);
		set.pcr_policy_file = xstrdup(cli_pcr);
	}
	if (load_ek_ca(&set, &a.ek_ca, err, sizeof(err)) != TSI_OK) {
		code = fail(EXIT_USAGE, "%s", err);
		goto done;
	}
	if (set.pcr_policy_file != NULL &&
	    attest_pcr_load(set.pcr_policy_file, &a.pcr, err, sizeof(err)) !=
	        TSI_OK) {
		code = fail(EXIT_USAGE, "%s", err);
		goto done;
	}
	if (set.n_ek_ca == 0)
		tsi_log(TSI_LOG_WARN, "config.no_ek_ca",
		    TSI_LS("effect",
		        "only entries with ek-hash trust can enroll"));

	a.set = &set;
	a.started = attest_now();
	if (set.dev) {
		unsigned char rnd[16];
		char hex[33];

		if (mkdtemp(dev_dir) == NULL) {
			code = fail(1, "mkdtemp: %s", strerror(errno));
			goto done;
		}
		dev_dir_made = 1;
		set.data_dir = xstrdup(dev_dir);
		set.node_ca_cert = path_join(dev_dir, "node-ca/ca.pem");
		set.node_ca_key = path_join(dev_dir, "node-ca/ca.key");
		{
			char *cadir = path_join(dev_dir, "node-ca");
			int r = tsi_ca_init(cadir, "tsi node CA (dev)", 3650);
			free(cadir);
			if (r != TSI_OK) {
				code =
				    fail(1, "cannot make the dev node CA: %s",
				        tsi_strerror(r));
				goto done;
			}
		}
		if (dev_token == NULL) {
			if (RAND_bytes(rnd, sizeof(rnd)) != 1)
				goto done;
			tsi_hex_encode(rnd, sizeof(rnd), hex);
			dev_token = path_join("tsa", hex);
			dev_token[3] = '.';
		}
		add_token(&set, dev_token);
	} else if (mkdir(set.data_dir, 0700) != 0 && errno != EEXIST) {
		code =
		    fail(1, "data_dir %s: %s", set.data_dir, strerror(errno));
		goto done;
	}
	if (set.n_admin_tokens == 0)
		tsi_log(TSI_LOG_WARN, "config.no_admin_token",
		    TSI_LS("effect", "the inventory cannot be changed"));
	if ((a.node_ca_pem = slurp(set.node_ca_cert)) == NULL) {
		code = fail(EXIT_USAGE, "node_ca_cert %s: cannot read",
		    set.node_ca_cert);
		goto done;
	}
	db_dir = path_join(set.data_dir, "attest");
	audit_dir = audit_url(set.data_dir);
	if (attest_store_open(&a, db_dir, (size_t)set.map_size) != TSI_OK) {
		code = fail(1, "cannot open the inventory in %s", db_dir);
		goto done;
	}
	memset(&ao, 0, sizeof(ao));
	ao.map_size = (size_t)set.map_size;
	if (audit_dir == NULL ||
	    tsi_audit_open_url(audit_dir, &ao, &a.audit) != TSI_OK) {
		code = fail(1, "cannot open the audit log in %s/audit",
		    set.data_dir);
		goto done;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (attest_http_start(&a, err, sizeof(err)) != TSI_OK) {
		code = fail(1, "%s", err);
		goto done;
	}
	tsi_log(TSI_LOG_INFO, "server.started", TSI_LS("listen", set.listen),
	    TSI_LS("tls", set.dev ? "off" : "on"),
	    TSI_LS("mode", set.dev ? "dev" : "config"),
	    TSI_LS("data_dir", set.data_dir),
	    TSI_LI("ek_ca", (long long)sk_X509_num(a.ek_ca)),
	    TSI_LS("version", TSI_VERSION));
	if (set.dev) {
		printf("==> tsi-attest started in dev mode\n\n"
		       "WARNING! dev mode: no TLS, data in a temporary "
		       "directory that\n"
		       "is removed on exit, a fresh node CA, and an admin "
		       "token.\n\n"
		       "    $ export TSI_ATTEST_ADDR='http://%s'\n"
		       "    $ export TSI_ATTEST_TOKEN='%s'\n\n"
		       "Node CA: %s\n"
		       "Data dir: %s\n"
		       "Root Token: %s\n\n"
		       "Development mode should NOT be used in production "
		       "installations!\n",
		    set.listen, dev_token, set.node_ca_cert, set.data_dir,
		    dev_token);
		fflush(stdout);
	}

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(&a);
			continue;
		}
		tsi_log(TSI_LOG_INFO, "server.stopping", TSI_LI("signal", sig));
		break;
	}
	code = 0;
done:
	attest_http_stop(&a);
	if (a.audit != NULL)
		tsi_audit_close(a.audit);
	attest_store_close(&a);
	sk_X509_pop_free(a.ek_ca, X509_free);
	attest_pcr_free(a.pcr);
	free(a.node_ca_pem);
	if (dev_dir_made)
		nftw(dev_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	tsi_strfree(dev_token);
	free(audit_dir);
	free(db_dir);
	free(cli_ca);
	settings_clear(&set);
	return code;
}
