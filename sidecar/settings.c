/*
 * Settings of tsi-sidecar. Precedence: command-line flags, then the
 * environment (what Kubernetes injects), then the --config file, then the
 * defaults. Every bad value is reported with where it came from.
 */
#include "sidecar/sidecar.h"
#include "tsi/config.h"
#include "tsi/err.h"

#include <errno.h>
#include <getopt.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define DEFAULT_SOCKET "/run/tsi/issuer.sock"
#define DEFAULT_VAULT "https://127.0.0.1:8200"
#define DEFAULT_AUDIENCE "tsi-vault"
#define DEFAULT_DEST "/tsi-secrets"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tsi-sidecar [--once] [--dest-dir DIR] [--config FILE]\n"
	    "       tsi-sidecar --help | --version\n"
	    "\n"
	    "Gets this workload's identity token from the node's tsi-issuer, "
	    "logs\n"
	    "in to tsi-vault with it and writes the requested secrets to "
	    "files\n"
	    "(mode 0400, written atomically) under the destination directory.\n"
	    "\n"
	    "  --once           fetch every secret, then exit 0; exit 1 after "
	    "bounded\n"
	    "                   retries (init containers). Default: keep "
	    "refreshing,\n"
	    "                   removing files whose secret is no longer "
	    "released.\n"
	    "  --dest-dir DIR   destination directory (TSI_SECRETS_DIR)\n"
	    "  --config FILE    libconfig settings file (keys in brackets "
	    "below)\n"
	    "\n"
	    "Environment (overrides the config file; flags override both):\n"
	    "  TSI_SECRETS          JSON array of "
	    "{\"name\",\"path\",\"dest\",\"field\"?,\n"
	    "                       \"format\"?: json|raw|env} [secrets]\n"
	    "  TSI_ROLE             login role [role] (required)\n"
	    "  TSI_ISSUER_SOCKET    issuer Unix socket [issuer_socket] "
	    "(" DEFAULT_SOCKET ")\n"
	    "  VAULT_ADDR           tsi-vault URL [vault_addr] (" DEFAULT_VAULT
	    ")\n"
	    "  VAULT_CACERT         CA bundle (PEM) for VAULT_ADDR "
	    "[vault_cacert]\n"
	    "  TSI_ALLOW_HTTP       1: accept an http:// VAULT_ADDR (tsi-vault "
	    "--dev\n"
	    "                       only) [allow_http] (0)\n"
	    "  TSI_AUDIENCE         token audience [audience] "
	    "(" DEFAULT_AUDIENCE ")\n"
	    "  TSI_SECRETS_DIR      destination directory [dest_dir] "
	    "(" DEFAULT_DEST ")\n"
	    "  TSI_ONCE             1: same as --once [once]\n"
	    "  TSI_REFRESH_INTERVAL seconds between refreshes, +-20%% jitter "
	    "[refresh_interval] (60)\n"
	    "  TSI_RETRY_MAX        attempts before --once gives up "
	    "[retry_max] (6)\n"
	    "  TSI_RETRY_BASE_MS    first retry delay [retry_base_ms] (250)\n"
	    "  TSI_RETRY_MAX_MS     longest retry delay [retry_max_ms] (5000)\n"
	    "  TSI_HTTP_TIMEOUT_MS  per-request timeout [http_timeout_ms] "
	    "(10000)\n"
	    "\n"
	    "Exit status: 0 all secrets written (or clean stop), 1 a secret "
	    "could not\n"
	    "be fetched, 2 bad usage or configuration.\n");
}

void
tsi_sidecar_settings_clear(struct tsi_sidecar_settings *st)
{
	tsi_sidecar_spec_free(st->spec);
	tsi_config_free(st->cfg);
	memset(st, 0, sizeof(*st));
}

/* One string setting: env wins over the config file. */
static int
pick_str(const struct tsi_sidecar_settings *st, const char *env,
    const char *key, const char *def, const char **out, char *err,
    size_t errlen)
{
	const char *v = getenv(env);

	if (v != NULL && v[0] != '\0') {
		*out = v;
		return TSI_OK;
	}
	if (st->cfg != NULL)
		return tsi_config_str(st->cfg, key, def, out, err, errlen);
	*out = def;
	return TSI_OK;
}

static int
pick_int(const struct tsi_sidecar_settings *st, const char *env,
    const char *key, long long def, long long min, long long max,
    long long *out, char *err, size_t errlen)
{
	const char *v = getenv(env);
	char *end;
	long long x;

	if (v != NULL && v[0] != '\0') {
		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno != 0 || *end != '\0' || x < min || x > max) {
			tsi_errf(err, errlen,
			    "%s: '%.32s' is not an integer in "
			    "[%lld, %lld]",
			    env, v, min, max);
			return TSI_ERR_CONFIG;
		}
		*out = x;
		return TSI_OK;
	}
	if (st->cfg != NULL)
		return tsi_config_int(st->cfg, key, def, min, max, out, err,
		    errlen);
	*out = def;
	return TSI_OK;
}

/* secrets = ( { name = "..."; path = "..."; dest = "..."; }, ... ); */
static int
secrets_from_config(struct tsi_sidecar_settings *st, const char *dest_dir,
    char *err, size_t errlen)
{
	config_t *raw = tsi_config_raw(st->cfg);
	config_setting_t *list = config_lookup(raw, "secrets"), *g, *m;
	const char *file = tsi_config_file(st->cfg);
	char src[512];
	json_t *arr = NULL, *o;
	int i, k, r = TSI_ERR_CONFIG;

	(void)snprintf(src, sizeof(src), "%s:%d: secrets", file,
	    config_setting_source_line(list));
	if (config_setting_type(list) == CONFIG_TYPE_STRING) {
		const char *t = config_setting_get_string(list);
		r = tsi_sidecar_spec_parse(src, t, strlen(t), dest_dir,
		    &st->spec, err, errlen);
		return r == TSI_OK ? TSI_OK : TSI_ERR_CONFIG;
	}
	if (config_setting_type(list) != CONFIG_TYPE_LIST) {
		tsi_errf(err, errlen,
		    "%s: must be a JSON string or a list of "
		    "groups ( { name = ...; path = ...; dest = ...; } )",
		    src);
		return TSI_ERR_CONFIG;
	}
	if ((arr = json_array()) == NULL)
		return TSI_ERR_ALLOC;
	for (i = 0; i < config_setting_length(list); i++) {
		g = config_setting_get_elem(list, (unsigned)i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			tsi_errf(err, errlen,
			    "%s:%d: secrets[%d] must be a group", file,
			    config_setting_source_line(g), i);
			goto out;
		}
		if ((o = json_object()) == NULL ||
		    json_array_append_new(arr, o)) {
			r = TSI_ERR_ALLOC;
			goto out;
		}
		for (k = 0; k < config_setting_length(g); k++) {
			m = config_setting_get_elem(g, (unsigned)k);
			if (config_setting_type(m) != CONFIG_TYPE_STRING) {
				tsi_errf(err, errlen,
				    "%s:%d: secrets[%d].%s must "
				    "be a string",
				    file, config_setting_source_line(m), i,
				    config_setting_name(m));
				goto out;
			}
			if (json_object_set_new(o, config_setting_name(m),
			        json_string(config_setting_get_string(m))) !=
			    0) {
				r = TSI_ERR_ALLOC;
				goto out;
			}
		}
	}
	r = tsi_sidecar_spec_from_json(src, arr, dest_dir, &st->spec, err,
	    errlen);
	if (r != TSI_OK && r != TSI_ERR_ALLOC)
		r = TSI_ERR_CONFIG;
out:
	json_decref(arr);
	return r;
}

int
tsi_sidecar_settings_load(int argc, char **argv,
    struct tsi_sidecar_settings *st, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, 'o' },
		{ "dest-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const keys[] = { "issuer_socket", "vault_addr",
		"role", "secrets", "vault_cacert", "audience", "dest_dir",
		"once", "refresh_interval", "retry_max", "retry_base_ms",
		"retry_max_ms", "http_timeout_ms", "allow_http", NULL };
	const char *config = NULL, *dest_flag = NULL, *secrets, *env_once;
	const char *env_http;
	int allow_http = 0;
	long long x;
	int c, once_flag = 0, b, r;

	memset(st, 0, sizeof(*st));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'o': once_flag = 1; break;
		case 'd': dest_flag = optarg; break;
		case 'h': usage(stdout); return TSI_ERR_EXISTS;
		case 'V':
			printf("tsi-sidecar %s\n", TSI_VERSION);
			return TSI_ERR_EXISTS;
		default:
			tsi_errf(err, errlen,
			    "unknown or incomplete option '%s' "
			    "(see --help)",
			    argv[optind - 1]);
			return TSI_ERR_INVALID_ARG;
		}
	}
	if (optind < argc) {
		tsi_errf(err, errlen, "unexpected argument '%s' (see --help)",
		    argv[optind]);
		return TSI_ERR_INVALID_ARG;
	}
	if (config != NULL) {
		r = tsi_config_load(config, &st->cfg, err, errlen);
		if (r != TSI_OK)
			return TSI_ERR_CONFIG;
		if ((r = tsi_config_check_keys(st->cfg, keys, err, errlen)) !=
		    TSI_OK)
			return TSI_ERR_CONFIG;
	}
	if ((r = pick_str(st, "TSI_ISSUER_SOCKET", "issuer_socket",
	         DEFAULT_SOCKET, &st->issuer_socket, err, errlen)) != TSI_OK ||
	    (r = pick_str(st, "VAULT_ADDR", "vault_addr", DEFAULT_VAULT,
	         &st->vault_addr, err, errlen)) != TSI_OK ||
	    (r = pick_str(st, "TSI_ROLE", "role", NULL, &st->role, err,
	         errlen)) != TSI_OK ||
	    (r = pick_str(st, "VAULT_CACERT", "vault_cacert", NULL, &st->cacert,
	         err, errlen)) != TSI_OK ||
	    (r = pick_str(st, "TSI_AUDIENCE", "audience", DEFAULT_AUDIENCE,
	         &st->audience, err, errlen)) != TSI_OK ||
	    (r = pick_str(st, "TSI_SECRETS_DIR", "dest_dir", DEFAULT_DEST,
	         &st->dest_dir, err, errlen)) != TSI_OK)
		return TSI_ERR_CONFIG;
	if (dest_flag != NULL)
		st->dest_dir = dest_flag;
	env_once = getenv("TSI_ONCE");
	if (once_flag)
		st->once = 1;
	else if (env_once != NULL && env_once[0] != '\0')
		st->once = strcmp(env_once, "0") != 0 &&
		    strcmp(env_once, "false") != 0;
	else if (st->cfg != NULL) {
		if (tsi_config_bool(st->cfg, "once", 0, &b, err, errlen) !=
		    TSI_OK)
			return TSI_ERR_CONFIG;
		st->once = b;
	}
	if (pick_int(st, "TSI_REFRESH_INTERVAL", "refresh_interval", 60, 1,
	        86400, &x, err, errlen) != TSI_OK)
		return TSI_ERR_CONFIG;
	st->refresh_ms = (long)x * 1000;
	if (pick_int(st, "TSI_RETRY_MAX", "retry_max", 6, 1, 100, &x, err,
	        errlen) != TSI_OK)
		return TSI_ERR_CONFIG;
	st->retry_max = (int)x;
	if (pick_int(st, "TSI_RETRY_BASE_MS", "retry_base_ms", 250, 1, 60000,
	        &x, err, errlen) != TSI_OK)
		return TSI_ERR_CONFIG;
	st->retry_base_ms = (long)x;
	if (pick_int(st, "TSI_RETRY_MAX_MS", "retry_max_ms", 5000, 1, 600000,
	        &x, err, errlen) != TSI_OK)
		return TSI_ERR_CONFIG;
	st->retry_cap_ms = (long)x;
	if (pick_int(st, "TSI_HTTP_TIMEOUT_MS", "http_timeout_ms", 10000, 100,
	        600000, &x, err, errlen) != TSI_OK)
		return TSI_ERR_CONFIG;
	st->http_timeout_ms = (long)x;

	if (st->role == NULL || st->role[0] == '\0') {
		tsi_errf(err, errlen,
		    "no role: set TSI_ROLE (or 'role' in the "
		    "config file)");
		return TSI_ERR_CONFIG;
	}
	if (strlen(st->role) > 128) {
		tsi_errf(err, errlen, "TSI_ROLE is longer than 128 characters");
		return TSI_ERR_CONFIG;
	}
	if (strncmp(st->vault_addr, "https://", 8) != 0 &&
	    strncmp(st->vault_addr, "http://", 7) != 0) {
		tsi_errf(err, errlen,
		    "VAULT_ADDR '%.128s' must start with https:// "
		    "(or http:// for a --dev server)",
		    st->vault_addr);
		return TSI_ERR_CONFIG;
	}
	/* Plain HTTP carries the JWT, the client token and the secrets in
	 * clear, and lets anyone on the path answer as the server: only when
	 * asked for, for a tsi-vault --dev on loopback. */
	env_http = getenv("TSI_ALLOW_HTTP");
	if (env_http != NULL && env_http[0] != '\0')
		allow_http =
		    strcmp(env_http, "1") == 0 || strcmp(env_http, "true") == 0;
	else if (st->cfg != NULL &&
	    tsi_config_bool(st->cfg, "allow_http", 0, &allow_http, err,
	        errlen) != TSI_OK)
		return TSI_ERR_CONFIG;
	if (strncmp(st->vault_addr, "http://", 7) == 0 && !allow_http) {
		tsi_errf(err, errlen,
		    "VAULT_ADDR '%.128s' is plain http://: the "
		    "token and the secrets would travel unencrypted. Use "
		    "https://, or set TSI_ALLOW_HTTP=1 for a tsi-vault --dev "
		    "server on loopback",
		    st->vault_addr);
		return TSI_ERR_CONFIG;
	}
	if (strlen(st->vault_addr) > 512) {
		tsi_errf(err, errlen,
		    "VAULT_ADDR is longer than 512 characters");
		return TSI_ERR_CONFIG;
	}
	if (st->issuer_socket[0] == '\0' ||
	    strlen(st->issuer_socket) >=
	        sizeof(((struct sockaddr_un *)0)->sun_path)) {
		tsi_errf(err, errlen,
		    "TSI_ISSUER_SOCKET must be a path shorter "
		    "than %zu bytes",
		    sizeof(((struct sockaddr_un *)0)->sun_path));
		return TSI_ERR_CONFIG;
	}
	if (strlen(st->audience) > 256) {
		tsi_errf(err, errlen,
		    "TSI_AUDIENCE is longer than 256 characters");
		return TSI_ERR_CONFIG;
	}
	if (st->dest_dir[0] == '\0') {
		tsi_errf(err, errlen, "the destination directory is empty");
		return TSI_ERR_CONFIG;
	}

	secrets = getenv("TSI_SECRETS");
	if (secrets != NULL && secrets[0] != '\0') {
		r = tsi_sidecar_spec_parse("TSI_SECRETS", secrets,
		    strlen(secrets), st->dest_dir, &st->spec, err, errlen);
		if (r != TSI_OK)
			return TSI_ERR_CONFIG;
	} else if (st->cfg != NULL && tsi_config_line(st->cfg, "secrets") > 0) {
		if ((r = secrets_from_config(st, st->dest_dir, err, errlen)) !=
		    TSI_OK)
			return r == TSI_ERR_ALLOC ? r : TSI_ERR_CONFIG;
	} else {
		tsi_errf(err, errlen,
		    "no secrets requested: set TSI_SECRETS (a "
		    "JSON array of {\"name\",\"path\",\"dest\"}) or 'secrets' "
		    "in the config file");
		return TSI_ERR_CONFIG;
	}
	return TSI_OK;
}
