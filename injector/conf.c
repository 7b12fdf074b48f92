/* tsi-injector configuration: one libconfig file, unknown keys refused. */
#include "injector.h"
#include "tsi/config.h"
#include "tsi/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const allowed_keys[] = { "listen", "tls_cert", "tls_key",
	"sidecar_image", "sidecar_pull_policy", "sidecar_memory_limit",
	"sidecar_run_as_user", "vault_addr", "vault_ca_configmap",
	"vault_ca_key", "audience", "default_role", "issuer_host_path",
	"issuer_mount_path", "issuer_socket_name", "secrets_mount_path",
	"secrets_size_limit", "extra_protected_paths", "max_request_bytes",
	NULL };

void
tsi_injector_conf_free(struct tsi_injector_conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->listen);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->sidecar_image);
	free(c->sidecar_pull_policy);
	free(c->sidecar_memory_limit);
	free(c->vault_addr);
	free(c->vault_ca_configmap);
	free(c->vault_ca_key);
	free(c->audience);
	free(c->default_role);
	free(c->issuer_host_path);
	free(c->issuer_mount_path);
	free(c->issuer_socket_name);
	free(c->secrets_mount_path);
	free(c->secrets_size_limit);
	for (i = 0; i < c->nprotected; i++)
		free(c->protected[i]);
	free(c->protected);
	free(c);
}

/* Copies string setting key (or def) into *dst. required: absent is an error. */
static int
get_str(const struct tsi_config *cfg, const char *key, const char *def,
    int required, char **dst, char *err, size_t errlen)
{
	const char *v = NULL;
	int r;

	if ((r = tsi_config_str(cfg, key, def, &v, err, errlen)) != TSI_OK)
		return r;
	if (v == NULL) {
		if (!required)
			return TSI_OK;
		tsi_errf(err, errlen, "%s:1: '%s' is required",
		    tsi_config_file(cfg), key);
		return TSI_ERR_CONFIG;
	}
	if (v[0] == '\0' || strlen(v) >= TSI_INJECTOR_PATH_MAX) {
		tsi_errf(err, errlen,
		    "%s:%d: '%s' must be a non-empty string "
		    "shorter than %d bytes",
		    tsi_config_file(cfg), tsi_config_line(cfg, key), key,
		    TSI_INJECTOR_PATH_MAX);
		return TSI_ERR_CONFIG;
	}
	if ((*dst = strdup(v)) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

/* Reads an absolute path setting and stores it normalised. */
static int
get_path(const struct tsi_config *cfg, const char *key, const char *def,
    char **dst, char *err, size_t errlen)
{
	char norm[TSI_INJECTOR_PATH_MAX];
	char *raw = NULL;
	int r;

	if ((r = get_str(cfg, key, def, 1, &raw, err, errlen)) != TSI_OK)
		return r;
	if (tsi_injector_path_normalise(raw, norm, sizeof(norm)) != TSI_OK ||
	    strcmp(norm, "/") == 0) {
		tsi_errf(err, errlen,
		    "%s:%d: '%s' must be an absolute path "
		    "other than /",
		    tsi_config_file(cfg), tsi_config_line(cfg, key), key);
		free(raw);
		return TSI_ERR_CONFIG;
	}
	free(raw);
	if ((*dst = strdup(norm)) == NULL)
		return TSI_ERR_ALLOC;
	return TSI_OK;
}

static int
add_protected(struct tsi_injector_conf *c, const char *p)
{
	char **n;

	if ((n = realloc(c->protected, (c->nprotected + 1) * sizeof(*n))) ==
	    NULL)
		return TSI_ERR_ALLOC;
	c->protected = n;
	if ((c->protected[c->nprotected] = strdup(p)) == NULL)
		return TSI_ERR_ALLOC;
	c->nprotected++;
	return TSI_OK;
}

static const char *const builtin_protected[] = {
	"/proc",
	"/sys/fs/cgroup",
	"/var/lib/kubelet/pods",
};

/* A safe single name (socket file, ConfigMap key). */
static int
is_plain_name(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"
		           "Z"
		           "0123456789._-",
		        s[i]) == NULL)
			return 0;
	return 1;
}

static int
conf_from(const struct tsi_config *cfg, struct tsi_injector_conf **out,
    char *err, size_t errlen)
{
	struct tsi_injector_conf *c;
	const char **extra = NULL;
	size_t nextra = 0, i;
	char norm[TSI_INJECTOR_PATH_MAX];
	int r;

	if ((r = tsi_config_check_keys(cfg, allowed_keys, err, errlen)) !=
	    TSI_OK)
		return r;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TSI_ERR_ALLOC;
	if ((r = get_str(cfg, "listen", "0.0.0.0:8443", 1, &c->listen, err,
	         errlen)) ||
	    (r = get_str(cfg, "tls_cert", NULL, 1, &c->tls_cert, err,
	         errlen)) ||
	    (r = get_str(cfg, "tls_key", NULL, 1, &c->tls_key, err, errlen)) ||
	    (r = get_str(cfg, "sidecar_image", NULL, 1, &c->sidecar_image, err,
	         errlen)) ||
	    (r = get_str(cfg, "sidecar_pull_policy", "IfNotPresent", 1,
	         &c->sidecar_pull_policy, err, errlen)) ||
	    (r = get_str(cfg, "sidecar_memory_limit", "64Mi", 1,
	         &c->sidecar_memory_limit, err, errlen)) ||
	    (r = get_str(cfg, "vault_addr", NULL, 1, &c->vault_addr, err,
	         errlen)) ||
	    (r = get_str(cfg, "vault_ca_configmap", NULL, 0,
	         &c->vault_ca_configmap, err, errlen)) ||
	    (r = get_str(cfg, "vault_ca_key", "ca.crt", 1, &c->vault_ca_key,
	         err, errlen)) ||
	    (r = get_str(cfg, "audience", "tsi-vault", 1, &c->audience, err,
	         errlen)) ||
	    (r = get_str(cfg, "default_role", NULL, 0, &c->default_role, err,
	         errlen)) ||
	    (r = get_path(cfg, "issuer_host_path", "/run/tsi",
	         &c->issuer_host_path, err, errlen)) ||
	    (r = get_path(cfg, "issuer_mount_path", "/run/tsi",
	         &c->issuer_mount_path, err, errlen)) ||
	    (r = get_str(cfg, "issuer_socket_name", "issuer.sock", 1,
	         &c->issuer_socket_name, err, errlen)) ||
	    (r = get_path(cfg, "secrets_mount_path", "/tsi-secrets",
	         &c->secrets_mount_path, err, errlen)) ||
	    (r = get_str(cfg, "secrets_size_limit", "1Mi", 1,
	         &c->secrets_size_limit, err, errlen)) ||
	    (r = tsi_config_int(cfg, "sidecar_run_as_user", 0, 0, 2147483647LL,
	         &c->sidecar_run_as_user, err, errlen)) ||
	    (r = tsi_config_int(cfg, "max_request_bytes", 3 << 20, 65536,
	         64 << 20, &c->max_request_bytes, err, errlen)))
		goto out;
	/* The sidecars it injects refuse plain http:// (their token and
	 * secrets would cross the pod network in clear): say so here, not in
	 * every pod's log. */
	if (strncmp(c->vault_addr, "https://", 8) != 0) {
		tsi_errf(err, errlen,
		    "%s:%d: 'vault_addr' must be an https:// URL",
		    tsi_config_file(cfg), tsi_config_line(cfg, "vault_addr"));
		r = TSI_ERR_CONFIG;
		goto out;
	}
	if (strcmp(c->sidecar_pull_policy, "Always") != 0 &&
	    strcmp(c->sidecar_pull_policy, "IfNotPresent") != 0 &&
	    strcmp(c->sidecar_pull_policy, "Never") != 0) {
		tsi_errf(err, errlen,
		    "%s:%d: 'sidecar_pull_policy' must be Always, "
		    "IfNotPresent or Never",
		    tsi_config_file(cfg),
		    tsi_config_line(cfg, "sidecar_pull_policy"));
		r = TSI_ERR_CONFIG;
		goto out;
	}
	if (!is_plain_name(c->issuer_socket_name) ||
	    !is_plain_name(c->vault_ca_key) ||
	    (c->vault_ca_configmap && !is_plain_name(c->vault_ca_configmap))) {
		tsi_errf(err, errlen,
		    "%s:1: issuer_socket_name, vault_ca_key and "
		    "vault_ca_configmap must be plain names",
		    tsi_config_file(cfg));
		r = TSI_ERR_CONFIG;
		goto out;
	}
	if (tsi_injector_path_overlaps(c->secrets_mount_path,
	        c->issuer_mount_path)) {
		tsi_errf(err, errlen,
		    "%s:%d: 'secrets_mount_path' must not overlap "
		    "'issuer_mount_path'",
		    tsi_config_file(cfg),
		    tsi_config_line(cfg, "secrets_mount_path"));
		r = TSI_ERR_CONFIG;
		goto out;
	}
	/* The issuer's directory, and the same directory through the /var/run
	 * symlink that Debian-like hosts keep for compatibility. */
	if ((r = add_protected(c, c->issuer_host_path)) != TSI_OK)
		goto out;
	if (strncmp(c->issuer_host_path, "/run/", 5) == 0) {
		if (snprintf(norm, sizeof(norm), "/var%s",
		        c->issuer_host_path) >= (int)sizeof(norm)) {
			r = TSI_ERR_CONFIG;
			goto out;
		}
		if ((r = add_protected(c, norm)) != TSI_OK)
			goto out;
	}
	/* Host paths that reach the issuer's directory, or the identity it
	 * gives, whatever it is called, so no lexical check of the path could
	 * catch them (docs/injector.md, "Refusals"):
	 *  - /proc: /proc/<pid>/root, /cwd and /fd/<n> are every process's
	 *    view of its own mounts (/proc/1/root/run/tsi is the host's
	 *    /run/tsi), and /proc/self names whichever process looks;
	 *  - /sys/fs/cgroup: writing cgroup.procs moves a process into another
	 *    pod's cgroup, and the issuer names a caller by its cgroup;
	 *  - /var/lib/kubelet/pods: every pod's volumes on the node, the
	 *    secret files the sidecars write among them. */
	for (i = 0;
	     i < sizeof(builtin_protected) / sizeof(builtin_protected[0]); i++)
		if ((r = add_protected(c, builtin_protected[i])) != TSI_OK)
			goto out;
	if ((r = tsi_config_strlist(cfg, "extra_protected_paths", &extra,
	         &nextra, err, errlen)) != TSI_OK)
		goto out;
	for (i = 0; i < nextra; i++) {
		if (tsi_injector_path_normalise(extra[i], norm, sizeof(norm)) !=
		        TSI_OK ||
		    strcmp(norm, "/") == 0) {
			tsi_errf(err, errlen,
			    "%s:%d: 'extra_protected_paths' entries "
			    "must be absolute paths other than /",
			    tsi_config_file(cfg),
			    tsi_config_line(cfg, "extra_protected_paths"));
			r = TSI_ERR_CONFIG;
			goto out;
		}
		if ((r = add_protected(c, norm)) != TSI_OK)
			goto out;
	}
	*out = c;
	c = NULL; /* transferred */
	r = TSI_OK;
out:
	free(extra);
	tsi_injector_conf_free(c);
	return r;
}

int
tsi_injector_conf_load(const char *path, struct tsi_injector_conf **out,
    char *err, size_t errlen)
{
	struct tsi_config *cfg = NULL;
	int r;

	if ((r = tsi_config_load(path, &cfg, err, errlen)) != TSI_OK)
		return r;
	r = conf_from(cfg, out, err, errlen);
	tsi_config_free(cfg);
	return r;
}

int
tsi_injector_conf_load_string(const char *name, const char *text,
    struct tsi_injector_conf **out, char *err, size_t errlen)
{
	struct tsi_config *cfg = NULL;
	int r;

	if ((r = tsi_config_load_string(name, text, &cfg, err, errlen)) !=
	    TSI_OK)
		return r;
	r = conf_from(cfg, out, err, errlen);
	tsi_config_free(cfg);
	return r;
}
