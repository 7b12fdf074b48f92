/*
 * config.h - the tsi-issuer configuration (docs/issuer.md lists every
 * setting). All strings are owned by the struct.
 */
#ifndef TSI_ISSUER_CONFIG_H
#define TSI_ISSUER_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

enum tsi_signing_mode {
	TSI_SIGNING_DELEGATED = 0,
	TSI_SIGNING_TPM = 1
};
enum tsi_resolver_kind {
	TSI_RESOLVER_KUBELET = 0,
	TSI_RESOLVER_UNIX = 1
};

#define TSI_TOKEN_TTL_MAX 3600
#define TSI_ISSUER_SIDECARS_MAX 16
#define TSI_ISSUER_MAX_EXE_SIZE_DEFAULT (512LL * 1024 * 1024)

/* Whether url may carry enrollment: https://, or http:// to a loopback host
 * (127.0.0.0/8, ::1, localhost) for development. */
int tsi_issuer_attest_url_ok(const char *url);

struct tsi_issuer_config {
	char *tcti;
	char *state_dir;
	char *node_cert;
	char *socket;
	mode_t socket_mode;
	char *socket_group; /* NULL: leave the group as created */
	enum tsi_signing_mode signing;
	enum tsi_resolver_kind resolver;
	char *trust_domain;
	int token_ttl;   /* seconds, 1..3600 */
	int session_ttl; /* seconds, delegated session certificates */
	char *proc_root;
	char *kubelet_url;
	char *kubelet_token_file; /* NULL: no bearer token */
	char *kubelet_ca_file;    /* NULL: the system CA store */
	int kubelet_cache_ms;
	char **sidecar_images; /* "sha256:<64 hex>", lower case */
	size_t n_sidecar_images;
	char *node_name; /* NULL: the host name */
	int max_clients;
	long long max_exe_size; /* unix: larger executables are refused */
	char *log_level;        /* NULL: info */
	int privsep;            /* signer + front end (default 1) */
	/* Attested enrollment (docs/issuer.md): */
	char *attest_url;  /* NULL: no enrollment, node_cert by hand */
	char *attest_ca;   /* CA file that verifies tsi-attest's TLS */
	char *node_ca;     /* where the node CA is written */
	int renew_percent; /* enroll again in the last N % of life */
	/* The front end's sandbox (issuer/sandbox.h): */
	char *front_user;      /* "name", "uid" or "uid:gid"; never root */
	int front_seccomp_log; /* 1: violations logged, not killed */
};

/* Loads and checks path. On failure returns TSI_ERR_CONFIG or TSI_ERR_IO with
 * "file:line: reason" in err. *out: caller frees with tsi_issuer_config_free. */
int tsi_issuer_config_load(const char *path, struct tsi_issuer_config **out,
    char *err, size_t errlen);

/* The same from text (name is used in messages). */
int tsi_issuer_config_load_string(const char *name, const char *text,
    struct tsi_issuer_config **out, char *err, size_t errlen);

/* Accepts NULL. */
void tsi_issuer_config_free(struct tsi_issuer_config *c);

/* Whether s is "sha256:" followed by 64 lower-case hex digits. */
int tsi_issuer_is_digest(const char *s);

#endif /* TSI_ISSUER_CONFIG_H */
